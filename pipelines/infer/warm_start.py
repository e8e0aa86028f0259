"""Worker warm start: TensorFlow, Keras and the model load while the listing stage still runs.

    matched | "WarmWorkers" >> beam.ParDo(WarmWorkers(run_id, model_dir, unsafe))
    KerasSegmentationHandler(model_dir, ..., preloaded_by=run_id)     # takes it, once

A worker spends 3-4 s importing TensorFlow and Keras and loading the model, and Beam asks for the
model (the handler's `load_model`, in RunInference's setup) only when the inference stage begins,
after the listing and the reshuffle; the worker's two cores idle meanwhile. `WarmWorkers` sits
in the listing stage, which the FnApiRunner sets up on every worker process, even those whose
share of it is empty: its `setup` starts the load in a daemon thread, and `take()` hands the
handler of the same run that model, once. Anything else (a failed preload, a worker that never
ran the listing stage, a preload of another run, which may be an older file at the same path)
falls back to the handler's own load, so this only ever saves time
(about 1 s of a 1,000-image local run's start, more where listing takes longer:
docs/benchmarks.md).
"""

from __future__ import annotations

import threading

import apache_beam as beam

_lock = threading.Lock()
_preload: dict = {}  # run id -> {"thread": Thread, "model": model or None}; one run at a time


def _load(model_dir: str, unsafe: bool, slot: dict) -> None:
    try:
        from pipelines.model_files import local_model_dir
        from segmodel.saving import load_model  # imports TensorFlow and Keras

        slot["model"] = load_model(local_model_dir(model_dir), unsafe=unsafe)
    except Exception:  # noqa: BLE001  the handler's own load reports the error, where it belongs
        slot["model"] = None


def start(run_id: str, model_dir: str, unsafe: bool) -> None:
    """Starts loading the run's model in the background, unless that has started already. A
    new run drops an earlier run's preload that nothing took."""
    with _lock:
        if run_id in _preload:
            return
        _preload.clear()
        slot: dict = {"model": None}
        slot["thread"] = threading.Thread(
            target=_load, args=(model_dir, unsafe, slot), name="segscale-warm-start", daemon=True
        )
        _preload[run_id] = slot
        slot["thread"].start()


def take(run_id: str):
    """The model preloaded for this run, once; else None. Waits for any load under way first,
    so that TensorFlow is never imported by two threads at once."""
    with _lock:
        slots = list(_preload.values())
    for slot in slots:
        slot["thread"].join()
    with _lock:
        slot = _preload.pop(run_id, None)
    return slot["model"] if slot else None


class WarmWorkers(beam.DoFn):
    """Passes elements through; on each worker it is set up on, starts the model's load."""

    def __init__(self, run_id: str, model_dir: str, unsafe: bool):
        self._run_id = run_id
        self._model_dir = model_dir
        self._unsafe = unsafe

    def setup(self):
        start(self._run_id, self._model_dir, self._unsafe)

    def process(self, element):
        yield element
