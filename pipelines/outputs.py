"""Writing small output files atomically on any Beam filesystem (local, gs://, ...).

    python -m pipelines.ingest ...   # manifest.json is written through here

A reader sees the old file or the new one, never half of one: write a temporary sibling, then
rename it over the target (atomic on POSIX; copy-then-delete on object stores, where an object
appears whole anyway).
"""

from __future__ import annotations

import uuid

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems


def write_atomically(path: str, data: bytes) -> None:
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


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read()
