"""What every pipeline's `run()` and `main()` share: run on a given or a new Pipeline, and turn
a ValueError (bad flag, unreadable metadata, unwritable output) into one line and exit code 2.

    python -m pipelines.ingest --help
"""

from __future__ import annotations

import sys

import apache_beam as beam

from runners import console, watchdog


def execute(options, build, test_pipeline=None) -> None:
    """Builds the graph with `build(pipeline)` and runs it to completion on the runner the
    options name (Beam's own; a local worker that dies fails the job: runners.watchdog)."""
    if test_pipeline is not None:
        build(test_pipeline)
        test_pipeline.run().wait_until_finish()
        return
    with console.quiet_worker_stderr(), watchdog.watch(), beam.Pipeline(options=options) as p:
        build(p)


def cli_main(run, argv=None) -> int:
    console.setup_logging()
    try:
        run(argv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, permissions, vanished storage: say which file, once
        first = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
        print(f"error: {first}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # counts that do not add up: the run's outputs cannot be trusted
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
