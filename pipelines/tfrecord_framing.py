"""TFRecord framing: length, masked CRC-32C of the length, data, masked CRC-32C of the data.

    python -c "from pipelines.tfrecord_framing import read_record; print(len(read_record(open('out/data/train-00000-of-00001.tfrecord', 'rb'))))"

The format TensorFlow's TFRecordWriter writes (tensorflow/core/lib/io/record_writer.cc), in a
few lines of our own with google-crc32c, so that ingest workers need neither TensorFlow nor a
private Beam class. tests/pipelines/test_tfrecord_framing.py reads our files back with
tf.data.TFRecordDataset and ours back from TensorFlow's.
"""

from __future__ import annotations

import struct

import google_crc32c

_MASK_DELTA = 0xA282EAD8


def masked_crc(data: bytes) -> int:
    """CRC-32C rotated right by 15 bits plus a constant, as TFRecord stores it."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One record's bytes as they go into a .tfrecord file."""
    header = struct.pack("<Q", len(data))
    return b"".join(
        (header, struct.pack("<I", masked_crc(header)), data, struct.pack("<I", masked_crc(data)))
    )


def write_record(f, data: bytes) -> None:
    f.write(frame(data))


def read_record(f) -> bytes | None:
    """The next record of a binary file object, or None at a clean end of file.

    Raises:
      ValueError: on a truncated record or a checksum that does not match (corrupt data).
    """
    header = f.read(12)
    if not header:
        return None
    if len(header) < 12:
        raise ValueError(f"truncated record header ({len(header)} of 12 bytes)")
    length_bytes, (length_crc,) = header[:8], struct.unpack("<I", header[8:])
    if masked_crc(length_bytes) != length_crc:
        raise ValueError("corrupt record length (checksum mismatch)")
    (length,) = struct.unpack("<Q", length_bytes)
    data = f.read(length)
    footer = f.read(4)
    if len(data) < length or len(footer) < 4:
        raise ValueError(f"truncated record ({len(data)} of {length} bytes)")
    if masked_crc(data) != struct.unpack("<I", footer)[0]:
        raise ValueError("corrupt record data (checksum mismatch)")
    return data
