"""How the command-line tools start and end: console logging, early local worker processes,
process exit. Imports nothing heavy: it runs before Beam is imported.

    python -m pipelines.ingest ...     # warnings and errors, one line each

Beam logs "apitools not found, and bigquery client libraries are not available" at import time
whenever its optional Google Cloud extras are absent; we never use BigQuery, so that line is
dropped. Everything else at WARNING and above is shown.
"""

from __future__ import annotations

import gc
import importlib
import logging
import sys

FORMAT = "%(levelname)s %(name)s: %(message)s"
_IMPORT_NOISE = ("apitools not found, and bigquery client libraries are not available",)


def _not_import_noise(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_IMPORT_NOISE)


def setup_logging(level: int = logging.WARNING) -> None:
    """Gives the root logger one console handler (unless it has one already)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(_not_import_noise)
    root.addHandler(handler)
    root.setLevel(level)


def exit_process(code: int):
    """Ends a command-line process with `code`. gc.freeze() first: the interpreter's final
    garbage collection over every Beam, gRPC and protobuf object would add about 0.1 s to each
    command, and there is nothing left that needs collecting (files are closed, outputs
    renamed, atexit handlers still run). For process exits only, never in a long-lived process:
    frozen objects are never collected."""
    gc.freeze()
    sys.exit(code)


def start_command(module: str, argv: list[str], *, local_workers: bool) -> None:
    """What a command does before importing anything heavy: console logging and, for a Beam
    pipeline, its local worker processes (runners.worker_pool), which then import Beam while
    this process does and preload `module`."""
    setup_logging()
    if local_workers:
        from runners import worker_pool

        worker_pool.prestart(argv, preload=(module,))


def run_module(module: str, *, local_workers: bool = True) -> None:
    """`python -m <module>`: starts the command, then runs the module's main() under the
    module's own name rather than as __main__, so that Beam pickles its DoFns as references to
    the module (which the workers preload), not by value."""
    start_command(module, sys.argv[1:], local_workers=local_workers)
    exit_process(importlib.import_module(module).main())
