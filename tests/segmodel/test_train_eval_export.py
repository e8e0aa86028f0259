import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from segmodel import evaluate, export
from segmodel.preprocessing import normalize
from segmodel.saving import load_model
from segmodel.unet import class_probabilities


def test_smoke_training_loss_falls_and_metrics_are_finite(trained_run):
    workdir, state = trained_run
    history = state["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[-1]["loss"] < history[0]["loss"]
    for h in history:
        assert all(np.isfinite(v) for k, v in h.items())
    for name in ("config.json", "last.keras", "best.keras", "state.json", "history.csv"):
        assert (workdir / name).exists(), name
    assert (workdir / "logs").is_dir()
    assert state["optimizer_iterations"] == 4 * 6


def test_evaluate_writes_metrics_and_overlays(trained_run, ingested_dir, tmp_path, capsys):
    workdir, state = trained_run
    out = tmp_path / "eval"
    assert (
        evaluate.main(
            [
                "--model",
                str(workdir),
                "--data_dir",
                str(ingested_dir),
                "--split",
                "val",
                "--output_dir",
                str(out),
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images"] > 0
    assert 0.0 <= metrics["mean_iou"] <= 1.0
    assert np.array(metrics["confusion_matrix"]).shape == (3, 3)
    assert (out / "overlays.png").stat().st_size > 0
    assert "mean IoU" in capsys.readouterr().out
    # the best checkpoint's val mean IoU is what evaluate computes on the same split
    assert metrics["mean_iou"] == pytest.approx(state["best"], abs=1e-4)


def test_evaluate_with_tta_averages_the_views(trained_run, ingested_dir):
    """--tta flips through evaluate: recorded in the metrics, and the confusion matrix is the
    one of the flip-averaged predictions (it differs from the plain one's on this model)."""
    workdir, _ = trained_run
    plain = evaluate.evaluate(str(workdir), str(ingested_dir), "val")
    flips = evaluate.evaluate(str(workdir), str(ingested_dir), "val", tta="flips")
    assert (plain["tta"], flips["tta"]) == ("none", "flips")
    assert flips["images"] == plain["images"] > 0
    assert np.array(flips["confusion_matrix"]).sum() == np.array(plain["confusion_matrix"]).sum()
    assert flips["confusion_matrix"] != plain["confusion_matrix"]
    assert 0.0 <= flips["mean_iou"] <= 1.0


def test_export_matches_in_memory_model(trained_run, tmp_path, synthetic_dir):
    workdir, _ = trained_run
    metadata = export.export(str(workdir), str(tmp_path / "model"))
    assert set(os.listdir(tmp_path / "model")) - {"openvino"} == {
        "model.keras",
        "saved_model",
        "metadata.json",
        "README.md",
    }
    assert metadata["num_classes"] == 3 and metadata["size_multiple"] == 4
    assert (
        export.load_metadata(str(tmp_path / "model"))["model_version"] == metadata["model_version"]
    )
    data = next((synthetic_dir / "images" / "group_000").iterdir()).read_bytes()
    loaded = tf.saved_model.load(
        str(tmp_path / "model" / "saved_model")
    )  # keep: owns the variables
    served = loaded.serve(tf.constant([data]))
    model = load_model(str(tmp_path / "model"))
    image = tf.cast(tf.io.decode_png(data, channels=3), tf.float32)[None]
    norm = metadata["normalization"]
    expected = np.asarray(class_probabilities(model(normalize(image, norm["mean"], norm["std"]))))
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(served["classes"].numpy(), expected.argmax(-1))


@pytest.mark.slow
def test_killed_training_resumes_from_last_checkpoint(ingested_dir, tmp_path):
    workdir = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "segmodel.train",
        "--data_dir",
        str(ingested_dir),
        "--workdir",
        str(workdir),
        "--preset",
        "smoke",
        "--set",
        "train.epochs=200",
        "--set",
        "train.steps_per_epoch=3",
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    state_path = workdir / "state.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        if state_path.exists() and json.loads(state_path.read_text())["epochs_done"] >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # mid-epoch, no chance to clean up
    proc.wait()
    killed = json.loads(state_path.read_text())
    assert killed["epochs_done"] >= 2
    done = killed["epochs_done"] + 2
    out = subprocess.run(
        cmd[:-4] + ["--set", f"train.epochs={done}", "--set", "train.steps_per_epoch=3"],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert (
        f"Resuming {workdir} after epoch {killed['epochs_done']} (optimizer step {killed['optimizer_iterations']})"
        in out.stdout
    )
    final = json.loads(state_path.read_text())
    assert [h["epoch"] for h in final["history"]] == list(range(1, done + 1))  # no gaps, no repeats
    assert final["optimizer_iterations"] == done * 3
    assert not list(workdir.glob("*.tmp*"))
    # one numbered checkpoint left, the one state.json names, and last.keras is that file
    assert [p.name for p in workdir.glob("epoch-*.keras")] == [final["checkpoint"]]
    assert (workdir / "last.keras").samefile(workdir / final["checkpoint"])


@pytest.mark.slow
def test_resuming_with_more_epochs_stretches_the_learning_rate_schedule(ingested_dir, tmp_path):
    from segmodel import train

    args = (str(ingested_dir), str(tmp_path / "run"), "smoke")
    first = train.train(*args, ["train.epochs=2", "train.steps_per_epoch=2"], verbose=0)
    floor = first["history"][-1]["learning_rate"]
    longer = train.train(*args, ["train.epochs=6"], verbose=0)
    assert [h["epoch"] for h in longer["history"]] == [1, 2, 3, 4, 5, 6]
    # epoch 3 of 6 is mid-curve, well above where the 2-epoch schedule ended
    assert longer["history"][2]["learning_rate"] > 2 * floor


def test_an_export_loads_in_a_fresh_interpreter_the_documented_way(exported_model):
    code = (
        "import sys, segmodel; model = segmodel.load_model(sys.argv[1]); "
        "meta = segmodel.load_metadata(sys.argv[1]); "
        "print(model.output_shape[-1], meta['num_classes'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(exported_model)],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["3", "3"]
    assert "segmodel.load_model" in (exported_model / "README.md").read_text()


def test_training_from_a_scheme_tensorflow_cannot_read_says_what_to_do(tmp_path):
    from segmodel import train as train_module

    with pytest.raises(ValueError, match="aws s3 sync s3://bucket/data"):
        train_module.train("s3://bucket/data", str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()  # refused before anything was written
    train_module.check_readable_by_tensorflow("gs://bucket/data")  # TensorFlow reads these


@pytest.mark.slow
def test_a_mixed_precision_run_exports_a_float32_model(ingested_dir, tmp_path):
    # Trained in mixed bfloat16 (what the plan picks on CPUs with bf16 units), exported in
    # float32: the export predicts the same everywhere and runs at full speed on other CPUs.
    from segmodel import train

    workdir = tmp_path / "run"
    overrides = [
        "train.epochs=1",
        "train.steps_per_epoch=3",
        "train.mixed_precision=true",
        "train.mixed_dtype=bfloat16",
    ]
    train.train(str(ingested_dir), str(workdir), "smoke", overrides, verbose=0)
    trained = load_model(str(workdir / "best.keras"))
    assert {layer.dtype_policy.name for layer in trained.layers} >= {"mixed_bfloat16"}
    export.export(str(workdir), str(tmp_path / "model"))
    exported = load_model(str(tmp_path / "model"))
    assert {layer.dtype_policy.compute_dtype for layer in exported.layers} == {"float32"}
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    a = np.asarray(class_probabilities(trained(x)), np.float32)
    b = np.asarray(class_probabilities(exported(x)))
    assert np.abs(a - b).max() < 0.05  # bfloat16 rounding only
    assert (a.argmax(-1) == b.argmax(-1)).mean() > 0.95
