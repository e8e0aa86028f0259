"""The ingest graph's per-element steps: list the input folders (rejecting what cannot be
paired), then pair, read, validate and encode each image/mask pair straight into shard pieces.
Each DoFn keeps a per-bundle report (counts, reject reasons, statistics) that finalize merges.

    segscale ingest ...          # the graph that wires these: pipelines/ingest/pipeline.py
"""

from __future__ import annotations

import os

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from pipelines.fileio import escapes_root, read_bytes
from pipelines.ingest import listing, pairing, shard_writer
from pipelines.ingest.bundle_report import BundleReport, merge_reports
from pipelines.ingest.config import IngestConfig
from pipelines.ingest.dataset_stats import DatasetStats
from pipelines.ingest.pair_encoding import encode_pair
from pipelines.progress import Progress
from pipelines.worker_exit import freeze_at_exit

COUNTER_NAMESPACE = "ingest"

_ROLES = (pairing.IMAGE, pairing.MASK)


def key_file(listed: listing.Listed, role: str, root: str, suffix: str, prefix: str = ""):
    """A listed file → (key, (role 0|1, name tail, size)), a Reject, or None for a hidden file.
    `prefix` goes before the key (IngestConfig.key_prefix: "train/" for an --append batch
    given --split train on a dataset split by folders).

    The tail is what follows the key in the relative path (".png", "_mask.png"): the local
    runner holds every listed file in memory during the pairing shuffle, so the smaller each
    entry, the flatter memory stays. pair_group rebuilds the full paths.
    """
    path, size, problem = listed
    if pairing.is_hidden(path, root):
        return None
    key, extension = pairing.relative_key(path, root, suffix if role == pairing.MASK else "")
    if problem is None and escapes_root(path, root):
        problem = ("symlink_outside_input", f"symlink to {os.path.realpath(path)}, outside {root}")
    elif problem is None and not pairing.is_supported(extension):
        problem = (
            "unsupported_extension",
            f"{extension or 'no extension'} is not an image type we read",
        )
    if problem:
        image, mask = (path, None) if role == pairing.IMAGE else (None, path)
        return pairing.Reject(*problem, prefix + key, image, mask)
    tail = pairing.relative_path(path, root)[len(key) :]
    return prefix + key, (_ROLES.index(role), tail, size)


# Why a single file is rejected when listed; a marker carries the index (an int, like the size
# it stands in for: the shuffle's coder is inferred from the first entries).
LISTING_REASONS = (
    "broken_symlink",
    "not_a_regular_file",
    "unreadable_file",
    "symlink_outside_input",
    "unsupported_extension",
)


def rejected_entry(reject: pairing.Reject, root: str, prefix: str = ""):
    """A file rejected when listed → (key, (role 2|3, tail, reason index)): a marker that
    tells the pairing why its partner stands alone (see pairing.classify); None for a folder."""
    if reject.reason not in LISTING_REASONS:
        return None  # unreadable_folder, symlink_to_folder: not one file's partner
    role = 2 if reject.image else 3
    relative = pairing.relative_path(reject.image or reject.mask, root)
    key = reject.key[len(prefix) :]
    if not relative.startswith(key):
        return None
    return reject.key, (role, relative[len(key) :], LISTING_REASONS.index(reject.reason))


def pair_group(
    element, splits, images_dir: str, masks_dir: str, prefix: str = ""
) -> pairing.Pair | pairing.Reject | None:
    """(key, [(role, tail, size or reason index), ...]) → a Pair, a Reject (unpaired, orphan,
    ambiguous, partner rejected), or None when every file of the key was rejected when listed.
    Roles 0 and 1 are an image and a mask; 2 and 3 an image and a mask rejected when listed."""
    key, entries = element
    roots, relative = (images_dir, masks_dir), key[len(prefix) :]
    files, rejected = [], []
    for role, tail, value in entries:
        path = pairing.join(roots[role % 2], relative + tail)
        if role < 2:
            files.append((_ROLES[role], path, value))
        else:
            rejected.append((_ROLES[role - 2], path, LISTING_REASONS[value]))
    return pairing.classify(key, files, splits, rejected)


def _in_global_window(value):
    return WindowedValue(value, 0, [GlobalWindow()])


class _ReportingDoFn(beam.DoFn):
    """Keeps a BundleReport and a rejects piece per bundle; emits the report (tag "reports")
    from finish_bundle."""

    def __init__(self, temp_dir: str):
        self._temp_dir = temp_dir

    def setup(self):
        freeze_at_exit()

    def start_bundle(self):
        self._report = BundleReport()
        self._rejects = shard_writer.JsonLinesPiece(self._temp_dir, "rejects")

    def reject(self, reject: pairing.Reject) -> None:
        Metrics.counter(COUNTER_NAMESPACE, f"rejected_{reject.reason}").inc()
        self._report.reasons[reject.reason] += 1
        self._rejects.write(reject.to_json_dict())

    def finish_bundle(self):
        self._report.reject_files = self._rejects.close()
        yield beam.pvalue.TaggedOutput("reports", _in_global_window(self._report))


class ListFiles(_ReportingDoFn):
    """(role, root, listing task) → (key, (role, tail, size)) per file to pair.

    Files that cannot be paired at all (unsupported type, symlink out of the input folder,
    broken symlink, FIFO, unreadable folder) are rejected here; the report carries the source
    bytes per split, which size the shards.
    """

    def __init__(self, config: IngestConfig, temp_dir: str):
        super().__init__(temp_dir)
        self._splits = config.splits
        self._suffix = config.mask_suffix
        self._prefix = config.key_prefix
        self._s3 = dict(config.s3_settings)

    def process(self, element):
        role, root, task = element
        for listed in listing.list_task(root, task, self._s3):
            result = key_file(listed, role, root, self._suffix, self._prefix)
            if result is None:
                continue
            if isinstance(result, pairing.Reject):
                self._report.found += 1
                self.reject(result)
                marker = rejected_entry(result, root, self._prefix)
                if marker is not None:  # its partner is told why it stands alone
                    yield marker
                continue
            key, entry = result
            split = pairing.assign_split(key, self._splits)
            if split is not None:  # else rejected when paired (outside the split folders)
                self._report.split_bytes[split] += entry[2]
            self._report.listed_files += 1
            yield key, entry


class PairEncodeAndWrite(_ReportingDoFn):
    """(key, listed files) → pairs the files, reads, validates and encodes them, and appends
    the record to a piece file; emits ((split, shard, shard count), Piece) per bundle.

    Images are decoded for the statistics in a sample of about `stats_sample` pairs fixed by
    their keys (pairing.in_sample); the listing's count sets the rate. Outside it, a PNG that
    is stored as it is gets its structure checked without decoding (pair_encoding.encode_pair).

    Pairing, encoding and writing are one DoFn on purpose: records go from encoding straight to
    disk and never through the runner (the local FnApiRunner would hold them all in memory).
    The side input is the listing's reports, whose bytes per split fix the shard counts.
    """

    def __init__(self, config: IngestConfig, temp_dir: str):
        super().__init__(temp_dir)
        self._config = config
        self._accepted = Metrics.counter(COUNTER_NAMESPACE, "accepted")

    def setup(self):
        super().setup()
        self._progress = Progress("ingest", "pairs")
        self._num_shards = None
        self._sample_rate = 1.0
        self._stats_fn = DatasetStats(self._config.spec.num_classes)

    def start_bundle(self):
        super().start_bundle()
        self._report.stats = self._stats_fn.empty()
        self._writer = shard_writer.PieceWriter(self._temp_dir)
        self._keys = shard_writer.JsonLinesPiece(self._temp_dir, "keys")

    def process(self, element, listing_reports):
        c = self._config
        if self._num_shards is None:  # the same for every bundle: the listing is done
            listed = merge_reports(listing_reports, 1)
            self._num_shards = shard_counts_for(c, listed)
            self._progress.total = listed.listed_files // 2  # an image and a mask a pair
            if c.stats_sample:
                self._sample_rate = c.stats_sample / max(1, self._progress.total)
        pair = pair_group(element, c.splits, c.images_dir, c.masks_dir, c.key_prefix)
        if pair is None:  # only files rejected when listed, each counted there
            return
        self._report.found += 1
        if isinstance(pair, pairing.Reject):
            self.reject(pair)
            return
        try:
            image_bytes = read_bytes(pair.image)
            mask_bytes = read_bytes(pair.mask)
        except Exception as e:  # vanished file, permissions, object-store error
            self.reject(
                pairing.Reject(
                    "unreadable_file", f"cannot read: {e}", pair.key, pair.image, pair.mask
                )
            )
            return
        pixels = pairing.in_sample(pair.key, self._sample_rate)
        result = encode_pair(pair, image_bytes, mask_bytes, c.spec, pixels)
        if isinstance(result, pairing.Reject):
            self.reject(result)
            return
        record, stats = result
        split, index, count = self._writer.write(pair.split, pair.key, record, self._num_shards)
        shard = shard_writer.shard_name(split, index, count, c.compression, c.batch)
        self._keys.write({"key": pair.key, "split": split, "shard": shard})
        self._stats_fn.add(self._report.stats, stats)
        self._accepted.inc()
        self._progress.add()

    def finish_bundle(self):
        yield from self._writer.close()
        self._report.key_files = self._keys.close()
        yield from super().finish_bundle()


def shard_counts_for(config: IngestConfig, report: BundleReport) -> dict[str, int]:
    """Shards per split, from the listing's bytes per split in a merged report (none for a
    split no key hashed to)."""
    return shard_writer.shard_counts(
        dict(report.split_bytes),
        num_shards=config.num_shards,
        target_shard_bytes=config.target_shard_bytes,
    )
