"""Ingest: image/mask folders → validated, sharded TFRecords, a rejects file and a manifest.

    python -m pipelines.ingest --images_dir data/images --masks_dir data/masks \
        --output_dir out/data --num_classes 3 --direct_num_workers 2

Every input ends in a shard or in `rejects.jsonl` with a reason; the job prints
found = accepted + rejected. Runs locally on the FnApiRunner (profile `local`) and on any Beam
runner (`--profile`, or plain Beam flags such as `--runner`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import uuid

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from pipelines.fileio import (
    check_writable,
    escapes_root,
    is_remote,
    read_bytes,
    write_atomically,
)
from pipelines.ingest import advice, listing, masks, pairing, shard_writer
from pipelines.ingest import options as own_flags
from pipelines.ingest.bundle_report import BundleReport, merge_reports
from pipelines.ingest.dataset_stats import DatasetStatsFn, summarize
from pipelines.ingest.records import RecordSpec, encode_pair
from pipelines.progress import Progress
from pipelines.worker_exit import freeze_at_exit
from runners.beam_workarounds import filesystem_options
from runners.launch import cli_main, execute, is_dry_run, pipeline_options, s3_settings
from segmodel.features import SCHEMA_VERSION
from segmodel.manifest import MANIFEST_NAME, REJECTS_NAME

COUNTER_NAMESPACE = "ingest"
MIN_STATS_SAMPLE = 100  # images: below this the sampled mean and std are too noisy


class IngestOptions(PipelineOptions):
    """The ingest pipeline's own flags (runner flags come from --profile or Beam's options)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        own_flags.add_arguments(parser)


@dataclasses.dataclass(frozen=True)
class IngestConfig:
    """Checked, resolved ingest settings (what the composite needs; picklable)."""

    images_dir: str
    masks_dir: str
    output_dir: str
    spec: RecordSpec
    splits: tuple[tuple[str, float], ...]
    num_shards: int = 0
    target_shard_bytes: int = 128 << 20
    compression: str = "none"
    class_names: tuple[str, ...] = ()
    mask_suffix: str = ""
    stats_sample: int = 2000  # images decoded for the intensity statistics (0: all)
    s3_settings: tuple[tuple[str, object], ...] = ()  # the run's S3 options (empty objects)

    @classmethod
    def from_options(cls, options: IngestOptions) -> IngestConfig:
        """Validates flags; raises ValueError with a message that names the flag."""
        o = options
        for flag in ("images_dir", "masks_dir", "output_dir", "num_classes"):
            if getattr(o, flag) in (None, ""):
                raise ValueError(f"--{flag} is required")
        for flag in ("images_dir", "masks_dir"):
            folder = getattr(o, flag)
            if not is_remote(folder) and not os.path.isdir(folder):
                raise ValueError(f"--{flag} {folder}: no such folder")
        if not 1 <= o.num_classes <= 255:
            raise ValueError(f"--num_classes must be in 1..255, got {o.num_classes}")
        if not 0 <= o.ignore_label <= 255 or o.ignore_label < o.num_classes:
            raise ValueError(
                f"--ignore_label must be in {o.num_classes}..255 (not a class), got {o.ignore_label}"
            )
        if o.mask_mode == "binary" and o.num_classes != 2:
            raise ValueError("--mask_mode binary gives classes 0/1: use --num_classes 2")
        palette = None
        if o.mask_mode == "rgb":
            if not o.palette:
                raise ValueError("--mask_mode rgb needs --palette FILE")
            try:
                palette = masks.parse_palette(read_bytes(o.palette).decode("utf-8"))
            except (OSError, ValueError, UnicodeDecodeError) as e:
                raise ValueError(f"--palette {o.palette}: {e}") from None
        class_names = tuple(n.strip() for n in o.class_names.split(",") if n.strip())
        if class_names and len(class_names) != o.num_classes:
            raise ValueError(
                f"--class_names has {len(class_names)} names for {o.num_classes} classes"
            )
        for flag in ("images_dir", "masks_dir"):
            if advice.nested(o.output_dir, getattr(o, flag)):
                raise ValueError(
                    f"--output_dir {o.output_dir} is inside --{flag} {getattr(o, flag)}: the next "
                    "run would read its own shards as inputs; choose a folder outside the inputs"
                )
            if advice.nested(getattr(o, flag), o.output_dir):
                raise ValueError(
                    f"--{flag} {getattr(o, flag)} is inside --output_dir {o.output_dir}; "
                    "choose an output folder that does not hold the inputs"
                )
        if o.num_shards < 0 or o.target_shard_mb <= 0:
            raise ValueError("--num_shards must be >= 0 and --target_shard_mb > 0")
        if o.max_pixels <= 0:
            raise ValueError("--max_pixels must be positive")
        if o.stats_sample != 0 and o.stats_sample < MIN_STATS_SAMPLE:
            raise ValueError(
                f"--stats_sample must be 0 (decode every image) or at least {MIN_STATS_SAMPLE} "
                f"(fewer gives noisy normalisation statistics), got {o.stats_sample}"
            )
        return cls(
            images_dir=o.images_dir,
            masks_dir=o.masks_dir,
            output_dir=o.output_dir,
            spec=RecordSpec(o.num_classes, o.mask_mode, o.ignore_label, o.max_pixels, palette),
            splits=pairing.parse_splits(o.splits),
            num_shards=o.num_shards,
            target_shard_bytes=int(o.target_shard_mb * (1 << 20)),
            compression=o.compression,
            class_names=class_names,
            mask_suffix=o.mask_suffix,
            stats_sample=o.stats_sample,
        )


# --- per-element functions -------------------------------------------------------------------


_ROLES = (pairing.IMAGE, pairing.MASK)


def key_file(listed: listing.Listed, role: str, root: str, suffix: str):
    """A listed file → (key, (role 0|1, name tail, size)), a Reject, or None for a hidden file.

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
        return pairing.Reject(*problem, key, image, mask)
    tail = pairing.relative_path(path, root)[len(key) :]
    return key, (_ROLES.index(role), tail, size)


def pair_group(element, splits, images_dir: str, masks_dir: str) -> pairing.Pair | pairing.Reject:
    """(key, [(role 0|1, tail, size), ...]) → a Pair, or a Reject (unpaired, orphan, ambiguous)."""
    key, entries = element
    roots = (images_dir, masks_dir)
    entries = [
        (_ROLES[role], pairing.join(roots[role], key + tail), size) for role, tail, size in entries
    ]
    return pairing.classify(key, entries, splits)


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
        self._s3 = dict(config.s3_settings)

    def process(self, element):
        role, root, task = element
        for listed in listing.list_task(root, task, self._s3):
            result = key_file(listed, role, root, self._suffix)
            if result is None:
                continue
            if isinstance(result, pairing.Reject):
                self._report.found += 1
                self.reject(result)
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
    is stored as it is gets its structure checked without decoding (records.encode_pair).

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
        self._stats_fn = DatasetStatsFn(self._config.spec.num_classes)

    def start_bundle(self):
        super().start_bundle()
        self._report.stats = self._stats_fn.create_accumulator()
        self._writer = shard_writer.PieceWriter(self._temp_dir)

    def process(self, element, listing_reports):
        c = self._config
        if self._num_shards is None:  # the same for every bundle: the listing is done
            listed = merge_reports(listing_reports, 1)
            self._num_shards = shard_counts_for(c, listed)
            self._progress.total = listed.listed_files // 2  # an image and a mask a pair
            if c.stats_sample:
                self._sample_rate = c.stats_sample / max(1, self._progress.total)
        self._report.found += 1
        pair = pair_group(element, c.splits, c.images_dir, c.masks_dir)
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
        self._writer.write(pair.split, pair.key, record, self._num_shards)
        self._stats_fn.add_input(self._report.stats, stats)
        self._accepted.inc()
        self._progress.add()

    def finish_bundle(self):
        yield from self._writer.close()
        yield from super().finish_bundle()


def shard_counts_for(config: IngestConfig, report: BundleReport) -> dict[str, int]:
    """Shards per split, from the listing's bytes per split in a merged report (none for a
    split no key hashed to)."""
    return shard_writer.shard_counts(
        dict(report.split_bytes),
        num_shards=config.num_shards,
        target_shard_bytes=config.target_shard_bytes,
    )


# --- the graph --------------------------------------------------------------------------------


class IngestDataset(beam.PTransform):
    """Folders → shards on disk. Returns {shards, listing_reports, pairing_reports}.

    Three fused stages: list (and reject unusable files), pair + encode + write pieces, merge
    pieces into shards. `temp_dir` holds the pieces (records and rejects) until the end;
    `merge_reports` over both report collections gives the counts, rejects and statistics.
    """

    def __init__(self, config: IngestConfig, temp_dir: str):
        super().__init__()
        self._config = config
        self._temp_dir = temp_dir

    def expand(self, pbegin):
        c = self._config
        tasks = [
            (role, root, task)
            for role, root in ((pairing.IMAGE, c.images_dir), (pairing.MASK, c.masks_dir))
            for task in listing.listing_tasks(root, dict(c.s3_settings))
        ]
        # Object-store listings are slow page by page: spread their tasks over the workers.
        # A local listing is a quick directory walk, cheaper in the stage it starts in.
        remote = is_remote(c.images_dir) or is_remote(c.masks_dir)
        listed = (
            pbegin
            | "ListingTasks" >> beam.Create(tasks, reshuffle=remote)
            | "ListFiles"
            >> beam.ParDo(ListFiles(c, self._temp_dir))
            # Declared, not inferred: Beam's inference reads the bytecode of process().
            .with_output_types(tuple[str, tuple[int, str, int]])
            .with_outputs("reports", main="files")
        )
        written = (
            listed.files
            | "GroupByKey" >> beam.GroupByKey()
            | "PairEncodeAndWrite"
            >> beam.ParDo(PairEncodeAndWrite(c, self._temp_dir), beam.pvalue.AsList(listed.reports))
            .with_output_types(tuple[tuple[str, int, int], shard_writer.Piece])
            .with_outputs("reports", main="pieces")
        )
        shards = (
            written.pieces
            | "GroupPieces" >> beam.GroupByKey()
            | "MergeShards" >> beam.Map(shard_writer.merge_shard, c.output_dir, c.compression)
        )
        return {
            "shards": shards,
            "listing_reports": listed.reports,
            "pairing_reports": written.reports,
        }


# --- finishing: manifest and summary ----------------------------------------------------------


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
                shard_writer.shard_name(name, i, expected, config.compression)
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
    s3 = dict(config.s3_settings)
    shard_writer.concatenate(
        report.reject_files, FileSystems.join(config.output_dir, REJECTS_NAME), "none", s3
    )
    written = {s.name for s in shards}
    keep = {n for s in manifest["splits"].values() for n in s["shards"]}
    for name in sorted(keep - written):  # no key hashed there: still a file, so -of-N holds
        shard_writer.write_empty_shard(config.output_dir, name, config.compression, s3)
    stale = [
        m.path
        for m in FileSystems.match([FileSystems.join(config.output_dir, "*.tfrecord*")])[
            0
        ].metadata_list
        if FileSystems.split(m.path)[1] not in keep
    ]
    if stale:  # shards of an earlier run with another shard count or split set
        FileSystems.delete(stale)
    write_atomically(
        FileSystems.join(config.output_dir, MANIFEST_NAME),
        json.dumps(manifest, indent=2).encode("utf-8"),
    )
    if FileSystems.exists(temp_dir):
        FileSystems.delete([temp_dir])
    return manifest["counts"]


def build_pipeline(pipeline: beam.Pipeline, config: IngestConfig, options_used: dict) -> None:
    """Wires the composite to its outputs: shards, rejects.jsonl and manifest.json."""
    temp_dir = FileSystems.join(config.output_dir, f".ingest-tmp-{uuid.uuid4().hex[:12]}")
    outputs = pipeline | "Ingest" >> IngestDataset(config, temp_dir)
    side = beam.pvalue
    (
        pipeline
        | "Once" >> beam.Create([None])
        | "Finalize"
        >> beam.Map(
            finalize,
            config,
            temp_dir,
            options_used,
            side.AsList(outputs["listing_reports"]),
            side.AsList(outputs["pairing_reports"]),
            side.AsList(outputs["shards"]),
        )
    )


def _options_used(options: IngestOptions) -> dict:
    """Our flags' values (and the runner), recorded in the manifest."""
    mine = set(vars(own_flags.help_parser().parse_known_args([])[0])) - {"profile"}
    return {k: v for k, v in options.get_all_options().items() if k in mine or k == "runner"}


def print_summary(manifest: dict, output_dir: str, seconds: float, out=None) -> None:
    out = out or sys.stdout
    counts = manifest["counts"]
    print(
        f"Ingest finished in {seconds:.1f}s: found {counts['found']} = accepted "
        f"{counts['accepted']} + rejected {counts['rejected']}",
        file=out,
    )
    for name, split in manifest["splits"].items():
        print(
            f"  {name:<6} {split['records']:>8} records in {split['num_shards']} shard(s), "
            f"{split['bytes'] / 1e6:.1f} MB",
            file=out,
        )
    for reason, n in manifest["rejects"]["by_reason"].items():
        print(f"  rejected {reason}: {n}", file=out)
    print(f"Outputs: {output_dir} (manifest.json, rejects.jsonl)", file=out)


def _parse_args(argv):
    """Our own flags, checked before anything starts (--help, bad values); Beam's pass through."""
    return own_flags.help_parser().parse_known_args(argv)


def run(argv=None, test_pipeline=None) -> dict:
    """Runs the ingest pipeline; returns the manifest.

    Args:
      argv: command-line flags (ours plus Beam's).
      test_pipeline: a TestPipeline to build into instead of a new Pipeline.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    _parse_args(argv)  # --help and unknown-value errors before anything starts
    options = pipeline_options(argv)
    with filesystem_options(options):
        return _run(options, test_pipeline)


def _run(options, test_pipeline) -> dict:
    config = dataclasses.replace(
        IngestConfig.from_options(options.view_as(IngestOptions)),
        s3_settings=tuple(s3_settings(options).items()),
    )
    if not is_dry_run(options):  # a dry run writes nothing (and may have no credentials)
        check_writable(config.output_dir)
    start = time.time()
    used = _options_used(options.view_as(IngestOptions))
    execute(options, lambda p: build_pipeline(p, config, used), test_pipeline)
    if is_dry_run(options):
        return {"dry_run": True}
    manifest = json.loads(read_bytes(FileSystems.join(config.output_dir, MANIFEST_NAME)))
    print_summary(manifest, config.output_dir, time.time() - start)
    check_outcome(manifest, config)
    return manifest


def check_outcome(manifest: dict, config: IngestConfig, out=None) -> None:
    """Advice on the dominant reject reason; ValueError (exit 2) when nothing was found or
    nothing accepted: a scheduler must not see that as success."""
    counts, by_reason = manifest["counts"], manifest["rejects"]["by_reason"]
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
                _first_lines(FileSystems.join(config.output_dir, REJECTS_NAME), 10_000)
            )
        tip = advice.hint(reason, config.spec.num_classes, config.spec.mask_mode, largest)
    if counts["accepted"] == 0:
        why = f"all {counts['rejected']} inputs were rejected"
        if reason:
            why += f", {by_reason[reason]} of them {reason}"
        raise ValueError(f"{why}; {tip or 'see rejects.jsonl'}")
    stats, spec = manifest["stats"], config.spec
    if not stats["intensity_images"]:  # every pair of the sample was rejected
        raise ValueError(
            f"none of the images sampled for the intensity statistics was accepted "
            f"({counts['accepted']} accepted in all); re-run with --stats_sample 0 to use every "
            "accepted image"
        )
    if spec.mask_mode == "index" and stats["ignored_pixels"] and not any(stats["class_pixels"][1:]):
        raise ValueError(
            f"the masks hold only class 0 and the ignore label {spec.ignore_label}: every "
            "foreground pixel would be ignored; for 0/255 masks use --mask_mode binary "
            "(or choose another --ignore_label)"
        )
    if tip and counts["rejected"] * 20 >= counts["found"]:  # 5 % or more: worth a line
        print(f"  hint ({reason}, {by_reason[reason]} rejects): {tip}", file=out or sys.stdout)


def _first_lines(path: str, limit: int) -> list[str]:
    lines = []
    with FileSystems.open(path) as f:
        for line in f:
            lines.append(line.decode("utf-8"))
            if len(lines) >= limit:
                break
    return lines


def main(argv=None) -> int:
    return cli_main(run, argv)
