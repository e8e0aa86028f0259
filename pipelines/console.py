"""Console logging and process exit for the command-line tools (imports nothing heavy: it
runs before Beam is imported).

    python -m pipelines.ingest ...     # warnings and errors, one line each

Beam logs "apitools not found, and bigquery client libraries are not available" at import time
whenever its optional Google Cloud extras are absent; we never use BigQuery, so that line is
dropped. Everything else at WARNING and above is shown.
"""

from __future__ import annotations

import gc
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
