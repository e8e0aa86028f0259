"""The pipelines' file I/O over Beam's filesystems (local, gs://, s3://, hdfs://, ...): whether a
path is remote, atomic writes, reads and copies. segmodel's counterpart, over TensorFlow's
tf.io.gfile (segmodel never imports Beam), is segmodel/files.py.

Writes: a reader sees the old file or the new one, never half of one. On local disk (plain file calls,
no Beam filesystem lookup) and other filesystems: write a temporary sibling, then rename it over
the target (atomic on POSIX). On S3 and GCS an
object appears whole or not at all (a multipart or resumable upload that does not complete
leaves no object), so it is written under its final name directly: a rename there is a copy plus
a delete, twice the bytes for every mask of a bulk run.
"""

from __future__ import annotations

import contextlib
import os
import uuid

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from runners.beam_workarounds import put_empty_s3_object

OBJECT_STORES = ("s3://", "gs://")


def is_remote(path: str) -> bool:
    """True for a URL (s3://bucket/x, gs://...), False for a local path."""
    return "://" in path


def write_atomically(path: str, data: bytes, durable: bool = False) -> None:
    """`data` to `path`, whole or not at all. `durable`: on local disk also fsync the file and
    its folder, so a power cut right after cannot leave it empty (the run ledger)."""
    if not is_remote(path):
        _write_local(path, data, durable)
        return
    if path.startswith(OBJECT_STORES) and data:  # (empty: create_empty)
        try:
            with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                f.write(data)
        except Exception as e:
            raise OSError(f"could not write {path}: {e}") from e
        return
    directory, name = FileSystems.split(path)
    temp = FileSystems.join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        with FileSystems.create(temp, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(data)
        FileSystems.rename([temp], [path])
    except Exception as e:
        if FileSystems.exists(temp):
            FileSystems.delete([temp])
        raise OSError(f"could not write {path}: {e}") from e


def _write_local(path: str, data: bytes, durable: bool) -> None:
    directory, name = os.path.split(os.path.abspath(path))
    temp = os.path.join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        os.makedirs(directory, exist_ok=True)
        with open(temp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(temp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.remove(temp)
        raise OSError(f"could not write {path}: {e}") from e
    if durable:
        with contextlib.suppress(OSError):  # the rename itself, where the platform allows
            handle = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(handle)
            finally:
                os.close(handle)


def create_empty(path: str, s3_settings: dict | None = None) -> None:
    """A zero-byte file (an empty rejects file or shard) on any Beam filesystem. On s3:// it
    goes around Beam's S3 writer, which cannot make one (runners/beam_workarounds.py, 5), with
    the run's S3 options (`s3_settings`: runners.launch.s3_settings)."""
    if path.startswith("s3://"):
        try:
            put_empty_s3_object(path, s3_settings or {})
        except Exception as e:
            raise OSError(f"could not write {path}: {e}") from e
        return
    FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED).close()


def read_bytes(path: str) -> bytes:
    """A whole file from any Beam filesystem; local paths skip Beam's filesystem lookup (a
    third of the read time of a small image)."""
    if not is_remote(path):
        with open(path, "rb") as f:
            return f.read()
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read()


def copy_to_local(source: str, target: str) -> None:
    """Copies one file from any Beam filesystem to a local path (a model brought to a worker)."""
    try:
        data = read_bytes(source)
    except Exception as e:
        raise ValueError(f"{source}: cannot read it ({e})") from None
    _write_local(target, data, durable=False)


def check_writable(output_dir: str) -> None:
    """Fails fast, naming the folder, when outputs cannot be written there (read-only, not a
    folder, disk full): better than a worker failing half way through."""
    probe = FileSystems.join(output_dir, f".write-test-{uuid.uuid4().hex}")
    try:
        if not is_remote(output_dir):
            os.makedirs(output_dir, exist_ok=True)
        with FileSystems.create(probe, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(b"ok")
        FileSystems.delete([probe])
    except Exception as e:
        raise ValueError(f"--output_dir {output_dir}: cannot write there ({e})") from None


def escapes_root(path: str, root: str) -> bool:
    """True for a local symlink whose target lies outside `root` (other filesystems have no
    symlinks). Reading it would let a crafted input folder pull in arbitrary files."""
    if is_remote(path) or not os.path.islink(path):
        return False
    target = os.path.realpath(path)
    base = os.path.realpath(root)
    return os.path.commonpath([target, base]) != base
