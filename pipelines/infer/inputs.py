"""Bulk inference inputs: matched files read safely, or our own TFRecord shards read record by
record.

A FIFO, a symlink out of the input folder, an unreadable file, a corrupt record or a truncated
shard each end in a reject naming the file, never in a hang or a silent gap.
"""

from __future__ import annotations

import os
import stat
import uuid

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipelines import tfrecord_framing
from pipelines.fileio import escapes_root, is_remote
from pipelines.rejects import Reject
from pipelines.run_paths import safe_relative


def check_matches(pattern: str, flag: str) -> None:
    """ValueError (exit 2) when `pattern` matches no file: said before any runner starts, and
    no run is recorded. Stops listing at the first match, so a folder of millions costs one
    page of a listing (a pattern that matches nothing still lists what lies under its
    prefix)."""
    try:
        found = FileSystems.match([pattern], limits=[1])[0].metadata_list
    except Exception as e:  # BeamIOError: a missing bucket, no credentials, ...
        raise ValueError(f"{flag} {pattern}: cannot list it ({e})") from None
    if not found:
        raise ValueError(f"{flag} {pattern} matches no file; check the path and the glob")


def is_regular_file(path: str) -> bool:
    """False for a local FIFO, socket or device (object stores hold only regular objects)."""
    if is_remote(path):
        return True
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True  # let the read report it


def read_matched(readable, root: str):
    relative = safe_relative(readable.metadata.path, root)
    if relative is not None and escapes_root(readable.metadata.path, root):
        yield beam.pvalue.TaggedOutput(
            "rejects",
            Reject(
                "symlink_outside_input",
                "symlink to a file outside the input folder",
                relative,
                readable.metadata.path,
            ),
        )
        return
    if relative is None:
        yield beam.pvalue.TaggedOutput(
            "rejects",
            Reject("unsafe_path", "path would leave the output folder", readable.metadata.path),
        )
        return
    if not is_regular_file(readable.metadata.path):  # a FIFO would block the read for ever
        yield beam.pvalue.TaggedOutput(
            "rejects",
            Reject(
                "not_a_regular_file", "a FIFO, socket or device, not a file", relative, relative
            ),
        )
        return
    try:
        yield relative, readable.read()
    except Exception as e:
        yield beam.pvalue.TaggedOutput(
            "rejects", Reject("unreadable_file", f"cannot read: {e}", relative, relative)
        )


def parse_record(serialized: bytes):
    """One of our TFRecords → (its relative file name, encoded image bytes)."""
    import tensorflow as tf

    from segmodel import record_schema

    feature = tf.train.Example.FromString(serialized).features.feature
    name = feature[record_schema.IMAGE_FILENAME].bytes_list.value[0].decode("utf-8")
    relative = safe_relative(name, "") or f"unsafe/{uuid.uuid4().hex}"
    return relative, feature[record_schema.IMAGE_ENCODED].bytes_list.value[0]


def read_tfrecord_file(metadata):
    """Every record of one shard as (relative name, image bytes); a truncated or corrupt shard
    ends in one reject naming the file and the record, after the records before the damage."""
    path = metadata.path
    count = 0
    try:
        with FileSystems.open(path) as f:  # .gz shards are decompressed by extension
            while (record := tfrecord_framing.read_record(f)) is not None:
                count += 1
                try:
                    yield parse_record(record)
                except Exception as e:
                    yield beam.pvalue.TaggedOutput(
                        "rejects",
                        Reject(
                            "bad_record",
                            f"{path}: record {count} is not one of our "
                            f"examples ({type(e).__name__})",
                            f"{path}#{count}",
                        ),
                    )
    except (ValueError, OSError) as e:
        detail = str(e).split(":")[0][:120]  # Beam's message carries a hex dump; keep the gist
        yield beam.pvalue.TaggedOutput(
            "rejects",
            Reject(
                "corrupt_tfrecord",
                f"{path}: unreadable after record {count}: {detail}",
                f"{path}#{count + 1}",
            ),
        )
