"""The infer pipeline's own flags, defined without importing Beam (fast --help).

python -m pipelines.infer --help
"""

from __future__ import annotations

from pipelines.image_io import DEFAULT_MAX_PIXELS
from runners.flags import add_argument_once, own_flags_parser

PROG = "python -m pipelines.infer"
TILE_SIZE, TILE_OVERLAP = 512, 64  # also what a run recorded before its tiling was recorded
DESCRIPTION = "Bulk inference: segment every image matching a pattern (or in our shards) with an exported model."
EXAMPLE = "segscale infer --model_dir out/model --input_pattern 'photos/**/*.png' --output_dir out/pred --skip_existing --direct_num_workers 2"


def help_parser():
    """The full parser (our flags and --profile), for --help and early flag errors."""
    return own_flags_parser(add_arguments, prog=PROG, description=DESCRIPTION, example=EXAMPLE)


def add_arguments(parser) -> None:
    """Adds the flags to an argparse parser (Beam's PipelineOptions calls this too)."""
    parser.add_argument("--model_dir", help="Export folder (model.keras + metadata.json).")
    parser.add_argument(
        "--input_pattern", help="Images to segment, e.g. 'DIR/**/*.jpg' (local, gs://, ...)."
    )
    parser.add_argument(
        "--input_tfrecords", help="Or: our TFRecord shards, e.g. 'out/data/test-*.tfrecord'."
    )
    add_argument_once(parser, "--output_dir", help="Where masks, predictions and the summary go.")
    parser.add_argument(
        "--batch_size", type=int, default=8, help="Max images (or tiles) per model call."
    )
    parser.add_argument(
        "--min_batch_size",
        type=int,
        default=0,
        help="Smallest batch Beam forms (0: --batch_size). Beam's BatchElements otherwise "
        "starts at this size and ramps up, which wastes the first minutes of a batch job.",
    )
    parser.add_argument(
        "--tile_size", type=int, default=TILE_SIZE, help="Larger images are segmented tile by tile."
    )
    parser.add_argument(
        "--tile_overlap", type=int, default=TILE_OVERLAP, help="Overlap between tiles (px)."
    )
    parser.add_argument(
        "--tta",
        choices=("none", "flips", "d4"),
        default="none",
        help="Test-time augmentation: average the probabilities over 4 flips or the 8 "
        "flips/rotations (4x or 8x the compute; see docs/benchmarks.md for the gain).",
    )
    parser.add_argument(
        "--runtime",
        choices=("auto", "keras", "openvino"),
        default="auto",
        help="What computes the masks: the export's OpenVINO form (no TensorFlow in the worker) "
        "or the Keras model; auto: the fastest form that passed the export's gate "
        "(segmodel/runtime_forms.py) on each worker's CPU.",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "float32", "bfloat16"),
        default="auto",
        help="auto: bfloat16 where the CPU has bf16 units and the export's gate passed it "
        "(mean IoU within 0.005 of float32, >= 99.5%% pixels equal), else float32. A forced "
        "precision that failed the gate runs, and the run says what it loses.",
    )
    parser.add_argument(
        "--save_probabilities", action="store_true", help="Also write per-class probabilities."
    )
    parser.add_argument(
        "--skip_existing",
        action="store_true",
        help="Skip images that already have a mask written by a model (any version; its "
        "record keeps the version that made it).",
    )
    parser.add_argument(
        "--resegment_older_than",
        choices=("current",),
        help="With --skip_existing: segment again the images whose mask another model version "
        "made ('current': every version but this run's model), e.g. after `segscale promote`.",
    )
    add_argument_once(
        parser,
        "--max_pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help="Refuse larger images.",
    )
    parser.add_argument(
        "--unsafe_model",
        action="store_true",
        help="Allow models holding Lambda layers or other code (only for models you trust).",
    )
