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
import contextlib
import gc
import logging
import os
import re
import sys
import threading

from runners.stderr_filter import filtered_stderr

FORMAT = "%(levelname)s %(name)s: %(message)s"
_IMPORT_NOISE = ("apitools not found, and bigquery client libraries are not available",)


_WORKER_FIELD = re.compile(r'\b(message|trace): ("(?:[^"\\]|\\.)*")')


def _not_import_noise(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_IMPORT_NOISE)


def _readable_worker_record(record: logging.LogRecord) -> bool:
    """Beam's local job service logs a worker's record as 'Worker: %s' with the log entry's
    text form; keep only its message and trace (e.g. the traceback of a failing DoFn)."""
    if record.msg != "Worker: %s" or not record.args:
        return True
    fields = {}
    for name, quoted in _WORKER_FIELD.findall(str(record.args[0])):
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


_WORKER_CHATTER = (b"INFO:", b"DEBUG:")  # logging.basicConfig's format, as Beam's workers use it
# Warnings every local run prints that tell a local user nothing: harness start-up, Beam's
# optional Google Cloud imports, WriteToText replacing its own files of a rerun.
_HARMLESS = (
    "apitools not found, and bigquery client libraries are not available",
    "No semi_persistent_directory found",
    "No session file found",
    "Resource module is not available for current platform",
    "No shards found to finalize",
)


@contextlib.contextmanager
def quiet_worker_stderr():
    """While the body runs, lines that child processes (Beam's local SDK workers) write to the
    inherited stderr at INFO or DEBUG ("INFO:apache_beam...": the harness's start-up lines,
    logged before it reads the pipeline's log level) are dropped; everything else passes.

    Beam starts its local workers with our stderr and no hook to change that, so we give the
    process a filtered stderr for the run: fd 2 becomes a pipe that a thread copies to the real
    stderr, line by line. Only where fd 2 is a real descriptor (not under a test's capture).
    """
    try:
        sys.stderr.flush()
        real = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def copy():
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                text = line.decode("utf-8", "replace")
                if not line.startswith(_WORKER_CHATTER) and not any(h in text for h in _HARMLESS):
                    os.write(real, line)

    thread = threading.Thread(target=copy, name="stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # our end of the pipe closes; workers that outlive the run keep theirs
        thread.join(timeout=5)
        os.close(real)


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
    setup_logging()
    with filtered_stderr():
        code = importlib.import_module(f"{package}.pipeline").main()
    exit_process(code)


def run_main(main) -> None:
    """`python -m <pipeline>`: console logging, then the pipeline's main(), then exit."""
    setup_logging()
    with filtered_stderr():
        code = main()
    exit_process(code)
