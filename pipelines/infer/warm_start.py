"""Worker warm start: TensorFlow, Keras and the model load while the listing stage still runs.

    matched | "WarmWorkers" >> beam.ParDo(WarmWorkers(run_id, model_dir, unsafe))
    KerasSegmentationHandler(model_dir, ..., preloaded_by=run_id)     # takes it, once

A worker spends about 3.5 s importing TensorFlow and Keras and loading the model, and Beam asks
for the model (the handler's `load_model`, in RunInference's setup) only when the inference
stage begins, after the listing and the reshuffle; the worker's cores idle meanwhile.
`WarmWorkers` sits in the listing stage. The FnApiRunner with several worker processes sets that
stage up on every one of them, those with an empty share included (how Beam 2.77 splits a
stage's input, not a promise of its API; tests/pipelines/test_warm_start.py checks it); on
Flink or Dataflow, only the processes that run the listing. Its `setup` starts the load in a
daemon thread, and `take()` hands the handler of the same run, model and safe mode that model,
once. Anything else (a failed preload, a process that never ran the listing stage, a preload of
another run) falls back to the handler's own load, so this only ever saves time: 0.5-1.5 s of a
1,000-image local run's start (docs/benchmarks.md), more where listing takes longer.
"""

from __future__ import annotations

import atexit
import threading

import apache_beam as beam

_lock = threading.Lock()
_preload: tuple | None = None  # ((run id, model_dir, unsafe), {"model": model or None})
_threads: list[threading.Thread] = []  # loads started and not yet waited for


def _load(model_dir: str, unsafe: bool, slot: dict, form=None) -> None:
    try:
        from pipelines.infer import forms

        slot["model"] = forms.load(model_dir, unsafe, form)
    except Exception:
        slot["model"] = None  # the handler's own load reports the error, where it belongs


def _wait_for_loads(timeout: float | None = None) -> None:
    with _lock:
        threads = list(_threads)
    for thread in threads:
        thread.join(timeout)
    with _lock:
        _threads[:] = [t for t in _threads if t.is_alive()]


# A process that exits during a load (a failed listing, a cancelled job) lets it finish first:
# a daemon thread stopped inside TensorFlow's import can crash the exit and hide the real error.
atexit.register(_wait_for_loads, 30)


def start(run_id: str, model_dir: str, unsafe: bool, form=None) -> None:
    """Starts loading the run's model (the form `form` asks for: pipelines/infer/forms.py) in
    the background, unless that has started already. A new run drops an earlier run's preload
    that nothing took."""
    from pipelines.infer.forms import as_request

    global _preload
    form = as_request(form)
    key = (run_id, model_dir, unsafe, form)
    with _lock:
        if _preload and _preload[0] == key:
            return
        slot: dict = {"model": None}
        _preload = (key, slot)  # drops an earlier run's preload
        thread = threading.Thread(
            target=_load,
            args=(model_dir, unsafe, slot, form),
            name="segscale-warm-start",
            daemon=True,
        )
        _threads.append(thread)
        thread.start()


def take(run_id: str, model_dir: str, unsafe: bool, form=None):
    """The model preloaded for this run, model and safe mode, once; else None. Waits for every
    load under way first, so that TensorFlow is never imported by two threads at once, and
    drops whatever preload is left (nothing else will take it)."""
    global _preload
    _wait_for_loads()
    with _lock:
        preload, _preload = _preload, None
    from pipelines.infer.forms import as_request

    if preload and preload[0] == (run_id, model_dir, unsafe, as_request(form)):
        return preload[1]["model"]
    return None


class WarmWorkers(beam.DoFn):
    """Passes elements through; on each worker process it is set up on, starts the model's
    load."""

    def __init__(self, run_id: str, model_dir: str, unsafe: bool, form=None):
        self._run_id = run_id
        self._model_dir = model_dir
        self._unsafe = unsafe
        self._form = form

    def setup(self):
        start(self._run_id, self._model_dir, self._unsafe, self._form)

    def process(self, element):
        yield element
