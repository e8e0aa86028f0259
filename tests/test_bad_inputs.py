"""The bad-input corpus (tests/builders.bad_corpus) through every stage: each stage finishes,
each bad item is a reject with its reason (or the run stops with one message naming the file),
every good item is processed, and the counts add up."""

import collections
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from builders import bad_corpus
from PIL import Image

from pipelines.infer import pipeline as infer
from pipelines.ingest import pipeline as ingest
from segmodel import train
from segmodel.manifest import ManifestError, load_manifest
from segmodel.saving import load_metadata

INPROCESS = ["--profile=inprocess"]


def _jsonl(folder, prefix):
    return [
        json.loads(line)
        for name in sorted(os.listdir(folder))
        if name.startswith(prefix)
        for line in (folder / name).read_text(encoding="utf-8").splitlines()
    ]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return root, bad_corpus(root)


def test_ingest_rejects_each_bad_input_and_keeps_every_good_one(corpus, tmp_path):
    root, outcome = corpus
    manifest = ingest.run(
        [
            f"--images_dir={root}/images",
            f"--masks_dir={root}/masks",
            f"--output_dir={tmp_path}",
            "--num_classes=3",
            "--splits=train=1",
            "--max_pixels=1000000",
            "--max_rejected=1",  # a corpus of mostly bad files, on purpose
            *INPROCESS,
        ]
    )
    expected = collections.Counter(v for v in outcome.values() if v != "ok")
    assert manifest["rejects"]["by_reason"] == dict(expected)
    good = sorted(k for k, v in outcome.items() if v == "ok")
    assert manifest["counts"]["accepted"] == len(good)
    assert (
        manifest["counts"]["found"]
        == manifest["counts"]["accepted"] + manifest["counts"]["rejected"]
    )
    rejects = _jsonl(tmp_path, "rejects")
    assert collections.Counter(r["reason"] for r in rejects) == expected
    for r in rejects:
        assert r["detail"] and (r["image"] or r["mask"])
    names = set()
    for record in tf.data.TFRecordDataset(
        [str(tmp_path / n) for n in manifest["splits"]["train"]["shards"]]
    ):
        example = tf.train.Example.FromString(record.numpy())
        names.add(example.features.feature["image/filename"].bytes_list.value[0].decode("utf-8"))
    assert sorted(names) == good  # unicode and spaces intact


def test_infer_rejects_bad_images_and_segments_the_rest(corpus, tmp_path, exported_model):
    root, outcome = corpus
    summary = infer.run(
        [
            f"--model_dir={exported_model}",
            f"--input_pattern={root}/images/**",
            f"--output_dir={tmp_path}",
            "--max_pixels=1000000",
            *INPROCESS,
        ]
    )
    assert summary["inputs"] == summary["predictions"] + summary["rejects"]
    reasons = collections.Counter(r["reason"] for r in _jsonl(tmp_path, "rejects"))
    assert reasons == {
        "empty_file": 1,
        "not_an_image": 1,
        "corrupt": 2,
        "too_many_pixels": 1,
        "symlink_outside_input": 1,
    }
    for record in _jsonl(tmp_path, "predictions"):
        mask = Image.open(tmp_path / "masks" / f"{record['path']}.png")
        mask.load()  # decodes fully
        assert mask.size == (record["width"], record["height"])
    assert (tmp_path / "masks" / "names" / "with space é ü 名前.png.png").exists()


@pytest.mark.slow
def test_infer_rejects_a_fifo_instead_of_blocking_on_it(tmp_path, exported_model):
    from builders import encode, random_pair, write

    write(str(tmp_path / "in/ok.png"), encode(random_pair(3)[0]))
    os.mkfifo(tmp_path / "in/pipe.png")
    run = subprocess.run(  # a subprocess, so that a regression fails on time instead of hanging
        [
            sys.executable,
            "-m",
            "pipelines.infer",
            f"--model_dir={exported_model}",
            f"--input_pattern={tmp_path}/in/*",
            f"--output_dir={tmp_path / 'out'}",
            *INPROCESS,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((tmp_path / "out/run_summary.json").read_text())
    assert (summary["inputs"], summary["predictions"], summary["rejects"]) == (2, 1, 1)
    [reject] = _jsonl(tmp_path / "out", "rejects")
    assert reject["reason"] == "not_a_regular_file" and reject["key"] == "pipe.png"


def test_truncated_shard_in_inference_is_a_reject_naming_the_file(
    tmp_path, exported_model, ingested_dir
):
    manifest = load_manifest(str(ingested_dir))
    shard = ingested_dir / manifest["splits"]["train"]["shards"][0]
    damaged = tmp_path / "shards" / shard.name
    damaged.parent.mkdir()
    data = shard.read_bytes()
    last, offset = 0, 0
    while offset < len(data):  # TFRecord framing: length (8) + crc (4) + data + crc (4)
        last = offset
        offset += 16 + int.from_bytes(data[offset : offset + 8], "little")
    damaged.write_bytes(data[: last + 20])  # cut inside the last record only
    summary = infer.run(
        [
            f"--model_dir={exported_model}",
            f"--input_tfrecords={damaged}",
            f"--output_dir={tmp_path / 'out'}",
            *INPROCESS,
        ]
    )
    [reject] = _jsonl(tmp_path / "out", "rejects")
    assert reject["reason"] == "corrupt_tfrecord" and str(damaged) in reject["detail"]
    assert summary["predictions"] == manifest["splits"]["train"]["records"] - 1
    assert summary["inputs"] == summary["predictions"] + 1


@pytest.mark.slow
def test_truncated_shard_stops_training_with_the_file_name(tmp_path, ingested_dir):
    data = tmp_path / "data"
    data.mkdir()
    manifest = load_manifest(str(ingested_dir))
    for name in os.listdir(ingested_dir):
        if name.endswith((".tfrecord", ".json", ".jsonl")):
            (data / name).write_bytes((ingested_dir / name).read_bytes())
    shard = data / manifest["splits"]["train"]["shards"][0]
    shard.write_bytes(shard.read_bytes()[:-3000])
    with pytest.raises(ValueError, match=f"{shard}: truncated or corrupt"):
        train.train(
            str(data), str(tmp_path / "run"), "smoke", ["train.steps_per_epoch=50"], verbose=0
        )


@pytest.mark.parametrize(
    "content,message",
    [
        ("{oops", "not valid JSON"),
        ('{"schema_version": 1}', "missing fields"),
        (
            '{"schema_version": 99, "num_classes": 2, "ignore_label": 255, "splits": {}, "stats": {}}',
            "schema version 99",
        ),
    ],
)
def test_malformed_manifest_names_the_file(tmp_path, content, message):
    (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(ManifestError, match=message) as info:
        load_manifest(str(tmp_path))
    assert str(tmp_path / "manifest.json") in str(info.value)


def test_malformed_model_metadata_names_the_file(tmp_path, capsys):
    (tmp_path / "metadata.json").write_text("[1, 2")
    with pytest.raises(ValueError, match="metadata.json: not valid JSON"):
        load_metadata(str(tmp_path))
    assert (
        infer.main(
            [
                f"--model_dir={tmp_path}",
                "--input_pattern=x/*",
                f"--output_dir={tmp_path}/o",
                *INPROCESS,
            ]
        )
        == 2
    )
    assert "metadata.json" in capsys.readouterr().err


def test_unwritable_output_is_one_clear_error(tmp_path, capsys, synthetic_dir):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    args = [
        f"--images_dir={synthetic_dir}/images",
        f"--masks_dir={synthetic_dir}/masks",
        f"--output_dir={blocker}/out",
        "--num_classes=3",
        *INPROCESS,
    ]
    assert ingest.main(args) == 2
    err = capsys.readouterr().err
    assert f"--output_dir {blocker}/out: cannot write there" in err
    assert not np.any([p.name == "manifest.json" for p in tmp_path.rglob("*")])
