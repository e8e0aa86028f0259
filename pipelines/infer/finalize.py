"""The end of an inference run: the run's statistics combined over every prediction record,
run_summary.json (the ledger record to be), and the check that the counts add up.

    segscale infer ...           # prints "inputs N = predictions P + rejects R" from here
"""

from __future__ import annotations

import json
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipelines.fileio import write_atomically
from segmodel.prediction_stats import RunStats

SUMMARY_NAME = "run_summary.json"


class SummarizeRun(beam.CombineFn):
    """Prediction records → the run's statistics (`segmodel.prediction_stats.RunStats`, fixed size)."""

    def create_accumulator(self):
        return RunStats()

    def add_input(self, accumulator, record):
        return accumulator.add(record)

    def merge_accumulators(self, accumulators):
        merged = RunStats()
        for accumulator in accumulators:
            merged.merge(accumulator)
        return merged

    def extract_output(self, accumulator):
        return accumulator.summary()


def finalize(
    _,
    output_dir,
    metadata,
    run,
    inputs,
    prediction_files,
    reject_files,
    rejects_by_reason,
    stats,
    masks_by_version=None,
):
    """Removes predictions/rejects files of earlier runs and writes run_summary.json: the
    counts, what ran on what, and the run's statistics (the ledger record to be)."""
    # Every prediction record passed through the statistics: segmented now, or skipped.
    skipped = stats["skipped"]
    predictions = stats["images"] + skipped
    rejects = sum(rejects_by_reason.values())
    keep = {FileSystems.split(p)[1] for p in list(prediction_files) + list(reject_files)}
    stale = [
        m.path
        for pattern in ("predictions-*.jsonl", "rejects-*.jsonl")
        for m in FileSystems.match([FileSystems.join(output_dir, pattern)])[0].metadata_list
        if FileSystems.split(m.path)[1] not in keep
    ]
    if stale:
        FileSystems.delete(stale)
    summary = {
        "run_id": run["run_id"],
        "started": run["started"],
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration_s": round(time.time() - run["start"], 2),
        "model_version": metadata["model_version"],
        "model_dir": run["model_dir"],
        "input": run["input"],
        "input_kind": run["input_kind"],
        "output_dir": output_dir,
        "tta": run["tta"],
        "tiling": run["tiling"],
        "form": run.get("form"),  # runtime and precision (segmodel/runtimes.py)
        "class_names": metadata.get("class_names"),
        "inputs": inputs,
        "predictions": predictions,  # made now, or skipped (a mask was there)
        "skipped": skipped,
        "segmented": predictions - skipped,
        "rejects": rejects,
        "rejects_by_reason": dict(sorted(rejects_by_reason.items())),
        # which model version made the masks of this run's inputs (skipped ones: their own)
        "masks_by_model_version": dict(sorted((masks_by_version or {}).items())),
        "stats": stats,
    }
    write_atomically(
        FileSystems.join(output_dir, SUMMARY_NAME), json.dumps(summary, indent=2).encode()
    )
    return summary


def check_counts(summary: dict, output_dir: str) -> None:
    """Raises RuntimeError (the command exits non-zero) when inputs were lost or duplicated:
    every input must end in exactly one prediction (made or skipped) or one reject."""
    if summary["inputs"] != summary["predictions"] + summary["rejects"]:
        raise RuntimeError(
            f"inference lost track of inputs: {summary['inputs']} inputs != "
            f"{summary['predictions']} predictions + {summary['rejects']} rejects "
            f"({output_dir}/{SUMMARY_NAME}); the outputs are incomplete, please report this"
        )
