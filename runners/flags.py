"""Registering pipeline flags that more than one pipeline defines.

    python -m pipelines.ingest --help

Beam gathers every PipelineOptions subclass's flags into one parser, so two pipelines that both
define `--output_dir` conflict as soon as both modules are imported (in a test run, in the CLI).
A shared flag is registered by whichever pipeline comes first; each pipeline's own view still
sees it, since views are built from that pipeline's flags alone.
"""

from __future__ import annotations

import argparse


def add_argument_once(parser, *names, **kwargs) -> None:
    try:
        parser.add_argument(*names, **kwargs)
    except argparse.ArgumentError as e:
        if "conflicting option" not in str(e):
            raise
