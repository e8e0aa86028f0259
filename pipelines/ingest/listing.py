"""Listing an input folder so that every file in it is either listed or reported.

    python -m pipelines.ingest --images_dir data/images ...   # local folder or gs://bucket/...

A local folder is walked here, not through Beam's glob, because Beam's local listing silently
drops broken symlinks and unreadable folders, and lists FIFOs, which would block the reader for
ever. The walk reports each of these as a problem instead; it skips dot-entries and does not
follow symlinks to folders (so a link loop cannot hang it). Object stores have none of these
and are listed with Beam's FileSystems glob.

A listing is split into tasks so that several workers share a large listing: a local folder
into one task per top-level folder (plus one for the files directly in the root); an S3 prefix
of more than SPLIT_ABOVE objects into key ranges, one per task. Beam's FileSystems lists an object
store only through a glob, which reads every key under the glob's literal prefix page by page
in one worker, and a split into literal prefixes cannot be complete (a key can start with any
character). S3 lists keys in UTF-8 byte order (code point order) and can start after any key
(StartAfter), so ranges between boundary keys partition every possible key: each key is listed
by exactly one task, whatever its name. The boundaries are the key prefixes actually there,
found with a few one-key requests (a skip scan: "img_0", "img_1", ... for img_00001.png ...),
so that names sharing a long prefix still spread. The requests use Beam's own S3 client, built
from the run's S3 options. Other object stores (gs://, ...) keep one glob.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

from apache_beam.io.filesystems import FileSystems

from pipelines.fileio import is_remote

# (path, size in bytes, problem): problem is None or (reject reason, detail).
Listed = tuple[str, int, "tuple[str, str] | None"]


_S3_RANGE = "s3-key-range:"
# Listings of up to this many objects stay one glob: a split costs about 2 requests per range
# plus the skip scan's 100-200 one-key requests at the launcher, which only pays off when the
# glob's pages (1,000 objects each, one after another on one worker) are many more. Checking
# the count reads up to SPLIT_ABOVE / 1,000 pages (bench/listing_bench.py has the arithmetic).
SPLIT_ABOVE = 50_000
# About this many key ranges for a larger S3 listing (each is one task).
S3_RANGES = 64


def listing_tasks(root: str, s3_settings: dict | None = None) -> list[str]:
    """What to list under root, task by task: for a local folder, "" (its own files) and each
    top-level folder's name; for S3 beyond SPLIT_ABOVE objects, about S3_RANGES key ranges;
    otherwise one glob pattern. `s3_settings`: the run's S3 options
    (runners.launch.s3_settings)."""
    root = root.rstrip("/")
    if is_remote(root):
        pattern = f"{root}/**"
        if root.startswith("s3://") and _more_than(pattern, SPLIT_ABOVE):
            bounds = [None, *_S3Keys(root, s3_settings or {}).boundaries(S3_RANGES), None]
            return [_S3_RANGE + json.dumps(pair) for pair in zip(bounds, bounds[1:], strict=False)]
        return [pattern]
    if not os.path.isdir(root):
        return [""]  # list_task reports it
    with os.scandir(root) as entries:
        folders = sorted(
            e.name
            for e in entries
            if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
        )
    return ["", *folders]


def _more_than(pattern: str, count: int) -> bool:
    """Whether the glob matches more than `count` objects; reads no further than that."""
    try:
        return len(FileSystems.match([pattern], limits=[count + 1])[0].metadata_list) > count
    except Exception:  # an unreadable root: the one-glob task reports it as before
        return False


def list_task(root: str, task: str, s3_settings: dict | None = None) -> Iterator[Listed]:
    """The files of one listing task (see listing_tasks). `s3_settings`: the run's S3 options
    (runners.launch.s3_settings), for S3 key ranges."""
    if task.startswith(_S3_RANGE):
        low, high = json.loads(task[len(_S3_RANGE) :])
        yield from _S3Keys(root, s3_settings or {}).list_range(low, high)
        return
    if is_remote(root):
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


def _just_below(key: str) -> str:
    """A key that sorts just below `key` (for StartAfter, which is exclusive): its last
    character one lower, then the highest code point. Only keys that hold U+10FFFF lie between
    the two; readers skip them where it matters. The surrogates (U+D800-DFFF) are no
    characters and cannot be sent: below U+E000 comes U+D7FF."""
    last = ord(key[-1])
    if last == 0:
        return key[:-1]
    lower = last - 1 if not 0xD800 <= last - 1 <= 0xDFFF else 0xD7FF
    return key[:-1] + chr(lower) + "\U0010ffff"


class _S3Keys:
    """The keys under one S3 prefix, through Beam's own S3 client (boto3)."""

    PAGE = 1000  # keys per list request (S3's maximum)

    def __init__(self, root: str, s3_settings: dict):
        from runners.beam_workarounds import s3_client

        self.root = root.rstrip("/")
        self.bucket, _, prefix = self.root[len("s3://") :].partition("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self._client = s3_client(s3_settings)

    def _page(
        self, after: str | None, max_keys: int | None = None, token: str | None = None
    ) -> dict:
        request = {"Bucket": self.bucket, "Prefix": self.prefix, "MaxKeys": max_keys or self.PAGE}
        if after is not None:
            request["StartAfter"] = self.prefix + after
        if token is not None:
            request["ContinuationToken"] = token
        try:
            return self._client.list_objects_v2(**request)
        except Exception as e:
            raise OSError(f"cannot list {self.root}: {e}") from e

    def _first_after(self, after: str) -> str | None:
        """The first relative key strictly after `after`, or None."""
        contents = self._page(after, max_keys=1).get("Contents", [])
        return contents[0]["Key"][len(self.prefix) :] if contents else None

    def _next_characters(self, stem: str) -> list[str]:
        """The characters that follow `stem` in the keys that start with it (skip scan: one
        request per character found)."""
        found, cursor = [], stem
        while (key := self._first_after(cursor)) is not None and key.startswith(stem):
            if len(key) == len(stem):  # the stem is itself a key
                cursor = key
                continue
            char = key[len(stem)]
            if char in found:  # only after a key holding U+10FFFF
                cursor = key
                continue
            found.append(char)
            cursor = stem + char + "\U0010ffff"
        return found

    def boundaries(self, wanted: int) -> list[str]:
        """About `wanted` sorted key prefixes that exist, to split the keys between: the
        shortest first (breadth first), so a common prefix is looked through."""
        frontier, expandable = [""], [""]
        while expandable and len(frontier) < wanted:
            stem = expandable.pop(0)
            children = [stem + c for c in self._next_characters(stem)]
            if not children:
                continue
            frontier.remove(stem)
            frontier.extend(children)
            expandable.extend(children)
        return sorted(b for b in frontier if b)

    def list_range(self, low: str | None, high: str | None) -> Iterator[Listed]:
        """The objects whose relative key k has low <= k < high (None: unbounded)."""
        after = _just_below(low) if low else None
        token = None
        while True:
            page = self._page(None if token else after, token=token)
            for item in page.get("Contents", []):
                relative = item["Key"][len(self.prefix) :]
                if low is not None and relative < low:
                    continue
                if high is not None and relative >= high:
                    return
                yield f"s3://{self.bucket}/{item['Key']}", item["Size"], None
            if not page.get("IsTruncated"):
                return
            token = page["NextContinuationToken"]
