"""The planned default under short training: modes agree, the budget is honoured, early
stopping counts steps."""

import json
import time
import types

import numpy as np
import pytest

from segmodel import config, train, train_callbacks
from segmodel.input_pipeline import make_dataset
from segmodel.manifest import load_manifest
from segmodel.saving import load_model
from segmodel.unet import class_probabilities

# The default plan, shrunk so that a short training takes seconds on CI.
TINY = ["model.base_filters=4", "train.steps_per_epoch=5", "train.learning_rate=0.01"]


def _mode_agreement(model, data_dir, cfg) -> float:
    """Share of pixels whose class is the same in inference and training mode, on batches like
    the ones training saw (training mode normalises with the batch's own statistics)."""
    manifest = load_manifest(str(data_dir))
    ds = make_dataset(str(data_dir), manifest, "train", cfg.data, training=True, seed=7)
    same = total = 0
    for image, mask in ds.take(3):
        infer = np.asarray(class_probabilities(model(image, training=False))).argmax(-1)
        trained = np.asarray(class_probabilities(model(image, training=True))).argmax(-1)
        valid = np.asarray(mask) != manifest["ignore_label"]
        same += int((infer == trained)[valid].sum())
        total += int(valid.sum())
    return same / total


def _trained(ingested_dir, workdir, extra):
    state = train.train(str(ingested_dir), str(workdir), "default", [*TINY, *extra], verbose=0)
    with open(workdir / "config.json") as f:
        cfg = config.from_dict(json.load(f))
    return state, load_model(str(workdir / "last.keras")), cfg


@pytest.mark.slow
def test_inference_mode_matches_training_mode_after_short_training(ingested_dir, tmp_path):
    """The small-data failure: after a few dozen steps BatchNorm's moving averages (Keras'
    momentum 0.99) are still mostly their initial values, so inference-mode masks differ from
    what training optimised. The default plan must not have that gap."""
    state, model, cfg = _trained(ingested_dir, tmp_path / "plan", ["train.epochs=6"])
    assert state["optimizer_iterations"] == 30
    assert _mode_agreement(model, ingested_dir, cfg) > 0.97
    # The check has teeth: Keras' default momentum fails it after the same training.
    _, slow, cfg = _trained(
        ingested_dir, tmp_path / "bn99", ["train.epochs=6", "model.norm_momentum=0.99"]
    )
    assert _mode_agreement(slow, ingested_dir, cfg) < 0.9


@pytest.mark.slow
def test_time_budget_plans_the_schedule_to_end_within_it(ingested_dir, tmp_path, capsys):
    workdir = tmp_path / "run"
    start = time.time()
    state = train.train(
        str(ingested_dir), str(workdir), "default", [*TINY, "train.max_minutes=0.4"], verbose=0
    )
    elapsed = time.time() - start
    out = capsys.readouterr().out
    assert out.startswith("Plan: ") and "Budget 0.4 min:" in out
    assert (workdir / "plan.json").exists()
    assert json.loads((workdir / "config.json").read_text())["train"]["epochs"] == 0
    assert state["epochs_done"] == state["planned_epochs"] >= 2
    assert state["train_seconds"] <= 0.4 * 60 * 1.15
    assert elapsed < 0.4 * 60 + 30  # start-up, tracing and the final save on top of the budget
    rates = [h["learning_rate"] for h in state["history"]]
    # The decay was fitted to the budget, not cut off: the last epoch ends near the floor.
    # (within about one epoch: the plan is re-measured after every epoch)
    assert rates[-1] < 0.15 * 0.01, rates
    # Run again: nothing left to do; a longer budget on resume plans more epochs.
    assert (
        train.train(str(ingested_dir), str(workdir), verbose=0)["epochs_done"]
        == state["epochs_done"]
    )
    longer = train.train(
        str(ingested_dir), str(workdir), overrides=["train.max_minutes=0.6"], verbose=0
    )
    assert longer["epochs_done"] > state["epochs_done"]


def test_learning_rate_warms_up_then_decays_to_the_floor():
    lr = [train_callbacks.learning_rate_at(s, 100, 10, 1.0) for s in range(101)]
    assert lr[0] == pytest.approx(0.01) and lr[10] == pytest.approx(1.0)
    assert lr[100] == pytest.approx(0.01) and lr[55] == pytest.approx(0.505)
    assert all(a <= b for a, b in zip(lr[:11], lr[1:11], strict=False))
    assert all(a >= b for a, b in zip(lr[10:], lr[11:], strict=False))


class _FakeModel:
    def __init__(self):
        self.stop_training = False
        self.optimizer = types.SimpleNamespace(iterations=np.int64(0))


def _run_early_stopping(cfg_overrides, scores, steps_per_epoch=100):
    from segmodel import config

    cfg = config.override(config.smoke(), cfg_overrides)
    stopper = train_callbacks.StepEarlyStopping(
        "val_mean_iou", cfg.train.early_stopping_steps, cfg.train.early_stopping_min_steps, cfg
    )
    model = _FakeModel()
    stopper.set_model(model)
    for epoch, score in enumerate(scores):
        model.optimizer.iterations = np.int64((epoch + 1) * steps_per_epoch)
        stopper.on_epoch_end(epoch, {"val_mean_iou": score})
        if model.stop_training:
            return epoch + 1
    return None


def test_early_stopping_counts_steps_and_waits_for_batchnorm_statistics():
    flat = [0.5] + [0.4] * 9  # never better after step 100
    group = ["model.norm=group", "train.early_stopping_steps=200"]
    assert _run_early_stopping(group, flat) == 3  # step 300: 200 steps without a better score
    assert _run_early_stopping([*group, "train.early_stopping_min_steps=600"], flat) == 6
    # BatchNorm with momentum 0.99: a horizon of 100 steps, so not before 5 x 100 steps
    batch = ["model.norm=batch", "model.norm_momentum=0.99", "train.early_stopping_steps=200"]
    assert _run_early_stopping(batch, flat) == 5
    assert _run_early_stopping(group, [0.1 * i for i in range(10)]) is None  # improving
