"""TensorFlow's C++ start-up chatter, kept off the console of our commands.

    segscale train ...      # no "I0000 ... oneDNN custom operations are on" lines

TensorFlow 2.21 logs a few lines from C++ when it is imported (oneDNN notes, CPU features),
through absl before absl is initialised: straight to file descriptor 2, whatever
TF_CPP_MIN_LOG_LEVEL says, and once more in every worker process that loads a model. They tell
a user nothing they can act on. `filtered_stderr()` puts a pipe in front of descriptor 2 for the
life of a command (worker processes inherit it) and drops exactly those lines; everything else
(warnings, errors, tracebacks) passes through unchanged. SEGSCALE_RAW_STDERR=1 turns it off.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading

NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|I0000 \d\d:\d\d:\S+ +\d+ \S+:\d+\] "  # absl INFO lines written before initialisation
    rb"|E0000 \S+ +\d+ util\.cc:\d+\] oneDNN supports DT_INT32 only"
    rb"|To enable the following instructions: .* rebuild TensorFlow)"
)


def _pump(read_end: int, target: int) -> None:
    pending = b""
    while True:
        try:
            chunk = os.read(read_end, 65536)
        except OSError:
            break
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        kept = b"".join(line + b"\n" for line in lines if not NOISE.match(line))
        if kept:
            _write(target, kept)
    if pending and not NOISE.match(pending):
        _write(target, pending)
    os.close(read_end)


def _write(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError:
        pass


@contextlib.contextmanager
def filtered_stderr():
    """Descriptor 2 goes through the filter inside the block, then back to where it was."""
    if os.environ.get("SEGSCALE_RAW_STDERR") or not hasattr(os, "pipe"):
        yield
        return
    try:
        sys.stderr.flush()
        original = os.dup(2)
    except (OSError, ValueError):  # no usable descriptor 2 (embedded, closed): leave it be
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    thread = threading.Thread(target=_pump, args=(read_end, original), daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # our copy of the pipe's write end is gone with this
        # Worker processes that outlive the command still hold the pipe: do not wait for them.
        thread.join(timeout=2)
        if not thread.is_alive():  # else it still writes there: leave the descriptor open
            os.close(original)
