"""What every pipeline's `run()` and `main()` share: run on a given or a new Pipeline, and turn
a ValueError (bad flag, unreadable metadata, unwritable output) into one line and exit code 2.

    python -m pipelines.ingest --help
"""

from __future__ import annotations

import logging
import sys

import apache_beam as beam


def execute(options, build, test_pipeline=None) -> None:
    """Builds the graph with `build(pipeline)` and runs it to completion."""
    if test_pipeline is not None:
        build(test_pipeline)
        test_pipeline.run().wait_until_finish()
        return
    with beam.Pipeline(options=options) as pipeline:
        build(pipeline)


def cli_main(run, argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(argv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
