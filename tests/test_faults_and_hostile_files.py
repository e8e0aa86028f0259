"""Faults (a worker raising part way, inference killed mid-run) and hostile files (models with
code, paths that climb out of the output folder, shell and pickle use)."""

import json
import os
import signal
import subprocess
import sys
import time

import apache_beam as beam
import keras
import numpy as np
import pytest
from apache_beam.ml.inference.base import ModelHandler, PredictionResult
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from builders import encode, random_pair, write
from PIL import Image

from pipelines import run_paths
from pipelines.infer import config, finalize, handler, inputs
from pipelines.infer import pipeline as infer
from segmodel.saving import load_metadata, load_model


class NoModel:
    """RunInference keeps models in a weak-reference cache: a plain object() would not do."""


class FlakyHandler(ModelHandler):
    """Raises for any batch holding a 13x13 image; otherwise predicts class 0 everywhere."""

    def load_model(self):
        return NoModel()

    def run_inference(self, batch, model, inference_args=None):
        if any(x.shape[:2] == (13, 13) for x in batch):
            raise RuntimeError("simulated worker fault")
        return [PredictionResult(x, np.tile([0.9, 0.05, 0.05], (*x.shape[:2], 1))) for x in batch]

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": 1}


def test_a_raising_worker_gives_rejects_with_no_gaps_or_duplicates(tmp_path, exported_model):
    inputs = [
        (
            f"img{i}.png",
            encode(random_pair(i, 13 if i % 3 == 0 else 16, 13 if i % 3 == 0 else 16)[0]),
        )
        for i in range(9)
    ]
    options = config.InferConfig.from_options(
        config.InferOptions(
            [f"--model_dir={exported_model}", f"--output_dir={tmp_path}", "--input_pattern=x"]
        )
    )
    metadata = load_metadata(str(exported_model))
    with TestPipeline(runner="FnApiRunner") as p:
        result = (
            p | beam.Create(inputs) | infer.SegmentImages(metadata, options, handler=FlakyHandler())
        )
        assert_that(
            result["predictions"] | "P" >> beam.Map(lambda r: r["path"]),
            equal_to([n for i, (n, _) in enumerate(inputs) if i % 3]),
            label="Predicted",
        )
        assert_that(
            result["rejects"] | "R" >> beam.Map(lambda r: (r.key, r.reason)),
            equal_to([(n, "inference_failed") for i, (n, _) in enumerate(inputs) if i % 3 == 0]),
            label="Rejected",
        )


@pytest.mark.slow
def test_inference_killed_mid_run_leaves_no_partial_mask_and_rerun_completes(
    tmp_path, exported_model
):
    images = tmp_path / "in"
    for i in range(60):
        write(str(images / f"img{i:03d}.png"), encode(random_pair(i, 64, 64)[0]))
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "pipelines.infer",
        f"--model_dir={exported_model}",
        f"--input_pattern={images}/*.png",
        f"--output_dir={out}",
        "--batch_size=1",
        "--profile=inprocess",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "masks").glob("*.png"))) < 5:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = list((out / "masks").glob("*.png"))
    assert 5 <= len(written) < 60
    for mask in written:  # every mask on disk decodes: no partial files under final names
        Image.open(mask).load()
    assert not list(out.glob("predictions-*.jsonl"))  # nothing reported as done
    assert not (out / "runs.jsonl").exists()  # a killed run leaves no ledger record
    rerun = subprocess.run(cmd + ["--skip_existing"], capture_output=True, text=True, env=env)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    records = [
        json.loads(line)
        for f in out.glob("predictions-*.jsonl")
        for line in f.read_text().splitlines()
    ]
    assert sorted(r["path"] for r in records) == [f"img{i:03d}.png" for i in range(60)]
    assert sum(r["skipped"] for r in records) >= len(written)
    assert json.loads((out / "run_summary.json").read_text())["predictions"] == 60
    (ledger,) = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert ledger["inputs"] == 60 and ledger["skipped"] == sum(r["skipped"] for r in records)
    assert ledger["segmented"] == 60 - ledger["skipped"] == ledger["stats"]["images"]


def _lambda_model(folder, exported_model):
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Lambda(lambda x: keras.ops.softmax(x), output_shape=(None, None, 3))(
        inputs
    )
    folder.mkdir()
    keras.Model(inputs, outputs).save(folder / "model.keras")
    (folder / "metadata.json").write_text((exported_model / "metadata.json").read_text())
    return folder


def test_models_with_code_are_refused_unless_unsafe(tmp_path, exported_model, capsys):
    model_dir = _lambda_model(tmp_path / "evil", exported_model)
    with pytest.raises(ValueError, match="cannot load model"):
        load_model(str(model_dir))
    assert load_model(str(model_dir), unsafe=True) is not None
    args = [
        f"--model_dir={model_dir}",
        f"--input_pattern={tmp_path}/none/*.png",
        f"--output_dir={tmp_path / 'out'}",
        "--profile=inprocess",
    ]
    assert infer.main(args) == 2
    assert "refusing to load it. Pass --unsafe_model" in capsys.readouterr().err
    handler.check_model_is_safe(str(model_dir), unsafe=True)  # the flag lifts it


def test_record_names_cannot_climb_out_of_the_output_folder():
    from segmodel import record_schema

    record = record_schema.make_example(
        image_encoded=encode(np.zeros((2, 2, 3), np.uint8)),
        image_format="png",
        height=2,
        width=2,
        channels=3,
        bit_depth=8,
        mask_png=encode(np.zeros((2, 2), np.uint8)),
        filename="../../etc/cron.d/x.png",
        source_id="x",
    )
    relative, _ = inputs.parse_record(record)
    assert relative.startswith("unsafe/") and ".." not in relative
    assert run_paths.safe_relative("/abs/in/../../x.png", "/abs/in/") is None


def test_disk_full_mid_run_is_one_clear_error_and_nothing_is_reported_done(
    tmp_path, exported_model, monkeypatch, capsys
):
    import errno

    images = tmp_path / "in"
    for i in range(6):
        write(str(images / f"img{i}.png"), encode(random_pair(i, 20, 20)[0]))
    from pipelines.infer import steps

    real = steps.write_atomically
    calls = []

    def fills_up(path, data):
        calls.append(path)
        if len(calls) > 3:  # the disk is full after three masks
            raise OSError(f"could not write {path}: {os.strerror(errno.ENOSPC)}")
        real(path, data)

    monkeypatch.setattr(steps, "write_atomically", fills_up)
    out = tmp_path / "out"
    code = infer.main(
        [
            f"--model_dir={exported_model}",
            f"--input_pattern={images}/*.png",
            f"--output_dir={out}",
            "--batch_size=1",
            "--profile=inprocess",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and str(out / "masks") in err
    assert len(err.strip().splitlines()) == 1  # one line, not a traceback
    assert not (out / "run_summary.json").exists() and not list(out.glob("predictions-*"))
    for mask in (out / "masks").glob("*.png"):
        Image.open(mask).load()  # what was written is whole


def test_safe_model_check_walks_the_config_instead_of_matching_text():
    layer = {"class_name": "Conv2D", "config": {"name": "Lambda_like_name"}}
    assert handler.executable_code_in({"config": {"layers": [layer]}}) is None
    hidden = {"class_name": "Lambda", "config": {"name": "evil", "function": {}}}
    nested = {"config": {"layers": [layer, {"config": {"layers": [hidden]}}]}}
    assert handler.executable_code_in(nested) == "Lambda evil"
    assert handler.executable_code_in({"a": [{"__lambda__": "code"}]}) == "a serialized lambda"


def test_counts_that_do_not_add_up_fail_the_run(capsys):
    from runners.launch import cli_main

    finalize.check_counts({"inputs": 3, "predictions": 2, "rejects": 1}, "out")  # adds up

    def run(argv):
        finalize.check_counts({"inputs": 3, "predictions": 1, "rejects": 1}, "out")

    assert cli_main(run, []) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: inference lost track of inputs: 3 inputs != 1 predictions")
