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
def watch():
    """Runs the body (a pipeline run) so that a dying runner thread ends it with an error.

    Only in the main thread (where signal handlers live); elsewhere the body runs unwatched.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    failures: list[str] = []
    previous_hook = threading.excepthook
    interrupt = signal.SIGUSR1

    def hook(args):
        previous_hook(args)  # the thread's traceback still reaches stderr
        if args.exc_type is SystemExit:
            return
        failures.append(f"{args.thread.name if args.thread else 'a thread'}: {args.exc_value}")
        os.kill(os.getpid(), interrupt)

    def handler(signum, frame):
        raise WorkerDiedError(
            f"a local worker died, so the job cannot finish ({failures[-1]}); "
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
