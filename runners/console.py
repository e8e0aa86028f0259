"""How the command-line tools start and end: console logging and process exit. Imports nothing
heavy: it runs before Beam is imported.

    python -m pipelines.ingest ...     # warnings and errors, one line each

Beam logs "apitools not found, and bigquery client libraries are not available" at import time
whenever its optional Google Cloud extras are absent; we never use BigQuery, so that line is
dropped. Local workers' records reach the launcher through Beam's logging service as
"Worker: <the whole log-entry message>"; at WARNING and above they are shown as the worker's
message and trace, at INFO and below not at all (the SDK harness's start-up lines).
"""

from __future__ import annotations

import ast
import gc
import logging
import os
import re
import sys

from runners.stderr_filter import HARMLESS as _HARMLESS
from runners.stderr_filter import filtered_stderr

FORMAT = "%(levelname)s %(name)s: %(message)s"
_IMPORT_NOISE = ("apitools not found, and bigquery client libraries are not available",)


_WORKER_FIELD = re.compile(r'\b(message|trace): ("(?:[^"\\]|\\.)*")')


def _not_import_noise(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_IMPORT_NOISE)


def _readable_worker_record(record: logging.LogRecord) -> bool:
    """Beam's local job service logs a worker's record as 'Worker: %s' with the log entry's
    text form, and the FnApiRunner's logging service for a Docker worker logs that text form
    itself ('severity: WARN\ntimestamp {...}\nmessage: "..."'); keep only its message and
    trace (e.g. the traceback of a failing DoFn)."""
    if record.msg == "Worker: %s" and record.args:
        entry = str(record.args[0])
    elif isinstance(record.msg, str) and record.msg.startswith("severity: ") and not record.args:
        entry = record.msg
    else:
        return True
    fields = {}
    for name, quoted in _WORKER_FIELD.findall(entry):
        try:
            fields.setdefault(name, ast.literal_eval(quoted))
        except (ValueError, SyntaxError):
            fields.setdefault(name, quoted)
    if fields:
        if str(fields.get("message", "")).startswith(_HARMLESS):
            return False
        record.msg = "worker: %s"
        record.args = ("\n".join(v for v in (fields.get("message"), fields.get("trace")) if v),)
    return True


def take_verbose(argv: list[str]) -> list[str]:
    """Removes --verbose (any command) from `argv`; when it was there, every line reaches the
    console: INFO logging, and nothing filtered from descriptor 2 (runners/stderr_filter.py)."""
    if "--verbose" not in argv:
        return argv
    os.environ["SEGSCALE_RAW_STDERR"] = "1"
    os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
    setup_logging(logging.INFO)
    return [a for a in argv if a != "--verbose"]


def setup_logging(level: int = logging.WARNING) -> None:
    """Gives the root logger one console handler (unless it has one already)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(_not_import_noise)
    handler.addFilter(_readable_worker_record)
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


def run_pipeline(package: str) -> None:
    """`python -m <package>` for a pipeline: --help from `<package>.options` (no Beam import);
    otherwise console logging first (before Beam's import-time warnings), then
    `<package>.pipeline.main()`."""
    import importlib

    from runners.flags import wants_help

    if wants_help(sys.argv[1:]):
        importlib.import_module(f"{package}.options").help_parser().print_help()
        exit_process(0)
    sys.argv[1:] = take_verbose(sys.argv[1:])
    setup_logging()
    with filtered_stderr():
        code = importlib.import_module(f"{package}.pipeline").main()
    exit_process(code)


def run_main(main) -> None:
    """`python -m <pipeline>`: console logging, then the pipeline's main(), then exit."""
    sys.argv[1:] = take_verbose(sys.argv[1:])
    setup_logging()
    with filtered_stderr():
        code = main()
    exit_process(code)
