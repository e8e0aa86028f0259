"""segmodel's file I/O: local paths, and whatever TensorFlow's `tf.io.gfile` reads (gs://,
hdfs://; s3:// only with tensorflow-io, which we do not install). segmodel never imports Beam:
the pipelines' counterpart over Beam's filesystems is pipelines/fileio.py.

Writes are atomic: a reader sees the old file or the new one, never half of one. On local disk
a temporary sibling is renamed over the target (atomic on POSIX); on an object store the object
is written under its final name, since an upload that does not complete leaves no object there.
TensorFlow is imported only for remote paths: local reads and writes never need it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import uuid


def is_remote(path: str) -> bool:
    """True for a URL (gs://bucket/x, s3://...), False for a local path."""
    return "://" in path


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def join(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}" if is_remote(folder) else os.path.join(folder, name)


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def isdir(path: str) -> bool:
    return _gfile().isdir(path) if is_remote(path) else os.path.isdir(path)


def read_bytes(path: str) -> bytes:
    """A whole file; FileNotFoundError naming it when it is missing."""
    if not is_remote(path):
        with open(path, "rb") as f:
            return f.read()
    gfile = _gfile()
    if not gfile.exists(path):
        raise FileNotFoundError(path)
    with gfile.GFile(path, "rb") as f:
        return f.read()


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp(\.[^.]+)?$")


def _temp_sibling(path: str) -> str:
    directory, name = os.path.split(os.path.abspath(path))
    stem, dot, extension = name.rpartition(".")
    # Keeps the extension: Keras picks the format of `model.save` by it (.keras).
    suffix = f".{extension}" if dot and stem else ""
    return os.path.join(directory, f".{name}.{uuid.uuid4().hex}.tmp{suffix}")


def is_temporary(name: str) -> bool:
    """True for the name of a temporary sibling that an atomic write left behind when its
    process was killed mid-write (safe to delete once no writer of that folder runs)."""
    return bool(_TEMPORARY.match(name))


@contextlib.contextmanager
def atomic_path(path: str):
    """Yields a local path to write `path` through; on success it replaces `path` whole.

    For writers that take a file name (`model.save`, Pillow): `with atomic_path(p) as temp:
    model.save(temp)`. Remote targets are written locally, then copied up whole."""
    if is_remote(path):
        with tempfile.TemporaryDirectory(prefix="segscale-") as scratch:
            temp = os.path.join(scratch, os.path.basename(path))
            yield temp
            copy(temp, path)
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temp = _temp_sibling(path)
    try:
        yield temp
        os.replace(temp, path)
    finally:
        with contextlib.suppress(OSError):
            os.remove(temp)


def write_atomically(path: str, data: bytes | str) -> None:
    """`data` to `path`, whole or not at all (local or remote)."""
    data = data.encode("utf-8") if isinstance(data, str) else data
    if is_remote(path):
        with _gfile().GFile(path, "wb") as f:
            f.write(data)
        return
    with atomic_path(path) as temp, open(temp, "wb") as f:
        f.write(data)


def copy(source: str, target: str) -> None:
    """Copies one file between any two locations (local or remote), the target atomically."""
    if not is_remote(source) and not is_remote(target):
        with atomic_path(target) as temp:
            shutil.copyfile(source, temp)
        return
    _gfile().copy(source, target, overwrite=True)


def link_atomically(source: str, target: str) -> None:
    """Local: `target` becomes the same file as `source` (a hard link; a copy where the
    filesystem refuses links), replacing it whole."""
    with atomic_path(target) as temp:
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)


def replace_folder(staging: str, target: str) -> None:
    """Local: the finished folder `staging` takes the place of `target`, so a reader never sees
    a folder half written. The old one is first renamed aside (`TARGET.previous`) and deleted
    only after the swap: a crash in between leaves it there, and `recover_folder` puts it back."""
    previous = f"{target.rstrip(os.sep)}.previous"
    if os.path.exists(target):
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(target, previous)
    os.replace(staging, target)
    shutil.rmtree(previous, ignore_errors=True)


def recover_folder(target: str) -> None:
    """Local: puts back the folder a crash in replace_folder left renamed aside."""
    previous = f"{target.rstrip(os.sep)}.previous"
    if not os.path.exists(target) and os.path.isdir(previous):
        os.replace(previous, target)
