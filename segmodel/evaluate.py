"""Evaluate a model on a split at native resolution: metrics.json, a console table, overlays.png.

    python -m segmodel.evaluate --model out/run/best.keras --data_dir out/data --split test \
        --output_dir out/eval

`--model` takes a .keras file, a run folder (uses best.keras) or an export folder (model.keras).
Metrics come from one confusion matrix over every non-ignored pixel of the split: mean IoU,
per-class IoU, Dice, pixel accuracy, the matrix itself.
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and {"-h", "--help"} & set(sys.argv[1:]):
    # --help before TensorFlow loads (seconds): the flags live in segmodel/commands.py.
    from segmodel.commands import evaluate_parser

    evaluate_parser().print_help()
    sys.exit(0)

import json
import os
import sys

import keras
import numpy as np

from segmodel import commands, files
from segmodel import tta as tta_lib
from segmodel.config import DataConfig
from segmodel.contract import ModelContract
from segmodel.input_pipeline import make_dataset
from segmodel.manifest import load_manifest
from segmodel.metrics import confusion_matrix, summarize
from segmodel.preprocessing import normalization_from_manifest
from segmodel.report import metrics_table, overlay_grid
from segmodel.saving import load_model, resolve_model_path
from segmodel.unet import class_probabilities


def validation_of(model_path: str) -> dict | None:
    """What training measured on the validation split for this model, if it can be found:
    {"best": score of the checkpoint, "epoch", "last": score after the last epoch, "monitor"}.

    Reads state.json of a run folder (for the folder, best.keras or last.keras in it) or
    metadata.json of an export folder; None for a bare model file from elsewhere.
    """
    folder = model_path if os.path.isdir(model_path) else os.path.dirname(model_path)
    name = os.path.basename(resolve_model_path(model_path))
    try:
        if os.path.exists(os.path.join(folder, "state.json")):
            with open(os.path.join(folder, "state.json")) as f:
                state = json.load(f)
            monitor, history = state.get("monitor"), state.get("history") or []
            if name == "last.keras" or name.startswith("epoch-"):
                row = history[-1] if history else {}
                return {
                    "monitor": monitor,
                    "best": row.get(monitor),
                    "epoch": row.get("epoch"),
                    "last": row.get(monitor),
                }
            return {
                "monitor": monitor,
                "best": state.get("best"),
                "epoch": state.get("best_epoch"),
                "last": history[-1].get(monitor) if history else None,
            }
        if os.path.exists(os.path.join(folder, "metadata.json")):
            with open(os.path.join(folder, "metadata.json")) as f:
                v = json.load(f).get("validation") or {}
            return {
                "monitor": v.get("monitor"),
                "best": v.get("best"),
                "epoch": v.get("epoch"),
                "last": None,
            }
    except (OSError, ValueError):
        return None
    return None


def gap_line(metrics: dict, validation: dict | None) -> str:
    """One line: the checkpoint's validation score, this split's score and the difference."""
    if not validation or validation.get("best") is None or not validation.get("monitor"):
        return f"{metrics['split']} mean IoU {metrics['mean_iou']:.4f} (no validation record)"
    line = (
        f"validation mean IoU {validation['best']:.4f} (epoch {validation['epoch']}) -> "
        f"{metrics['split']} {metrics['mean_iou']:.4f}: gap {metrics['mean_iou'] - validation['best']:+.4f}"
    )
    if validation.get("last") is not None and validation["last"] != validation["best"]:
        line += f"; last validation {validation['last']:.4f}"
    return line


def as_model_input(manifest: dict, metadata: dict | None) -> dict:
    """The manifest with the model's input contract in place of the dataset's statistics."""
    if metadata is None:
        return manifest
    inputs = ModelContract.from_metadata(metadata).inputs
    stats = {
        **manifest["stats"],
        "mean": list(inputs.mean),
        "std": list(inputs.std),
        "channels": inputs.channels,
        "bands": inputs.bands,
        "bit_depths": {str(inputs.bit_depth): 1},
    }
    return {**manifest, "stats": stats}


def evaluate(
    model_path,
    data_dir,
    split="test",
    output_dir=None,
    max_overlays=8,
    model=None,
    tta="none",
    per_image=None,
    model_inputs=None,
):
    """Returns the metrics dict; writes metrics.json and overlays.png when output_dir is set.
    `tta` ("flips", "d4") averages the probabilities over flipped/rotated views. `per_image`:
    a list that receives each image's confusion matrix, in the split's order (for paired
    comparisons of two models, segmodel/promote.py). `model_inputs`: an export's metadata, whose
    channels, bit depth and normalisation then prepare the images (as bulk inference does)
    instead of the dataset's own statistics."""
    manifest = as_model_input(load_manifest(data_dir), model_inputs)
    model = model or load_model(model_path)
    num_classes, ignore = manifest["num_classes"], manifest["ignore_label"]
    mean, std = normalization_from_manifest(manifest)
    ds = make_dataset(data_dir, manifest, split, DataConfig(), training=False)
    cm = np.zeros((num_classes, num_classes), np.int64)
    rows, count = [], 0

    def predict(views):
        batch = np.stack(views)
        return list(keras.ops.convert_to_numpy(class_probabilities(model(batch, training=False))))

    for image, mask in ds:
        probs = np.stack(tta_lib.averaged(predict, list(image.numpy()), tta))
        pred = probs[0].argmax(-1)
        truth = mask[0].numpy()
        image_cm = keras.ops.convert_to_numpy(confusion_matrix(truth, pred, num_classes, ignore))
        cm += image_cm
        if per_image is not None:
            per_image.append(np.asarray(image_cm, np.int64))
        if len(rows) < max_overlays:
            original = image[0].numpy() * np.asarray(std) + np.asarray(mean)
            rows.append((f"#{count}", original, truth, pred))
        count += 1
    if count == 0:
        raise ValueError(f"split {split!r} of {data_dir} has no records")
    metrics = summarize(cm, manifest.get("class_names"))
    metrics.update(split=split, images=count, model=str(model_path), data_dir=data_dir, tta=tta)
    if output_dir:
        files.write_atomically(
            files.join(output_dir, "metrics.json"), json.dumps(metrics, indent=2)
        )
        overlay_grid(rows, num_classes, ignore, files.join(output_dir, "overlays.png"))
    return metrics


def main(argv=None) -> int:
    args = commands.evaluate_parser().parse_args(argv)
    try:
        metrics = evaluate(
            args.model, args.data_dir, args.split, args.output_dir, args.max_overlays, tta=args.tta
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.split}: {metrics['images']} images")
    print(metrics_table(metrics))
    print(gap_line(metrics, validation_of(args.model)))
    print(f"Wrote {args.output_dir}/metrics.json and overlays.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
