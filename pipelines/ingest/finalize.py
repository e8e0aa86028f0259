"""The end of an ingest run: once every shard is in place, the rejects file, empty shards
for splits no key hashed to, the manifest (written last: its presence means the dataset is
complete), then the summary and advice the launcher prints.

    segscale ingest ...          # prints "found N = accepted A + rejected R" from here
"""

from __future__ import annotations

import json
import sys
import time

from apache_beam.io.filesystems import FileSystems

from pipelines.fileio import read_bytes, write_atomically
from pipelines.ingest import advice, batches, gate, shard_writer
from pipelines.ingest.bundle_report import BundleReport, merge_reports
from pipelines.ingest.config import IngestConfig
from pipelines.ingest.dataset_stats import summarize
from pipelines.ingest.steps import shard_counts_for
from segmodel.manifest import MANIFEST_NAME, REJECTS_NAME
from segmodel.record_schema import SCHEMA_VERSION


def build_manifest(
    config: IngestConfig, report: BundleReport, shards: list, options_used: dict
) -> dict:
    """The manifest's content, from the merged report. Raises RuntimeError if the counts do not
    add up."""
    accepted, rejected = report.accepted, report.rejected
    if report.found != accepted + rejected:
        raise RuntimeError(
            f"ingest lost track of inputs: found {report.found} != accepted {accepted} + "
            f"rejected {rejected}; please report this"
        )
    stats = summarize(report.stats)
    shard_counts = shard_counts_for(config, report)
    splits = {}
    for name, fraction in config.splits:
        expected = shard_counts.get(name, 0)
        splits[name] = {
            "fraction": fraction,
            "records": stats["records"].get(name, 0),
            "bytes": sum(s.nbytes for s in shards if s.split == name),
            "num_shards": expected,
            "shards": [
                shard_writer.shard_name(name, i, expected, config.compression, config.batch)
                for i in range(expected)
            ],
        }
    spec = config.spec
    return {
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "num_classes": spec.num_classes,
        "class_names": list(config.class_names) or [f"class_{i}" for i in range(spec.num_classes)],
        "mask_mode": spec.mask_mode,
        "ignore_label": spec.ignore_label,
        "compression": config.compression,
        "counts": {"found": report.found, "accepted": accepted, "rejected": rejected},
        "rejects": {"file": REJECTS_NAME, "by_reason": dict(sorted(report.reasons.items()))},
        "splits": splits,
        "stats": stats,
        "options": options_used,
    }


def finalize(
    _,
    config: IngestConfig,
    temp_dir: str,
    options_used: dict,
    listing_reports: list,
    pairing_reports: list,
    shards: list,
):
    """Runs once, after every shard is in place: rejects file, empty and stale shards, manifest
    (last, so its presence means the dataset is complete), cleanup."""
    report = merge_reports(list(listing_reports) + list(pairing_reports), config.spec.num_classes)
    manifest = build_manifest(config, report, shards, options_used)
    out, batch, s3 = config.output_dir, config.batch, dict(config.s3_settings)
    for pieces, name in (
        (report.reject_files, batches.rejects_name(batch)),
        (report.key_files, batches.keys_name(batch)),
    ):
        shard_writer.concatenate(pieces, FileSystems.join(out, name), "none", s3)
    if batch > 1 and report.accepted == 0:
        # An --append that adds nothing leaves the dataset as it was (no new version); its
        # rejects file says why (the launcher reports it: batches.check_appended).
        if FileSystems.exists(temp_dir):
            FileSystems.delete([temp_dir])
        return manifest["counts"]
    written = {s.name for s in shards}
    ours = {n for s in manifest["splits"].values() for n in s["shards"]}
    for name in sorted(ours - written):  # no key hashed there: still a file, so -of-N holds
        shard_writer.write_empty_shard(out, name, config.compression, s3)
    batch_stats, mismatch = manifest["stats"], []
    if batch == 1:
        manifest = batches.first_version(manifest, config)
    else:  # --append: the dataset's manifest, grown by this batch
        previous = json.loads(read_bytes(FileSystems.join(out, MANIFEST_NAME)))
        superseded = batches.superseded_by(out, batch, previous)
        manifest = batches.next_version(previous, manifest, config, superseded)
        mismatch = gate.append_mismatch(previous["stats"], batch_stats)
    problems = gate.failures(manifest["batches"][-1], batch_stats, config.spec, config.max_rejected)
    manifest = gate.mark(manifest, problems + mismatch)
    keep = {n for s in manifest["splits"].values() for n in s["shards"]}
    keep |= {b[k] for b in manifest["batches"] for k in ("rejects_file", "keys_file")}
    stale = [
        m.path
        for pattern in ("*.tfrecord*", "keys-b*.jsonl", "rejects-b*.jsonl")
        for m in FileSystems.match([FileSystems.join(out, pattern)])[0].metadata_list
        if FileSystems.split(m.path)[1] not in keep
    ]
    if stale:  # an earlier dataset's (--overwrite), or a crashed run's other shard count
        FileSystems.delete(stale)
    write_atomically(
        FileSystems.join(config.output_dir, MANIFEST_NAME),
        json.dumps(manifest, indent=2).encode("utf-8"),
    )
    if FileSystems.exists(temp_dir):
        FileSystems.delete([temp_dir])
    return manifest["counts"]


def print_summary(manifest: dict, output_dir: str, seconds: float, out=None) -> None:
    out = out or sys.stdout
    batch = _latest_batch(manifest)
    counts = batch["counts"]
    print(
        f"Ingest finished in {seconds:.1f}s: found {counts['found']} = accepted "
        f"{counts['accepted']} + rejected {counts['rejected']}",
        file=out,
    )
    if batch["batch"] > 1:
        print(
            f"  appended as batch {batch['batch']} (dataset version {manifest['version']}); "
            f"{batch['superseded']} earlier record(s) replaced by a new label",
            file=out,
        )
    for name, split in manifest["splits"].items():
        print(
            f"  {name:<6} {split['records']:>8} records in {split['num_shards']} shard(s), "
            f"{split['bytes'] / 1e6:.1f} MB",
            file=out,
        )
    for reason, n in batch["rejects_by_reason"].items():
        print(f"  rejected {reason}: {n}", file=out)
    print(f"Outputs: {output_dir} (manifest.json, {batch['rejects_file']})", file=out)


def check_outcome(manifest: dict, config: IngestConfig, out=None) -> None:
    """Advice on the dominant reject reason; ValueError (exit 2) when nothing was found or
    nothing accepted: a scheduler must not see that as success."""
    batch = _latest_batch(manifest)
    counts, by_reason = batch["counts"], batch["rejects_by_reason"]
    if counts["found"] == 0:
        raise ValueError(
            f"found no files under --images_dir {config.images_dir} and --masks_dir "
            f"{config.masks_dir}; check the paths"
        )
    reason = advice.dominant_reason(by_reason)
    tip = None
    if reason:
        largest = None
        if reason == "mask_values_out_of_range":
            largest = advice.largest_mask_value(
                _first_lines(FileSystems.join(config.output_dir, batch["rejects_file"]), 10_000)
            )
        tip = advice.hint(reason, config.spec.num_classes, config.spec.mask_mode, largest)
    if counts["accepted"] == 0:
        why = f"all {counts['rejected']} inputs were rejected"
        if reason:
            why += f", {by_reason[reason]} of them {reason}"
        raise ValueError(f"{why}; {tip or 'see ' + batch['rejects_file']}")
    if tip and counts["rejected"] * 20 >= counts["found"]:  # 5 % or more: worth a line
        print(f"  hint ({reason}, {by_reason[reason]} rejects): {tip}", file=out or sys.stdout)
    if manifest.get("status") == gate.FAILED:  # pipelines/ingest/gate.py
        raise ValueError(
            "the dataset failed its checks, and its manifest is marked failed (segscale train "
            "refuses it unless given --allow_failed_dataset): " + "; ".join(manifest["failures"])
        )


def _latest_batch(manifest: dict) -> dict:
    """The batch a run just wrote (a manifest from before appends existed: the whole one)."""
    if manifest.get("batches"):
        return manifest["batches"][-1]
    return {
        "batch": 1,
        "counts": manifest["counts"],
        "rejects_by_reason": manifest["rejects"]["by_reason"],
        "rejects_file": manifest["rejects"].get("file", REJECTS_NAME),
    }


def _first_lines(path: str, limit: int) -> list[str]:
    lines = []
    with FileSystems.open(path) as f:
        for line in f:
            lines.append(line.decode("utf-8"))
            if len(lines) >= limit:
                break
    return lines
