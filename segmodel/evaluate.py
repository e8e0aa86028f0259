"""Evaluate a model on a split at native resolution: metrics.json, a console table, overlays.png.

    python -m segmodel.evaluate --model out/run/best.keras --data_dir out/data --split test \
        --output_dir out/eval

`--model` takes a .keras file, a run folder (uses best.keras) or an export folder (model.keras).
Metrics come from one confusion matrix over every non-ignored pixel of the split: mean IoU,
per-class IoU, Dice, pixel accuracy, the matrix itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import keras
import numpy as np

from segmodel.config import DataConfig
from segmodel.input_pipeline import make_dataset
from segmodel.manifest import load_manifest
from segmodel.metrics import summarize
from segmodel.preprocessing import normalization_from_manifest
from segmodel.report import metrics_table, overlay_grid
from segmodel.unet import class_probabilities


def resolve_model_path(path: str) -> str:
    if os.path.isdir(path):
        for name in ("model.keras", "best.keras", "last.keras"):
            if os.path.exists(os.path.join(path, name)):
                return os.path.join(path, name)
        raise FileNotFoundError(f"{path}: no model.keras, best.keras or last.keras inside")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such model file")
    return path


def load_model(path: str, unsafe: bool = False) -> keras.Model:
    """Loads a .keras model; safe mode refuses Lambda layers and other embedded code."""
    from segmodel import losses, metrics, unet  # noqa: F401  registers the custom objects

    path = resolve_model_path(path)
    try:
        return keras.models.load_model(path, compile=False, safe_mode=not unsafe)
    except Exception as e:
        raise ValueError(f"{path}: cannot load model: {e}") from None


def evaluate(model_path, data_dir, split="test", output_dir=None, max_overlays=8, model=None):
    """Returns the metrics dict; writes metrics.json and overlays.png when output_dir is set."""
    manifest = load_manifest(data_dir)
    model = model or load_model(model_path)
    num_classes, ignore = manifest["num_classes"], manifest["ignore_label"]
    mean, std = normalization_from_manifest(manifest)
    ds = make_dataset(data_dir, manifest, split, DataConfig(), training=False)
    cm = np.zeros((num_classes, num_classes), np.int64)
    rows, count = [], 0
    for image, mask in ds:
        probs = keras.ops.convert_to_numpy(class_probabilities(model(image, training=False)))
        pred = probs[0].argmax(-1)
        truth = mask[0].numpy()
        valid = truth != ignore
        cm += np.bincount(
            truth[valid] * num_classes + pred[valid], minlength=num_classes**2
        ).reshape(num_classes, num_classes)
        if len(rows) < max_overlays:
            original = image[0].numpy() * np.asarray(std) + np.asarray(mean)
            rows.append((f"#{count}", original, truth, pred))
        count += 1
    if count == 0:
        raise ValueError(f"split {split!r} of {data_dir} has no records")
    metrics = summarize(cm, manifest.get("class_names"))
    metrics.update(split=split, images=count, model=str(model_path), data_dir=data_dir)
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=2)
        overlay_grid(rows, num_classes, ignore, os.path.join(output_dir, "overlays.png"))
    return metrics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m segmodel.evaluate",
        description=__doc__.split("\n\n")[0],
        epilog="Example: python -m segmodel.evaluate --model out/run --data_dir out/data "
        "--split val --output_dir out/eval",
    )
    parser.add_argument("--model", required=True, help=".keras file, run folder or export folder.")
    parser.add_argument("--data_dir", required=True, help="Ingest output (manifest.json + shards).")
    parser.add_argument("--split", default="test", help="Split to evaluate (default: test).")
    parser.add_argument("--output_dir", required=True, help="Writes metrics.json, overlays.png.")
    parser.add_argument("--max_overlays", type=int, default=8, help="Rows in overlays.png.")
    args = parser.parse_args(argv)
    try:
        metrics = evaluate(
            args.model, args.data_dir, args.split, args.output_dir, args.max_overlays
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.split}: {metrics['images']} images")
    print(metrics_table(metrics))
    print(f"Wrote {args.output_dir}/metrics.json and overlays.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
