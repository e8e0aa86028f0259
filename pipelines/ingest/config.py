"""The ingest run's settings: Beam's view of our flags (IngestOptions) and the checked, frozen
settings the graph reads (IngestConfig.from_options: every flag error named before anything runs).

    segscale ingest --help       # the flags themselves: pipelines/ingest/options.py
"""

from __future__ import annotations

import dataclasses
import json
import os

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.fileio import is_remote, read_bytes
from pipelines.ingest import advice, masks, pairing
from pipelines.ingest import options as own_flags
from pipelines.ingest.pair_encoding import RecordSpec
from segmodel.manifest import MANIFEST_NAME

DEFAULT_IGNORE_LABEL = 255
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
    max_rejected: float = 0.2  # a fraction of the inputs found (<= 1), or a count (> 1)
    s3_settings: tuple[tuple[str, object], ...] = ()  # the run's S3 options (empty objects)
    batch: int = 1  # 1: a new dataset; 2, 3, ...: the batch an --append adds
    forced_split: str | None = None  # --split: the whole batch goes there
    # Put before every key of the batch: "train/" for --split train on a dataset split by
    # folders, whose keys start with their split folder (so a correction replaces its record).
    key_prefix: str = ""

    @classmethod
    def from_options(cls, options: IngestOptions, dry_run: bool = False) -> IngestConfig:
        """Validates flags; raises ValueError with a message that names the flag."""
        o = _Flags(**{k: getattr(options, k) for k in _Flags.__dataclass_fields__})
        for flag in ("images_dir", "masks_dir", "output_dir"):
            if getattr(o, flag) in (None, ""):
                raise ValueError(f"--{flag} is required")
        # A dry run writes nothing and may have no credentials: it does not look at the folder.
        previous = None if dry_run else existing_dataset(o)
        if previous is not None:
            o = _as_in_dataset(o, previous)
        elif o.ignore_label is None:
            o = dataclasses.replace(o, ignore_label=DEFAULT_IGNORE_LABEL)
        if o.num_classes is None:
            raise ValueError("--num_classes is required")
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
        if o.max_rejected < 0:
            raise ValueError(f"--max_rejected must be a fraction or a count, got {o.max_rejected}")
        if o.stats_sample != 0 and o.stats_sample < MIN_STATS_SAMPLE:
            raise ValueError(
                f"--stats_sample must be 0 (decode every image) or at least {MIN_STATS_SAMPLE} "
                f"(fewer gives noisy normalisation statistics), got {o.stats_sample}"
            )
        splits = pairing.parse_splits(o.splits)
        batch, forced, prefix = 1, None, ""
        if previous is not None:
            splits = tuple((n, s["fraction"]) for n, s in previous["splits"].items())
            batch = len(previous["batches"]) + 1
            forced = o.split
            if pairing.by_folder(splits):
                prefix = _folder_split_prefix(o, splits, forced)
        elif o.split:
            raise ValueError("--split NAME puts an --append batch in one split; use --splits")
        if forced is not None and forced not in dict(splits):
            raise ValueError(f"--split {forced}: the dataset's splits are {sorted(dict(splits))}")
        return cls(
            batch=batch,
            forced_split=forced,
            key_prefix=prefix,
            images_dir=o.images_dir,
            masks_dir=o.masks_dir,
            output_dir=o.output_dir,
            spec=RecordSpec(o.num_classes, o.mask_mode, o.ignore_label, o.max_pixels, palette),
            splits=((forced, 1.0),) if forced else splits,
            num_shards=o.num_shards,
            target_shard_bytes=int(o.target_shard_mb * (1 << 20)),
            compression=o.compression,
            class_names=class_names,
            mask_suffix=o.mask_suffix,
            stats_sample=o.stats_sample,
            max_rejected=o.max_rejected,
        )


def existing_dataset(o) -> dict | None:
    """The manifest of the dataset in --output_dir when --append adds to it; None for a new
    dataset. ValueError when the folder holds a dataset and neither --append nor --overwrite
    says what to do with it (one mistyped path must not replace a dataset models came from)."""
    if o.append and o.overwrite:
        raise ValueError("--append and --overwrite exclude each other")
    path = FileSystems.join(o.output_dir, MANIFEST_NAME)
    previous = None
    if FileSystems.exists(path):
        try:
            previous = json.loads(read_bytes(path))
        except (OSError, ValueError) as e:
            if not o.overwrite:
                raise ValueError(f"{path}: cannot read the dataset's manifest ({e})") from None
    if previous is None:
        if o.append:
            raise ValueError(f"--append: {o.output_dir} holds no dataset (no {MANIFEST_NAME})")
        return None
    if o.overwrite:
        return None
    records = sum(s.get("records", 0) for s in previous.get("splits", {}).values())
    if not o.append:
        raise ValueError(
            f"--output_dir {o.output_dir} already holds a dataset ({records} records, "
            f"{MANIFEST_NAME}); add --append to add these pairs to it, or --overwrite to "
            "replace it"
        )
    if "batches" not in previous:
        raise ValueError(
            f"{path}: this dataset was ingested before datasets could grow (it has no key "
            "index); ingest it again with --overwrite, then --append to it"
        )
    return previous


def _folder_split_prefix(o, splits, forced: str | None) -> str:
    """For a dataset split by folders: the key prefix of a batch given one --split ("train/"),
    or "" for a batch laid out in split folders itself. A flat batch without --split would
    have every pair rejected (outside_split_folders): refused here, naming the fix."""
    if forced is not None:
        return f"{forced}/"
    names = [name for name, _ in splits]
    if not is_remote(o.images_dir) and not any(
        os.path.isdir(os.path.join(o.images_dir, name)) for name in names
    ):
        raise ValueError(
            f"--append: the dataset is split by folders ({', '.join(names)}) and "
            f"--images_dir {o.images_dir} has none of them; add --split NAME (e.g. --split "
            "train) or lay the batch out in split folders"
        )
    return ""


def _as_in_dataset(o, previous: dict):
    """The batch's flags checked against the dataset's contract (classes, ignore label,
    compression), which an --append takes from the manifest when they are not given."""
    given = {"num_classes": o.num_classes, "class_names": o.class_names}
    for flag, value in given.items():
        theirs = previous[flag]
        if flag == "class_names":
            value = [n.strip() for n in value.split(",") if n.strip()] or None
        if value is not None and value != theirs:
            raise ValueError(
                f"--append: --{flag} {value} differs from the dataset's ({theirs}); a batch "
                "must keep the dataset's classes"
            )
    if o.ignore_label is not None and o.ignore_label != previous["ignore_label"]:
        raise ValueError(
            f"--append: --ignore_label {o.ignore_label} differs from the dataset's "
            f"({previous['ignore_label']})"
        )
    return dataclasses.replace(
        o,
        num_classes=previous["num_classes"],
        ignore_label=previous["ignore_label"],
        class_names=",".join(previous["class_names"]),
        compression=previous.get("compression", "none"),
    )


@dataclasses.dataclass(frozen=True)
class _Flags:
    """The flags from_options reads, as plain values (an --append overrides some)."""

    images_dir: str
    masks_dir: str
    output_dir: str
    num_classes: int | None
    mask_mode: str
    palette: str | None
    ignore_label: int | None
    splits: str
    split: str | None
    num_shards: int
    target_shard_mb: float
    compression: str
    max_pixels: int
    class_names: str
    stats_sample: int
    max_rejected: float
    mask_suffix: str
    append: bool
    overwrite: bool


def options_used(options: IngestOptions) -> dict:
    """Our flags' values (and the runner), recorded in the manifest."""
    mine = set(vars(own_flags.help_parser().parse_known_args([])[0])) - {"profile"}
    return {k: v for k, v in options.get_all_options().items() if k in mine or k == "runner"}
