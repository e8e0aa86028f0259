"""TensorFlow's C++ start-up chatter, kept off the console of our commands.

    segscale train ...      # no "I0000 ... oneDNN custom operations are on" lines

TensorFlow 2.21 logs a few lines from C++ when it is imported (oneDNN notes, CPU features),
through absl before absl is initialised: straight to file descriptor 2, whatever
TF_CPP_MIN_LOG_LEVEL says, and once more in every worker process that loads a model. They tell
a user nothing they can act on. `filtered_stderr()` puts a pipe in front of descriptor 2 for the
life of a command (worker processes inherit it), read by a small filter process, and drops
exactly those lines, plus the start-up INFO lines of Beam's local SDK workers (which Beam starts
with our stderr and no hook to change it) and a few warnings every local run prints that say
nothing to a user; everything else (warnings, errors, tracebacks, also of a crash) passes
through unchanged. SEGSCALE_RAW_STDERR=1 (or --verbose) turns it off.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading

# Warnings every local run prints that tell a local user nothing: harness start-up, Beam's
# optional Google Cloud imports, WriteToText replacing its own files of a rerun (Beam 2.77's
# FileBasedSink.pre_finalize logs "Deleting N existing files in target path matching: ..."
# once per sink, predictions and rejects, on every rerun into the same folder; the files of
# other shard counts our own finalize removes: pipelines/infer/finalize.py).
HARMLESS = (
    "apitools not found, and bigquery client libraries are not available",
    "No semi_persistent_directory found",
    "No session file found",
    "Resource module is not available for current platform",
    "No shards found to finalize",
    "existing files in target path matching: ",
)
NOISE = (
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|I0000 \d\d:\d\d:\S+ +\d+ \S+:\d+\] "  # absl INFO lines written before initialisation
    rb"|E0000 \S+ +\d+ util\.cc:\d+\] oneDNN supports DT_INT32 only"
    # gRPC (Beam's worker channel) when an OpenVINO worker's threads are up as it forks
    rb"|I\d{4} \S+ +\d+ fork_posix\.cc:\d+\] Other threads are currently calling into gRPC"
    rb"|To enable the following instructions: .* rebuild TensorFlow"
    # Beam's local SDK workers log their start-up at INFO in logging.basicConfig's format
    # ("INFO:apache_beam...") before they read the pipeline's log level.
    rb"|(INFO|DEBUG):"
    # Beam's Docker worker handler tries `docker pull` before each worker container; for our
    # localhost/ image names that attempt fails at once on loopback (runners/container/build.sh).
    rb'|Error response from daemon: Get "https?://localhost(:\d+)?/v2/": dial tcp .* refused'
    rb"|.*(" + b"|".join(re.escape(h.encode()) for h in HARMLESS) + rb"))"
)

# The filter runs as its own small process: it outlives a command that crashes or aborts, so
# the last lines (a traceback, a fatal "Check failed") still reach the console. A partial line
# (no newline yet) is passed on after 0.2 s of silence.
PUMP = """
import os, re, select, sys
noise = re.compile(sys.argv[1].encode("latin-1"))
pending = b""
while True:
    ready, _, _ = select.select([0], [], [], 0.2 if pending else None)
    if not ready:
        if not noise.match(pending):
            os.write(1, pending)
        pending = b""
        continue
    chunk = os.read(0, 65536)
    if not chunk:
        break
    pending += chunk
    *lines, pending = pending.split(b"\\n")
    kept = b"".join(line + b"\\n" for line in lines if not noise.match(line))
    while kept:
        kept = kept[os.write(1, kept):]
if pending and not noise.match(pending):
    os.write(1, pending)
"""


_active = threading.local()


@contextlib.contextmanager
def filtered_stderr():
    """Descriptor 2 goes through the filter inside the block, then back to where it was.
    Nested blocks (a command around a pipeline run) share the outer filter."""
    if (
        os.environ.get("SEGSCALE_RAW_STDERR")
        or not hasattr(os, "pipe")
        or getattr(_active, "on", False)
    ):
        yield
        return
    _active.on = True
    try:
        with _filter():
            yield
    finally:
        _active.on = False


# Beam's Docker worker handler runs `docker kill` without capturing its output, and docker
# prints each killed container's ID on the launcher's standard output (DockerSdkWorkerHandler.
# stop_worker, Beam 2.77). Our own output never has such a line.
CONTAINER_IDS = rb"^[0-9a-f]{64}$"


@contextlib.contextmanager
def filtered_stdout(noise: bytes = CONTAINER_IDS):
    """Descriptor 1 goes through a filter that drops lines matching `noise` inside the block
    (for a run with Docker workers: the container IDs `docker kill` prints)."""
    if os.environ.get("SEGSCALE_RAW_STDERR") or not hasattr(os, "pipe"):
        yield
        return
    with _filter(1, noise):
        yield


@contextlib.contextmanager
def _filter(fd: int = 2, noise: bytes = NOISE):
    stream = sys.stderr if fd == 2 else sys.stdout
    try:
        stream.flush()
        original = os.dup(fd)
    except (OSError, ValueError):  # no usable descriptor (embedded, closed): leave it be
        yield
        return
    read_end, write_end = os.pipe()
    try:
        pump = subprocess.Popen(
            [sys.executable, "-S", "-c", PUMP, noise.decode("latin-1")],
            stdin=read_end,
            stdout=original,
            close_fds=True,
        )
    except OSError:
        os.close(read_end)
        os.close(write_end)
        os.close(original)
        yield
        return
    os.close(read_end)
    os.dup2(write_end, fd)
    os.close(write_end)
    try:
        yield
    finally:
        stream.flush()
        os.dup2(original, fd)  # our end of the pipe is gone with this
        os.close(original)
        # The pump ends when every writer is gone; worker processes that outlive the command
        # still hold the pipe, so do not wait for them.
        with contextlib.suppress(subprocess.TimeoutExpired):
            pump.wait(timeout=2)
