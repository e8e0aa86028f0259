"""runners.watchdog on its own: a thread of this run that dies ends it once, with the first
failure; a thread left over from an earlier run in the same process does not."""

import threading
import time

import pytest

from runners import watchdog


def _raise_in_thread(message, name, wait=None):
    def body():
        if wait is not None:
            wait.wait()
        raise RuntimeError(message)

    thread = threading.Thread(target=body, name=name)
    thread.start()
    return thread


def test_the_first_dying_thread_ends_the_run_with_its_message():
    with pytest.raises(watchdog.WorkerDiedError) as failure:
        with watchdog.watch("a worker container of img"):
            _raise_in_thread("first", "worker-1").join()
            time.sleep(5)  # interrupted long before
    message = str(failure.value)
    assert message.startswith("a worker container of img died, so the job cannot finish")
    assert "(worker-1: first)" in message


def test_a_thread_of_an_earlier_run_is_not_this_runs_failure():
    go = threading.Event()
    stale = _raise_in_thread("container gone", "watch_container", wait=go)
    with watchdog.watch():
        go.set()
        stale.join()
        time.sleep(0.2)  # a signal would have arrived by now
