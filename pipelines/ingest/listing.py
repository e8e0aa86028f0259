"""Listing an input folder so that every file in it is either listed or reported.

    python -m pipelines.ingest --images_dir data/images ...   # local folder or gs://bucket/...

A local folder is walked here, not through Beam's glob, because Beam's local listing silently
drops broken symlinks and unreadable folders, and lists FIFOs, which would block the reader for
ever. The walk reports each of these as a problem instead; it skips dot-entries and does not
follow symlinks to folders (so a link loop cannot hang it). Object stores have none of these
and are listed with Beam's FileSystems glob.

A listing is split into tasks, one per top-level folder (plus one for the files directly in
the root), so that several workers share a large listing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from apache_beam.io.filesystems import FileSystems

# (path, size in bytes, problem): problem is None or (reject reason, detail).
Listed = tuple[str, int, "tuple[str, str] | None"]


def is_local(root: str) -> bool:
    return "://" not in root


def listing_tasks(root: str) -> list[str]:
    """What to list under root, task by task: for a local folder, "" (its own files) and each
    top-level folder's name; for an object store, one glob pattern."""
    root = root.rstrip("/")
    if not is_local(root):
        return [f"{root}/**"]
    if not os.path.isdir(root):
        return [""]  # list_task reports it
    with os.scandir(root) as entries:
        folders = sorted(
            e.name
            for e in entries
            if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
        )
    return ["", *folders]


def list_task(root: str, task: str) -> Iterator[Listed]:
    """The files of one listing task (see listing_tasks)."""
    if not is_local(root):
        for metadata in FileSystems.match([task])[0].metadata_list:
            yield metadata.path, metadata.size_in_bytes, None
        return
    root = root.rstrip("/")
    if task == "":
        if not os.path.isdir(root):
            yield root, 0, ("unreadable_folder", f"{root} is not a folder we can list")
            return
        yield from _walk(root, recursive=False)
    else:
        yield from _walk(os.path.join(root, task), recursive=True)


def _walk(top: str, recursive: bool) -> Iterator[Listed]:
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            yield folder, 0, ("unreadable_folder", f"cannot list {folder}: {e.strerror or e}")
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue  # .DS_Store, .ipynb_checkpoints, our own temporary files
            if entry.is_dir(follow_symlinks=False):
                if recursive:
                    stack.append(entry.path)
                continue
            yield _classify(entry)


def _classify(entry: os.DirEntry) -> Listed:
    path = entry.path
    try:
        if entry.is_symlink() and not os.path.exists(path):
            return path, 0, ("broken_symlink", f"symlink to {os.readlink(path)}, which is missing")
        if entry.is_dir():  # a symlink to a folder: never followed
            return path, 0, ("symlink_to_folder", "symlinks to folders are not followed")
        if not entry.is_file():
            return path, 0, ("not_a_regular_file", "a FIFO, socket or device, not a file")
        return path, entry.stat().st_size, None
    except OSError as e:
        return path, 0, ("unreadable_file", f"cannot stat: {e.strerror or e}")
