"""The run ledger: one JSON line per finished inference run in `OUTPUT_DIR/runs.jsonl`.

    segscale runs out/pred                 # the runs, newest last
    python -c "from pipelines.monitor.ledger import read_runs; print(read_runs('out/pred'))"

A record is the run's `run_summary.json`: run id, start and end, model version and folder, input,
counts (inputs = predictions + rejects; predictions = segmented now + skipped), rejects by
reason, and the statistics of the images segmented in the run (`segmodel.prediction_stats.RunStats`: class
fractions, confidence histogram, uncertain pixels, channels, bit depths, sizes, intensity).

Appending is atomic: the whole file is rewritten to a temporary sibling and renamed over the
old one, so a reader (or a crash) sees the ledger before or after the append, never half a line
(on local disks also fsynced, so a power cut cannot leave it empty).
The record is appended by the launcher after the pipeline finished and its counts added up: a
killed run leaves no record, and its rerun adds one. A record whose run id is already there
replaces it (a retried append never duplicates). One run at a time per output folder: two
runs finishing at the same moment could each rewrite the file without the other's record.
"""

from __future__ import annotations

import json
import time
import uuid

from apache_beam.io.filesystems import FileSystems

from pipelines.fileio import read_bytes, write_atomically

LEDGER_NAME = "runs.jsonl"


def ledger_path(output_dir: str) -> str:
    return FileSystems.join(output_dir.rstrip("/"), LEDGER_NAME)


def new_run_id() -> str:
    """Sortable and unique: UTC start time plus 6 random hex digits."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def read_runs(output_dir: str) -> list[dict]:
    """The ledger's records, oldest first ([] when there is no ledger yet)."""
    path = ledger_path(output_dir)
    if not FileSystems.exists(path):
        return []
    runs = []
    for number, line in enumerate(read_bytes(path).decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            runs.append(json.loads(line))
        except ValueError as e:
            raise ValueError(f"{path} line {number}: not a JSON record ({e})") from None
    return runs


def append_run(output_dir: str, record: dict) -> None:
    """Appends `record` (replacing one with the same run id). Lines that are not JSON (a hand
    edit gone wrong) are kept as they are: a damaged ledger never fails an inference run."""
    path = ledger_path(output_dir)
    kept = []
    if FileSystems.exists(path):
        for line in read_bytes(path).decode("utf-8", errors="replace").splitlines():
            try:
                if json.loads(line).get("run_id") == record["run_id"]:
                    continue
            except (ValueError, AttributeError):
                pass
            if line.strip():
                kept.append(line)
    kept.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
    # Durable on local disk: a power cut right after a run cannot leave an empty ledger.
    write_atomically(path, ("\n".join(kept) + "\n").encode("utf-8"), durable=True)


def find_run(runs: list[dict], which: str | None, output_dir: str) -> dict:
    """A run by id (or unique id prefix), "latest" / None, or "previous" (the one before the
    latest)."""
    if not runs:
        raise ValueError(f"{ledger_path(output_dir)}: no runs recorded yet")
    if which in (None, "", "latest"):
        return runs[-1]
    if which == "previous":
        if len(runs) < 2:
            raise ValueError(f"{ledger_path(output_dir)}: only one run, no previous one")
        return runs[-2]
    matches = [r for r in runs if r.get("run_id", "").startswith(which)]
    if len(matches) != 1:
        known = ", ".join(r.get("run_id", "?") for r in runs[-5:])
        problem = "no run" if not matches else f"{len(matches)} runs"
        raise ValueError(
            f"{ledger_path(output_dir)}: {problem} with id {which!r} (latest: {known})"
        )
    return matches[0]


def run_line(record: dict) -> str:
    """One line about a run, for the console and `segscale runs`."""
    stats = record.get("stats") or {}
    confidence = (stats.get("confidence") or {}).get("mean")
    uncertain = (stats.get("confidence") or {}).get("uncertain_fraction")
    quality = (
        f"; mean confidence {confidence:.3f}, uncertain pixels {uncertain:.1%}"
        if confidence is not None
        else ""
    )
    others = {
        v: n
        for v, n in (record.get("masks_by_model_version") or {}).items()
        if v != record.get("model_version")
    }
    if others:
        older = ", ".join(f"{n} by {v[:12]}" for v, n in sorted(others.items()))
        quality += f"; masks kept from other models: {older}"
    form = record.get("form") or {}
    runtime = f" ({form['runtime']} {form['precision']})" if form else ""
    return (
        f"run {record.get('run_id', '?')} ({record.get('finished', '?')}, "
        f"{record.get('duration_s', 0):.0f}s): {record.get('inputs', 0)} inputs, "
        f"{record.get('segmented', 0)} segmented, {record.get('skipped', 0)} skipped, "
        f"{record.get('rejects', 0)} rejects; model {record.get('model_version', '?')}"
        f"{runtime}{quality}"
    )
