import apache_beam as beam
import tensorflow as tf
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.ingest import shard_writer


def test_shard_counts_follow_bytes_or_fixed_count():
    assert shard_writer.shard_counts({"train": 300, "val": 1}, target_shard_bytes=100) == {
        "train": 3,
        "val": 1,
    }
    assert shard_writer.shard_counts({"train": 300}, num_shards=7) == {"train": 7}
    assert shard_writer.shard_name("val", 2, 10, "gzip") == "val-00002-of-00010.tfrecord.gz"


def test_pieces_merge_into_readable_shards(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    records = [("train", f"k{i}", f"record-{i}".encode()) for i in range(50)]
    counts = {"train": 3}
    pieces = []
    for chunk in (records[:20], records[20:]):  # two "bundles"
        writer = shard_writer.PieceWriter(str(temp))
        for split, key, record in chunk:
            writer.write(split, key, record, counts)
        pieces += [wv.value for wv in writer.close()]
    assert len(pieces) == 6  # each bundle touched all 3 shards
    with TestPipeline(runner="FnApiRunner") as p:
        shards = (
            p
            | beam.Create(pieces)
            | beam.GroupByKey()
            | beam.Map(shard_writer.merge_shard, str(tmp_path), "gzip")
        )
        assert_that(
            shards | beam.Map(lambda s: s.records) | beam.CombineGlobally(sum), equal_to([50])
        )
    read = []
    for path in sorted(tmp_path.glob("train-*-of-00003.tfrecord.gz")):
        read += [r.numpy() for r in tf.data.TFRecordDataset(str(path), compression_type="GZIP")]
    assert sorted(read) == sorted(r for _, _, r in records)
    assert list(temp.iterdir()) == []  # pieces removed once merged
    assert not list(tmp_path.glob(".*.tmp"))


def test_local_assembly_renames_the_first_piece_and_appends_the_rest(tmp_path):
    pieces = []
    for i, size in enumerate((1000, 3_000_000, 7)):
        path = tmp_path / f"p{i}.piece"
        path.write_bytes(bytes([65 + i]) * size)
        pieces.append(str(path))
    shard_writer._append_local(str(tmp_path / "shard"), pieces)
    data = (tmp_path / "shard").read_bytes()
    assert data == b"A" * 1000 + b"B" * 3_000_000 + b"C" * 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard"]  # pieces consumed
