"""Worker processes for local runs, started before the launcher imports Beam.

    python -m pipelines.ingest ... --direct_num_workers 2     # profile `local`

Beam's FnApiRunner (multi_processing mode) starts each worker process when the first stage
runs, after the launcher has imported Beam and built the graph: two half-second imports one
after the other, before any work. A launcher that calls `prestart(argv)` first thing starts its
workers at once; they import Beam while the launcher does, then wait on stdin for the runner's
connection details (runners.local_runner hands them over). A worker nobody needs reads end of
file on stdin and leaves, also when the launcher dies.

This module imports nothing heavy: it runs before Beam is imported, and it is the workers' own
entry point (`python -m runners.worker_pool`), where it also keeps the SDK harness's start-up
INFO lines off the console (they reach the launcher's log) and skips the interpreter's slow
teardown once the harness is done.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import json
import logging
import os
import subprocess
import sys

# The environment variables through which a runner tells an SDK worker where to connect.
HANDOVER_KEYS = (
    "CONTROL_API_SERVICE_DESCRIPTOR",
    "LOGGING_API_SERVICE_DESCRIPTOR",
    "STATUS_API_SERVICE_DESCRIPTOR",
    "PIPELINE_OPTIONS",
    "WORKER_ID",
    "RUNNER_CAPABILITIES",
)

_WAITING: list[subprocess.Popen] = []  # started workers no runner has claimed yet


def worker_command(preload: tuple[str, ...] = ()) -> list[str]:
    return [sys.executable, "-m", "runners.worker_pool", *preload]


def local_worker_count(argv: list[str]) -> int:
    """Worker processes the local multi-process runner will want for these flags (0 if the
    flags pick another runner or mode). Reads --profile like the launchers do."""
    from runners import profiles  # yaml only

    try:
        args = profiles.apply_profile(list(argv))
    except ValueError:
        return 0  # the launcher reports a bad profile itself
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--runner", default="")
    parser.add_argument("--direct_running_mode", default="")
    parser.add_argument("--direct_num_workers", type=int, default=1)
    try:
        known, _ = parser.parse_known_args(args)
    except SystemExit:
        return 0
    if known.runner != "FnApiRunner" or (known.direct_running_mode != "multi_processing"):
        return 0
    return known.direct_num_workers or os.cpu_count() or 1


def prestart(argv: list[str], preload: tuple[str, ...] = ()) -> int:
    """Starts the workers a local run of `argv` will use; returns how many.

    `preload` names modules the workers import while they wait (the pipeline's own module:
    its DoFns would otherwise import it when the first stage arrives).
    """
    if any(a in ("-h", "--help") for a in argv):
        return 0
    count = local_worker_count(argv)
    for _ in range(count):
        _WAITING.append(subprocess.Popen(worker_command(preload), stdin=subprocess.PIPE))
    if count:
        atexit.register(release_all)
    return count


def claim() -> subprocess.Popen | None:
    """A started worker still waiting for its connection details, or None."""
    while _WAITING:
        process = _WAITING.pop(0)
        if process.poll() is None:
            return process
    return None


def hand_over(process: subprocess.Popen, env: dict) -> None:
    """Gives a waiting worker the runner's connection details; it starts the SDK harness."""
    handover = {k: env[k] for k in HANDOVER_KEYS if k in env}
    process.stdin.write(json.dumps(handover).encode("utf-8") + b"\n")
    process.stdin.close()


def release_all() -> None:
    """Lets unclaimed workers go (end of file on stdin)."""
    while _WAITING:
        process = _WAITING.pop()
        try:
            process.stdin.close()
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()


# --- the worker side --------------------------------------------------------------------------


def _serve() -> int:
    root = logging.getLogger()
    # Without a handler of its own, the root logger would get a console handler from the first
    # logging.warning() during Beam's import, and print every harness INFO line. Records still
    # reach the runner through the harness's own log handler.
    root.addHandler(logging.NullHandler())
    from apache_beam.runners.worker import sdk_worker_main  # the half second we start early

    for module in sys.argv[1:]:
        importlib.import_module(module)
    if not os.environ.get("CONTROL_API_SERVICE_DESCRIPTOR"):
        try:
            line = sys.stdin.buffer.readline()
        except KeyboardInterrupt:
            return 130
        if not line.strip():
            return 0  # released unused
        os.environ.update(json.loads(line))
    sdk_worker_main.main(sys.argv[:1])
    return 0


def main() -> None:
    try:
        code = _serve()
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    # The harness is done and has closed its channels; tearing down Beam's and gRPC's modules
    # would only add a few hundred milliseconds to every run.
    os._exit(code)


if __name__ == "__main__":
    main()
