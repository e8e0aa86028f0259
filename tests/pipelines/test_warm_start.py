"""The worker warm start: the model a run's listing stage preloads is what its handler uses, once,
and nothing stale or broken ever replaces the handler's own load."""

import os

import apache_beam as beam
import numpy as np
import pytest

from pipelines.infer import pipeline as infer
from pipelines.infer import warm_start
from pipelines.infer.handler import KerasSegmentationHandler
from segmodel.saving import load_model


@pytest.fixture(autouse=True)
def no_leftover_preload():
    warm_start.take("", "", False)  # waits for every load under way and drops what is left
    yield
    warm_start.take("", "", False)


def _same_predictions(a, b):
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(a.predict_on_batch(x), b.predict_on_batch(x))


def test_the_run_takes_its_preloaded_model_once(exported_model):
    warm_start.start("run-1", str(exported_model), False)
    model = warm_start.take("run-1", str(exported_model), False)
    assert model is not None
    _same_predictions(model, load_model(str(exported_model)))
    assert warm_start.take("run-1", str(exported_model), False) is None  # once


def test_only_the_same_run_model_and_safe_mode_take_a_preload(exported_model):
    model_dir = str(exported_model)
    # A long-lived worker: an earlier job's preload that nothing took is dropped by the next.
    warm_start.start("run-1", model_dir, False)
    warm_start.start("run-2", model_dir, False)
    assert warm_start.take("run-1", model_dir, False) is None
    # A model preloaded in one safe mode never reaches a handler in the other.
    warm_start.start("run-3", model_dir, True)
    assert warm_start.take("run-3", model_dir, False) is None
    assert warm_start.take("run-3", model_dir, True) is None  # dropped by the take before


def test_a_failed_preload_leaves_the_error_to_the_handler(tmp_path):
    missing = str(tmp_path / "no-model")
    warm_start.start("run-1", missing, False)
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
    monkeypatch.setattr(warm_start, "take", lambda *a: taken.append(real_take(*a)) or taken[-1])
    summary = infer.run(
        [
            f"--model_dir={exported_model}",
            f"--input_pattern={tmp_path / 'in'}/*.png",
            f"--output_dir={tmp_path / 'out'}",
            "--profile=inprocess",
        ]
    )
    assert summary["predictions"] == 3
    assert {a[:3] for a in started} == {(summary["run_id"], str(exported_model), False)}
    assert {a[3] for a in started} == {infer.FormRequest("auto", "auto", 0)}  # the run's form
    assert len(taken) == 1 and taken[0] is not None


@pytest.mark.slow
def test_the_fnapirunner_sets_up_the_listing_stage_on_every_worker_process(tmp_path):
    """What WarmWorkers rests on (Beam 2.77): with several worker processes, the FnApiRunner
    sets up a DoFn of the stage that holds the match on every process, also those whose share
    of the single match element is empty; so each process that later runs inference started
    its load. If a Beam upgrade changes this, the preload only stops saving time."""
    from apache_beam.io import fileio
    from apache_beam.options.pipeline_options import PipelineOptions

    markers = tmp_path / "markers"
    markers.mkdir()
    for i in range(40):
        (tmp_path / f"{i:02d}.txt").write_text(str(i))

    class MarkSetup(beam.DoFn):  # a local class: pickled by value for the worker processes
        def __init__(self, folder, stage):
            self._folder, self._stage = folder, stage

        def setup(self):
            open(os.path.join(self._folder, f"{self._stage}-{os.getpid()}"), "w").close()

        def process(self, element):
            yield element

    options = PipelineOptions(
        ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    )
    with beam.Pipeline(options=options) as p:
        (
            p
            | fileio.MatchFiles(f"{tmp_path}/*.txt")
            | "Listing" >> beam.ParDo(MarkSetup(str(markers), "listing"))
            | beam.Reshuffle()
            | "Later" >> beam.ParDo(MarkSetup(str(markers), "later"))
        )
    pids = {stage: set() for stage in ("listing", "later")}
    for name in os.listdir(markers):
        stage, pid = name.split("-")
        pids[stage].add(pid)
    assert len(pids["later"]) == 2  # both processes got work after the reshuffle
    assert pids["listing"] == pids["later"]
