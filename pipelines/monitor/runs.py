"""List the run ledger of an inference output folder.

segscale runs out/pred            # one line per run, newest last
segscale runs out/pred --json     # the records as they are (JSON lines)
"""

from __future__ import annotations

import argparse
import json
import sys

from runners.flags import BUCKET_FLAGS_HELP
from segmodel.commands import CommandParser


def parser() -> argparse.ArgumentParser:
    p = CommandParser(
        prog="segscale runs",
        description="List the inference runs recorded in OUTPUT_DIR/runs.jsonl: counts, model, "
        "confidence.",
        epilog=f"{BUCKET_FLAGS_HELP} Example: segscale runs out/pred --last 7",
    )
    p.add_argument("output_dir", help="Inference output folder (--output_dir of segscale infer).")
    p.add_argument("--last", type=int, default=0, help="Only the newest N runs (0: all).")
    p.add_argument("--json", action="store_true", help="Print the records as JSON lines.")
    return p


def main(argv=None) -> int:
    from runners.launch import cli_main

    return cli_main(_main, argv)


def _main(argv) -> int:
    from pipelines.monitor.ledger import ledger_path, read_runs, run_line
    from runners.launch import filesystem_flags

    with filesystem_flags(parser(), argv) as args:  # + --s3_endpoint_url etc. for buckets
        runs = read_runs(args.output_dir)
        if not runs:
            raise ValueError(f"{ledger_path(args.output_dir)}: no runs recorded yet")
        shown = runs[-args.last :] if args.last > 0 else runs
        for record in shown:
            print(json.dumps(record) if args.json else run_line(record))
        if not args.json:
            print(f"{len(runs)} runs in {ledger_path(args.output_dir)}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
