"""Writing TFRecord shards with flat memory and no duplicates after retries.

    python -m pipelines.ingest ... --num_shards 8        # or --target_shard_mb 128

Records stream into per-bundle piece files, one per (split, shard) the bundle touches, under a
temporary folder. Only the piece *paths* are grouped; each shard is then one streaming
concatenation of its pieces (TFRecord framing concatenates), written under a temporary name and
renamed into place. Why not Beam's WriteToTFRecord: with a fixed shard count it groups the record
bytes themselves, which the local FnApiRunner holds in memory, so memory would grow with the
dataset. A bundle that fails and is retried leaves orphan pieces that are never merged (same
contract as Beam's FileBasedSink), and the temporary folder is deleted at the end.

A record's shard is a hash of its key, so the same input and shard count give the same shards.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import uuid

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.localfilesystem import LocalFileSystem
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from pipelines import tfrecord_framing
from pipelines.fileio import create_empty
from pipelines.ingest.batches import shard_infix
from pipelines.ingest.pairing import shard_index

_COPY_CHUNK = 8 << 20


def shard_name(split: str, index: int, count: int, compression: str, batch: int = 1) -> str:
    """`train-00003-of-00008.tfrecord`; shards an --append adds carry their batch
    (`train-b002-00000-of-00001.tfrecord`, pipelines/ingest/batches.py)."""
    suffix = ".tfrecord.gz" if compression == "gzip" else ".tfrecord"
    return f"{split}-{shard_infix(batch)}{index:05d}-of-{count:05d}{suffix}"


def shard_counts(
    bytes_by_split: dict[str, int], *, num_shards: int = 0, target_shard_bytes: int = 128 << 20
) -> dict[str, int]:
    """Shards per split: `num_shards` when given, else enough for about target bytes each.

    The bytes are the source files' sizes, known from the listing before anything is decoded;
    records store PNG/JPEG bytes as they are, so they are a close estimate of the output.
    """
    if num_shards:
        return {split: num_shards for split in bytes_by_split}
    return {
        split: max(1, math.ceil(nbytes / target_shard_bytes))
        for split, nbytes in bytes_by_split.items()
    }


@dataclasses.dataclass(frozen=True)
class Piece:
    path: str
    records: int
    nbytes: int


class PieceWriter:
    """Appends records to one piece file per (split, shard) for the life of a bundle.

    Used by the DoFn that encodes pairs, in the same fused stage: records go from encoding
    straight to disk and never through the runner (which would hold them in memory).
    """

    def __init__(self, temp_dir: str):
        self._temp_dir = temp_dir
        self._open = {}  # (split, shard) -> [handle, path, records, bytes]

    def write(self, split: str, key: str, record: bytes, num_shards: dict) -> tuple:
        """Appends the record; returns its shard as (split, index, count)."""
        count = num_shards[split]
        slot = (split, shard_index(key, count), count)
        entry = self._open.get(slot)
        if entry is None:
            path = FileSystems.join(
                self._temp_dir, f"{split}-{slot[1]:05d}-{uuid.uuid4().hex}.piece"
            )
            handle = FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)
            entry = self._open[slot] = [handle, path, 0, 0]
        tfrecord_framing.write_record(entry[0], record)
        entry[2] += 1
        entry[3] += len(record)
        return slot

    def close(self):
        """Closes every piece; yields ((split, shard, shard count), Piece) as windowed values
        for Beam (the key names the shard fully, so merging needs no side input)."""
        for slot, (handle, path, records, nbytes) in self._open.items():
            handle.close()
            yield WindowedValue((slot, Piece(path, records, nbytes)), 0, [GlobalWindow()])
        self._open = {}


@dataclasses.dataclass(frozen=True)
class Shard:
    split: str
    name: str
    records: int
    nbytes: int


def merge_shard(
    slot_pieces: tuple[tuple[str, int, int], list[Piece]],
    output_dir: str,
    compression: str,
    batch: int = 1,
) -> Shard:
    """Concatenates one shard's pieces into `output_dir/<shard name>`, atomically.

    Pieces are taken in path order so reruns over the same pieces give the same bytes.
    """
    (split, index, count), pieces = slot_pieces
    pieces = sorted(pieces, key=lambda p: p.path)
    name = shard_name(split, index, count, compression, batch)
    concatenate([p.path for p in pieces], FileSystems.join(output_dir, name), compression)
    return Shard(split, name, sum(p.records for p in pieces), sum(p.nbytes for p in pieces))


def concatenate(
    sources: list[str], final: str, compression: str = "none", s3_settings: dict | None = None
) -> None:
    """Streams `sources` one after the other into `final` (written under a temporary name and
    renamed into place) and deletes them. Memory stays flat whatever the sizes. `s3_settings`:
    the run's S3 options, for an empty file on s3:// (pipelines.fileio.create_empty)."""
    directory, name = FileSystems.split(final)
    temp = FileSystems.join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
    if not sources and compression == "none":
        create_empty(temp, s3_settings)
    elif not sources:
        _create(temp, compression).close()  # a gzip header: not empty
    elif compression == "none" and isinstance(FileSystems.get_filesystem(final), LocalFileSystem):
        _append_local(temp, sources)
    else:
        with _create(temp, compression) as out:
            for source in sources:
                with FileSystems.open(source, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                    while chunk := f.read(_COPY_CHUNK):
                        out.write(chunk)
        FileSystems.delete(list(sources))
    FileSystems.rename([temp], [final])


def _create(path: str, compression: str):
    compression_type = (
        CompressionTypes.GZIP if compression == "gzip" else CompressionTypes.UNCOMPRESSED
    )
    return FileSystems.create(path, compression_type=compression_type)


def _append_local(temp: str, sources: list[str]) -> None:
    """Local disk: the first piece becomes the file and the others are appended to it, so the
    bytes of one piece are never copied (the whole shard, when a single bundle wrote it)."""
    os.rename(sources[0], temp)
    with open(temp, "r+b") as out:  # not "ab": copy_file_range refuses O_APPEND targets
        out.seek(0, os.SEEK_END)
        for source in sources[1:]:
            with open(source, "rb") as f:
                _copy_to_end(f, out)
            os.remove(source)


def _copy_to_end(source, target) -> None:
    """Appends source to target; in the kernel (copy_file_range) where it can, so the bytes
    never pass through Python."""
    target.flush()
    remaining = os.fstat(source.fileno()).st_size
    try:
        while remaining > 0:
            copied = os.copy_file_range(source.fileno(), target.fileno(), remaining)
            if copied == 0:
                break
            remaining -= copied
    except (AttributeError, OSError):  # not Linux, or a filesystem without it
        shutil.copyfileobj(source, target, _COPY_CHUNK)


def write_empty_shard(
    output_dir: str, name: str, compression: str, s3_settings: dict | None = None
) -> None:
    """A shard that no key hashed to still exists, so `-of-N` always means N files."""
    concatenate([], FileSystems.join(output_dir, name), compression, s3_settings)


class JsonLinesPiece:
    """One JSON-lines piece file per bundle, created on the first line (rejects are rare)."""

    def __init__(self, temp_dir: str, prefix: str):
        self._temp_dir = temp_dir
        self._prefix = prefix
        self._handle = None
        self._path = None

    def write(self, record: dict) -> None:
        if self._handle is None:
            self._path = FileSystems.join(
                self._temp_dir, f"{self._prefix}-{uuid.uuid4().hex}.jsonl"
            )
            self._handle = FileSystems.create(
                self._path, compression_type=CompressionTypes.UNCOMPRESSED
            )
        self._handle.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))

    def close(self) -> list[str]:
        """Closes the piece; returns its path in a list (empty when nothing was written)."""
        if self._handle is None:
            return []
        self._handle.close()
        self._handle = None
        return [self._path]
