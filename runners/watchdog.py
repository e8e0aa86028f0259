"""A dead local worker fails the job instead of hanging it.

    python -m pipelines.ingest ... --profile local --direct_num_workers 2

Beam's FnApiRunner (multi_processing mode) runs each worker process from a thread that waits
for it; when a worker dies (it cannot start, the kernel kills it for memory, native code
crashes) that thread raises and ends, and the runner waits for the dead worker's answers for
ever. Beam 2.77 has no hook for this, so we watch from outside, with public Python mechanisms
only: while a pipeline runs, an uncaught exception in any other thread (Beam's worker threads
included) is recorded and the main thread is interrupted with a signal; `watch()` then raises
WorkerDiedError naming what happened. Nothing of Beam's is patched or subclassed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading


class WorkerDiedError(RuntimeError):
    """A thread of the local runner (usually a worker process's) died: the job cannot finish."""


@contextlib.contextmanager
def watch(worker: str = "a local worker"):
    """Runs the body (a pipeline run) so that a dying runner thread ends it with an error.

    Only in the main thread (where signal handlers live); elsewhere the body runs unwatched.
    `worker` names what died in the error ("a local worker", "a worker container of IMAGE").
    The first failure interrupts the run once, with its traceback on stderr; the threads that
    fail after it (the dead worker's control and data streams closing, Beam's cleanup) are its
    consequences and say nothing more, so they are neither printed nor signalled again.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    failures: list[str] = []
    first = threading.Lock()
    previous_hook = threading.excepthook
    interrupt = signal.SIGUSR1
    # Threads of an earlier run in this process (Beam's container watchers outlive a run whose
    # cleanup a failure cut short) are not this run's workers.
    earlier = set(threading.enumerate())

    def hook(args):
        if args.thread in earlier:
            previous_hook(args)
            return
        if args.exc_type is SystemExit or not first.acquire(blocking=False):
            return
        previous_hook(args)  # the first failure's traceback still reaches stderr
        what = str(args.exc_value).strip() or args.exc_type.__name__
        failures.append(f"{args.thread.name if args.thread else 'a thread'}: {what}")
        os.kill(os.getpid(), interrupt)

    def handler(signum, frame):
        raise WorkerDiedError(
            f"{worker} died, so the job cannot finish ({failures[0]}); "
            "its own output above says why"
            if failures
            else "interrupted by a runner thread"
        )

    previous_handler = signal.signal(interrupt, handler)
    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous_hook
        signal.signal(interrupt, previous_handler)
