"""What one bundle of the ingest pipeline did: inputs it accounts for, rejects, bytes, stats.

    python -m pipelines.ingest ...   # the manifest's counts are these reports, merged

Each ingest DoFn keeps one BundleReport for the life of a bundle, writes its rejects to a piece
file of its own, and emits the report once from finish_bundle; the job's last step merges them.
So the counts, the rejects and the statistics cost no stage of their own (on the local runner a
stage costs tens of milliseconds), and no per-input element travels through the runner for
bookkeeping. A bundle that fails and is retried emits nothing: its report is dropped with its
outputs, and its piece files are left in the temporary folder, which is deleted at the end.
"""

from __future__ import annotations

import collections
import dataclasses

from pipelines.ingest.dataset_stats import DatasetStats


@dataclasses.dataclass
class BundleReport:
    """Counts from one bundle (mutable while the bundle runs; merged at the end).

    found: inputs this bundle accounts for: keys it paired (whatever became of them) and files
      it rejected before pairing. found = accepted + rejected over all bundles.
    split_bytes: source bytes per split, from the listing (sizes the shards).
    reasons: rejects by reason.
    reject_files: the bundle's piece files of rejects (JSON lines).
    key_files: the bundle's piece files of the key index (key, split, shard per record).
    stats: a DatasetStats accumulator over the records written, or None.
    listed_files: image and mask files the listing passed on to pairing (for progress lines).
    """

    found: int = 0
    split_bytes: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    reasons: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    reject_files: list = dataclasses.field(default_factory=list)
    key_files: list = dataclasses.field(default_factory=list)
    stats: dict | None = None
    listed_files: int = 0

    @property
    def accepted(self) -> int:
        return sum(self.stats["records"].values()) if self.stats else 0

    @property
    def rejected(self) -> int:
        return sum(self.reasons.values())


def merge_reports(reports, num_classes: int) -> BundleReport:
    """One report for the whole job (stats always set, empty when nothing was accepted)."""
    stats_fn = DatasetStats(num_classes)
    merged = BundleReport(stats=stats_fn.empty())
    partial = [merged.stats]
    for report in reports:
        merged.found += report.found
        merged.listed_files += report.listed_files
        merged.split_bytes.update(report.split_bytes)
        merged.reasons.update(report.reasons)
        merged.reject_files.extend(report.reject_files)
        merged.key_files.extend(report.key_files)
        if report.stats is not None:
            partial.append(report.stats)
    merged.stats = stats_fn.merge(partial)
    merged.reject_files.sort()  # the same pieces give the same rejects file
    merged.key_files.sort()
    return merged
