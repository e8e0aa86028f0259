"""Drift: do tonight's images still look like the training data (or like an earlier run)?

    segscale drift --run out/pred                       # latest run vs the training data
    segscale drift --run out/pred --baseline previous   # ... vs the run before it
    segscale drift --run out/pred --baseline 20261126T023000Z-3fa2c1

Compares the statistics the ledger keeps for a run (images segmented in it; see
`segmodel.prediction_stats`) with a baseline: the training manifest inside the model's
metadata.json (class frequencies, sizes, channels, bit depths; intensity is 0 ± 1 by
construction, since the model normalises with the training mean and std; class fractions and
confidence as predicted by the model on the validation split, recorded at export), or another
run of the ledger. Writes drift.json and a
page with the distributions side by side, and exits 3 when a threshold is crossed, so that cron
or Airflow can alert (0: no drift; 2: bad flags or missing files).

The checks themselves, their thresholds and how they were chosen: pipelines/monitor/drift_checks.py.
"""

from __future__ import annotations

import argparse
import sys

from pipelines.monitor.drift_checks import (
    EXPLAIN,
    THRESHOLDS,
    compare,
    manifest_baseline,
    profile,
    report,
    run_baseline,
    summary_lines,
)
from runners.flags import BUCKET_FLAGS_HELP
from segmodel.commands import CommandParser

EXIT_DRIFT = 3


def parser() -> argparse.ArgumentParser:
    p = CommandParser(
        prog="segscale drift",
        description="Compare an inference run's images and predictions with the training data "
        "or an earlier run. Writes drift.json and index.html; exits 3 when a threshold is "
        "crossed (0: no drift; 2: bad flags or missing files), for cron or Airflow alerts.",
        epilog=f"{BUCKET_FLAGS_HELP} Example: segscale drift --run out/pred --baseline manifest "
        "&& echo quiet || echo 'look at out/pred/drift/'",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--run", required=True, help="Inference output folder (holds runs.jsonl).")
    p.add_argument("--run_id", default="latest", help="Which run: an id (or prefix), latest.")
    p.add_argument(
        "--baseline",
        default="manifest",
        help="manifest (the training data, from the model's metadata.json), previous (the "
        "newest earlier run that segmented images), or a run id of the same ledger.",
    )
    p.add_argument(
        "--model_dir",
        default=None,
        help="Export folder whose metadata.json holds the manifest (default: the run's model).",
    )
    p.add_argument(
        "--report_dir",
        default=None,
        help="Where drift.json and index.html go (default: RUN/drift/RUN_ID).",
    )
    for name, value in THRESHOLDS.items():
        p.add_argument(f"--max_{name}", type=float, default=value, help=EXPLAIN[name] + ".")
    return p


def previous_run(runs: list[dict], record: dict, output_dir: str) -> dict:
    """The newest run before `record` that segmented images (quiet nights have nothing to
    compare with)."""
    index = next(i for i, r in enumerate(runs) if r["run_id"] == record["run_id"])
    for earlier in reversed(runs[:index]):
        if (earlier.get("stats") or {}).get("images"):
            return earlier
    raise ValueError(
        f"{output_dir}: no run before {record['run_id']} segmented any image; compare with "
        "the training data instead (--baseline manifest)"
    )


def check_same_model(metadata: dict, record: dict, model_dir: str) -> None:
    """The baseline must be the training data of the model that made the run."""
    if metadata["model_version"] != record.get("model_version"):
        raise ValueError(
            f"run {record['run_id']} used model {record.get('model_version')}, but {model_dir} "
            f"holds model {metadata['model_version']} (replaced since?); pass --model_dir with "
            "the export the run used"
        )


def drift(args) -> dict:
    from apache_beam.io.filesystems import FileSystems

    from pipelines.model_files import local_model_dir
    from pipelines.monitor.drift_page import write_report
    from pipelines.monitor.ledger import find_run, read_runs
    from segmodel.saving import load_metadata

    runs = read_runs(args.run)
    record = find_run(runs, args.run_id, args.run)
    if not record["stats"].get("images"):  # a quiet night: nothing new arrived
        return {
            "run_id": record["run_id"],
            "drift": False,
            "nothing_new": True,
            "report_dir": None,
            "note": f"run {record['run_id']} segmented no new images "
            f"({record.get('skipped', 0)} skipped, {record.get('rejects', 0)} rejects): "
            "nothing to compare",
        }
    if args.baseline == "manifest":
        model_dir = args.model_dir or record["model_dir"]
        metadata = load_metadata(local_model_dir(model_dir))
        check_same_model(metadata, record, model_dir)
        baseline = manifest_baseline(metadata)
    elif args.baseline == "previous":
        baseline = run_baseline(previous_run(runs, record, args.run))
    else:
        base = find_run(runs, args.baseline, args.run)
        if base["run_id"] == record["run_id"]:
            raise ValueError(f"--baseline {args.baseline} is the run itself")
        baseline = run_baseline(base)
    thresholds = {name: getattr(args, f"max_{name}") for name in THRESHOLDS}
    run = profile(record["stats"], f"run {record['run_id']}", record.get("tta"))
    result = report(record, baseline, compare(run, baseline, thresholds))
    out = args.report_dir or FileSystems.join(args.run.rstrip("/"), "drift", record["run_id"])
    write_report(out, result, run, baseline, record.get("class_names"))
    result["report_dir"] = out
    return result


def main(argv=None) -> int:
    from runners.launch import cli_main

    return cli_main(_main, argv)


def _main(argv) -> int:
    from runners.launch import filesystem_flags

    with filesystem_flags(parser(), argv) as args:  # + --s3_endpoint_url etc. for buckets
        result = drift(args)
        print("\n".join(summary_lines(result)))
        if result.get("nothing_new"):
            return 0
        print(f"Wrote {result['report_dir']}/drift.json and index.html")
        return EXIT_DRIFT if result["drift"] else 0


if __name__ == "__main__":
    sys.exit(main())
