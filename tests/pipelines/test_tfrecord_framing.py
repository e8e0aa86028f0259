import io

import pytest
import tensorflow as tf

from pipelines import tfrecord_framing


def test_our_framing_reads_in_tensorflow_and_back(tmp_path):
    records = [b"", b"x", bytes(range(256)) * 40]
    path = tmp_path / "ours.tfrecord"
    with open(path, "wb") as f:
        for r in records:
            tfrecord_framing.write_record(f, r)
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(path))] == records
    theirs = tmp_path / "theirs.tfrecord"
    with tf.io.TFRecordWriter(str(theirs)) as writer:
        for r in records:
            writer.write(r)
    assert theirs.read_bytes() == path.read_bytes()
    with open(theirs, "rb") as f:
        assert [tfrecord_framing.read_record(f) for _ in range(3)] == records
        assert tfrecord_framing.read_record(f) is None


@pytest.mark.parametrize(
    "damage,message",
    [(lambda b: b[:-3], "truncated"), (lambda b: b[:20] + b"Z" + b[21:], "checksum")],
)
def test_damaged_records_raise(damage, message):
    data = damage(tfrecord_framing.frame(b"hello world, a record"))
    with pytest.raises(ValueError, match=message):
        tfrecord_framing.read_record(io.BytesIO(data))
