"""The ingest pipeline's own flags, defined without importing Beam (fast --help).

python -m pipelines.ingest --help
"""

from __future__ import annotations

from pipelines.image_io import DEFAULT_MAX_PIXELS
from pipelines.ingest import masks
from runners.flags import add_argument_once, own_flags_parser

PROG = "python -m pipelines.ingest"
DESCRIPTION = (
    "Ingest: image/mask folders → validated, sharded TFRecords, a rejects file and a manifest."
)
EXAMPLE = "segscale ingest --images_dir data/images --masks_dir data/masks --output_dir out/data --num_classes 3 --class_names bg,cell,debris --direct_num_workers 2"


def help_parser():
    """The full parser (our flags and --profile), for --help and early flag errors."""
    return own_flags_parser(add_arguments, prog=PROG, description=DESCRIPTION, example=EXAMPLE)


def add_arguments(parser) -> None:
    """Adds the flags to an argparse parser (Beam's PipelineOptions calls this too)."""
    parser.add_argument("--images_dir", help="Folder of images (nested folders allowed).")
    parser.add_argument("--masks_dir", help="Folder of masks, same relative names as the images.")
    add_argument_once(
        parser,
        "--output_dir",
        help="Where shards, rejects.jsonl and manifest.json go (local, gs://).",
    )
    parser.add_argument(
        "--num_classes",
        type=int,
        help="Number of classes; mask values are 0..N-1 (with --append: the dataset's).",
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="Add these pairs to the dataset already in --output_dir: new shards beside the "
        "old ones (none rewritten), a new manifest version with the batch's lineage; a pair "
        "whose key is already in the dataset replaces its earlier label.",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Replace the dataset already in --output_dir. Without --append or --overwrite, "
        "ingest refuses a folder that holds a dataset.",
    )
    parser.add_argument(
        "--split",
        help="With --append: put every pair of the batch in this split (default: the "
        "dataset's own split policy, so a pair lands where it always would have).",
    )
    parser.add_argument(
        "--mask_mode",
        default="index",
        choices=masks.MASK_MODES,
        help="index: values/palette indices are classes; binary: 0/255 → 0/1; "
        "rgb: colours mapped through --palette.",
    )
    parser.add_argument("--palette", help="JSON file mapping mask colours to classes (rgb mode).")
    parser.add_argument(
        "--ignore_label",
        type=int,
        help="Mask value for pixels that count for no class (default 255; with --append: the "
        "dataset's).",
    )
    parser.add_argument(
        "--splits",
        default="train=0.8,val=0.1,test=0.1",
        help="Split fractions; a pair's split is fixed by a hash of its relative name. "
        "'folders' (or folders:train,val,test): the first folder under --images_dir / "
        "--masks_dir names the split, for data that comes already split.",
    )
    parser.add_argument(
        "--num_shards",
        type=int,
        default=0,
        help="Shards per split (0: from --target_shard_mb).",
    )
    parser.add_argument(
        "--target_shard_mb",
        type=float,
        default=128,
        help="Aim for shards of about this size; the count follows from the input bytes.",
    )
    parser.add_argument("--compression", default="none", choices=("none", "gzip"))
    add_argument_once(
        parser,
        "--max_pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help="Refuse images with more pixels (decompression-bomb guard).",
    )
    parser.add_argument(
        "--class_names",
        default="",
        help="Comma-separated class names, recorded in the manifest.",
    )
    parser.add_argument(
        "--stats_sample",
        type=int,
        default=2000,
        help="Take the intensity statistics (mean, std) from about this many images, a sample "
        "fixed by their names (at least 100); PNGs outside it that are stored as they are get "
        "their structure and checksums checked without decoding (decoding is most of the "
        "cost). 0: decode and count every image.",
    )
    parser.add_argument(
        "--max_rejected",
        type=float,
        default=0.2,
        help="Fail the run (exit 2, the manifest marked failed, train refuses it) when more "
        "inputs are rejected than this: a fraction of those found when at most 1 (0.2: a "
        "fifth; 1: any share), else a count (5: five rejects).",
    )
    parser.add_argument(
        "--mask_suffix",
        default="",
        help="Suffix of mask names to drop before pairing, e.g. _mask for x_mask.png.",
    )
