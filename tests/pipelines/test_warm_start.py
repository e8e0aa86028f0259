"""The worker warm start: the model a run's listing stage preloads is what its handler uses, once,
and nothing stale or broken ever replaces the handler's own load."""

import numpy as np
import pytest

from pipelines.infer import pipeline as infer
from pipelines.infer import warm_start
from pipelines.infer.handler import KerasSegmentationHandler
from segmodel.saving import load_model


@pytest.fixture(autouse=True)
def no_leftover_preload():
    warm_start.take("")  # waits for any load an earlier test started
    yield
    warm_start.take("")


def _same_predictions(a, b):
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(a.predict_on_batch(x), b.predict_on_batch(x))


def test_the_run_takes_its_preloaded_model_once(exported_model):
    warm_start.start("run-1", str(exported_model), False)
    model = warm_start.take("run-1")
    assert model is not None
    _same_predictions(model, load_model(str(exported_model)))
    assert warm_start.take("run-1") is None  # once: a second load is the handler's own


def test_a_preload_of_another_run_is_never_taken(exported_model):
    # A long-lived worker: an earlier job's untaken preload may be an older file at the same path.
    warm_start.start("run-1", str(exported_model), False)
    warm_start.start("run-2", str(exported_model), False)
    assert warm_start.take("run-1") is None
    assert warm_start.take("run-2") is not None


def test_a_failed_preload_leaves_the_error_to_the_handler(tmp_path):
    missing = str(tmp_path / "no-model")
    warm_start.start("run-1", missing, False)
    assert warm_start.take("run-1") is None
    handler = KerasSegmentationHandler(missing, preloaded_by="run-1")
    with pytest.raises(FileNotFoundError, match="no-model"):
        handler.load_model()


def test_the_pipeline_preloads_in_its_listing_stage_and_the_handler_takes_it(
    tmp_path, exported_model, monkeypatch
):
    from builders import encode, random_pair, write

    for i in range(3):
        write(str(tmp_path / "in" / f"{i}.png"), encode(random_pair(i, 24, 30)[0], "PNG"))
    started, taken = [], []
    real_start, real_take = warm_start.start, warm_start.take
    monkeypatch.setattr(warm_start, "start", lambda *a: (started.append(a), real_start(*a))[1])
    monkeypatch.setattr(warm_start, "take", lambda run: taken.append(real_take(run)) or taken[-1])
    summary = infer.run(
        [
            f"--model_dir={exported_model}",
            f"--input_pattern={tmp_path / 'in'}/*.png",
            f"--output_dir={tmp_path / 'out'}",
            "--profile=inprocess",
        ]
    )
    assert summary["predictions"] == 3
    assert {a for a in started} == {(summary["run_id"], str(exported_model), False)}
    assert len(taken) == 1 and taken[0] is not None
