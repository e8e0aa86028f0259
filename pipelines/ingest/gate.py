"""The dataset-level gate: when a run's inputs, taken together, do not make a dataset to train
on, the run fails (exit 2) and its manifest says so, whatever share of pairs was accepted.

    segscale ingest ... --max_rejected 0.2      # the default: more than a fifth rejected fails

As TFX's ExampleValidator fails a run whose anomalies pass a threshold: a scheduled job that
counts exit 0 as success must not succeed with 29 of 30 pairs rejected. What fails a run:
- more rejects than --max_rejected (a fraction of the inputs found, or a count), with the top
  reasons;
- every input rejected;
- images that are not one kind of model input (pictures beside rasters of bands, different
  band counts, float beside integer pixels: pipelines/ingest/dataset_stats.py);
- no image of the intensity sample accepted (no normalisation statistics);
- index masks holding only class 0 and the ignore label (0/255 masks read as index masks).

The manifest is still written, marked `"status": "failed"` with the reasons under `"failures"`,
so that the shards and the rejects can be looked at; `segscale train` refuses such a dataset
unless it is given --allow_failed_dataset (segmodel.manifest.check_trainable).
"""

from __future__ import annotations

from segmodel.manifest import FAILED


def rejected_limit(max_rejected: float, found: int) -> float:
    """The most rejects a run may have: a fraction of `found` up to 1 (1: any share), a count
    above it."""
    return max_rejected * found if max_rejected <= 1 else max_rejected


def top_reasons(by_reason: dict[str, int], most: int = 3) -> str:
    ranked = sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))[:most]
    return ", ".join(f"{reason}: {n}" for reason, n in ranked)


def failures(batch: dict, stats: dict, spec, max_rejected: float) -> list[str]:
    """Why the batch a run just wrote fails as a dataset (empty: it passes).

    Args:
      batch: the batch's record (counts, rejects_by_reason).
      stats: the manifest's statistics.
      spec: the RecordSpec (mask mode, ignore label).
    """
    counts, by_reason = batch["counts"], batch["rejects_by_reason"]
    found, rejected, accepted = counts["found"], counts["rejected"], counts["accepted"]
    # Files of other types beside the images (.json, .xml sidecars, notes) are reported but
    # are no sign that the images or masks are wrong: they do not count against the share.
    sidecars = by_reason.get("unsupported_extension", 0)
    found, rejected = found - sidecars, rejected - sidecars
    problems = []
    if found and accepted == 0 and rejected:
        problems.append(f"all {rejected} inputs were rejected ({top_reasons(by_reason)})")
    elif rejected > rejected_limit(max_rejected, found):
        problems.append(
            f"{rejected} of {found} inputs rejected ({rejected / found:.0%}), more than "
            f"--max_rejected {max_rejected:g} allows; top reasons: {top_reasons(by_reason)}"
        )
    problems.extend(stats.get("layout_problems") or [])
    if accepted and batch.get("batch", 1) == 1 and not stats["intensity_images"]:
        problems.append(
            "none of the images sampled for the intensity statistics was accepted; re-run "
            "with --stats_sample 0 to use every accepted image"
        )
    if (
        accepted
        and spec.mask_mode == "index"
        and stats["ignored_pixels"]
        and not any(stats["class_pixels"][1:])
    ):
        problems.append(
            f"the masks hold only class 0 and the ignore label {spec.ignore_label}: every "
            "foreground pixel would be ignored; for 0/255 masks use --mask_mode binary (or "
            "choose another --ignore_label)"
        )
    return problems


def append_mismatch(dataset: dict, batch: dict) -> list[str]:
    """An --append batch whose accepted images are another kind of input than the dataset's
    (statistics of each): another band layout or pixel type."""
    if not sum(batch["records"].values()):
        return []
    theirs = (dataset.get("bands", False), dataset["channels"], sorted(dataset["bit_depths"]))
    ours = (batch.get("bands", False), batch["channels"], sorted(batch["bit_depths"]))
    problems = []
    if theirs[0] != ours[0] or (theirs[0] and theirs[1] != ours[1]):
        describe = lambda b, c: f"{c} bands" if b else "gray/RGB(A) pictures"  # noqa: E731
        problems.append(
            f"the batch's images are {describe(*ours[:2])}, the dataset's "
            f"{describe(*theirs[:2])}: a model takes one kind of input"
        )
    if ("32" in theirs[2]) != ("32" in ours[2]):
        problems.append(
            f"the batch's pixels are {'float' if '32' in ours[2] else 'integers'}, the "
            f"dataset's {'float' if '32' in theirs[2] else 'integers'}"
        )
    return problems


def mark(manifest: dict, problems: list[str]) -> dict:
    """The manifest with its status: failed (with the reasons) or ok. A dataset that failed
    stays failed when a batch is appended (its earlier reasons kept)."""
    earlier = (manifest.get("failures") or []) if manifest.get("status") == FAILED else []
    problems = earlier + [p for p in problems if p not in earlier]
    manifest = dict(manifest, status=FAILED if problems else "ok")
    manifest["failures"] = problems
    return manifest
