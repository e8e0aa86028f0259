"""Small-data quality: our default plan against the seed tutorial's model, same data, same budget.

    .venv/bin/python bench/small_data_bench.py --minutes 4
    .venv/bin/python bench/small_data_bench.py --minutes 10 --nnunet
    .venv/bin/python bench/small_data_bench.py --minutes 2 --datasets nuclei_blocks \
        --skip_seed --variant group=model.norm=group --variant bn99=model.norm_momentum=0.99

Datasets (bench/small_datasets.py; split by folders, so neighbouring slices never straddle
splits): nuclei_blocks (real, 16-bit, 40 train slices), nuclei_tiles (the same stack split in
the plane, so no nucleus is in two splits), synthetic_small (150 images of varied
sizes, 4 classes), thin_rare (40 large gray images, thin curves and a rare class), tissue_slices
(182 16-bit slices of 189..233 px through 14 generated organs, 3 classes, split by organ).

For each: ingest with `--splits folders`, train `--preset default` with
`train.max_minutes=--minutes`, evaluate the best checkpoint on the test split (native
resolution, segmodel.evaluate); train the seed baseline (bench/seed_baseline.py) for the same
minutes and evaluate it the same way. Prints both test mean IoUs and the difference per dataset.
`--nnunet` adds nnU-Net v2's 2D configuration at the same budget (bench/nnunet_peer.py: its own
package in a venv of its own, its own planning, training on the CPU and inference; scored with
our metric). `--variant NAME=SET,SET` adds rows of the default plan with `--set` overrides (the
normalisation measurements in docs/benchmarks.md), each also reporting how far inference-mode
masks on the training images are from training-mode masks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(name: str, work: str) -> dict:
    """The dataset's image/mask folders (built once per work folder)."""
    from small_datasets import BUILDERS

    raw = os.path.join(work, name, "raw")
    spec_file = os.path.join(work, name, "spec.json")
    if not os.path.exists(spec_file):
        spec = BUILDERS[name](raw)
        with open(spec_file, "w") as f:
            json.dump(spec, f)
    with open(spec_file) as f:
        return json.load(f)


def ingest(name: str, work: str) -> str:
    from pipelines.ingest import pipeline as ingest_pipeline

    data = os.path.join(work, name, "data")
    if not os.path.exists(os.path.join(data, "manifest.json")):
        spec = build(name, work)
        ingest_pipeline.run(
            [
                f"--images_dir={spec['images_dir']}",
                f"--masks_dir={spec['masks_dir']}",
                f"--output_dir={data}",
                f"--num_classes={spec['num_classes']}",
                f"--class_names={','.join(spec['class_names'])}",
                "--splits=folders",
                "--profile=inprocess",
            ]
        )
    return data


def mode_agreement(model, data: str, run: str, batches: int = 4) -> float:
    """Share of pixels whose class is the same in inference and training mode, on training
    batches like the ones the run trained on (training mode uses the batch's own statistics).

    1.0 for a model without running statistics; BatchNorm whose moving averages have not
    settled shows up here as much less.
    """
    import numpy as np

    from segmodel import config
    from segmodel.input_pipeline import make_dataset
    from segmodel.manifest import load_manifest
    from segmodel.unet import class_probabilities

    manifest = load_manifest(data)
    with open(os.path.join(run, "config.json")) as f:
        cfg = config.from_dict(json.load(f))
    same = total = 0
    ds = make_dataset(data, manifest, "train", cfg.data, training=True, seed=7)
    for image, mask in ds.take(batches):
        infer = np.asarray(class_probabilities(model(image, training=False))).argmax(-1)
        trained = np.asarray(class_probabilities(model(image, training=True))).argmax(-1)
        valid = np.asarray(mask) != manifest["ignore_label"]
        same += int((infer == trained)[valid].sum())
        total += int(valid.sum())
    return same / max(total, 1)


def ours(data: str, run: str, minutes: float, overrides: list[str]) -> dict:
    from segmodel import evaluate, saving, train

    start = time.time()
    state = train.train(data, run, "default", [f"train.max_minutes={minutes}", *overrides])
    seconds = time.time() - start
    model = saving.load_model(os.path.join(run, "best.keras"))
    test = evaluate.evaluate(None, data, "test", model=model)
    return {
        "mean_iou": test["mean_iou"],
        "per_class_iou": test["per_class_iou"],
        "val_best": state["best"],
        "steps": state["optimizer_iterations"],
        "seconds": seconds,
        "mode_agreement": mode_agreement(model, data, run),
    }


def seed(data: str, minutes: float) -> dict:
    import seed_baseline

    result = seed_baseline.train_and_evaluate(data, minutes)
    return {
        "mean_iou": result["mean_iou"],
        "per_class_iou": result["per_class_iou"],
        "epochs": result["epochs_done"],
        "seconds": result["train_seconds"],
    }


def nnunet(name: str, work: str, minutes: float, venv: str) -> dict:
    import nnunet_peer
    from small_datasets import BUILDERS

    dataset_id = 501 + list(BUILDERS).index(name)
    venv = venv or nnunet_peer.DEFAULT_VENV
    return nnunet_peer.run(name, build(name, work), minutes, work, dataset_id, venv)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=4, help="Training budget per model.")
    parser.add_argument(
        "--datasets", default="nuclei_blocks,nuclei_tiles,synthetic_small,thin_rare,tissue_slices"
    )
    parser.add_argument("--workdir", default="", help="Reuse ingested data (default: temp).")
    parser.add_argument("--skip_seed", action="store_true", help="Only our rows.")
    parser.add_argument("--skip_default", action="store_true", help="No plain default row.")
    parser.add_argument(
        "--nnunet", action="store_true", help="Add nnU-Net v2 2D (bench/nnunet_peer.py) rows."
    )
    parser.add_argument("--nnunet_venv", default="", help="Its virtual environment (created).")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=SET,SET")
    parser.add_argument("--json", default="", help="Also write the results here.")
    args = parser.parse_args(argv)
    work = args.workdir or tempfile.mkdtemp(prefix="small-data-bench-")
    variants = [] if args.skip_default else [("default", [])]
    for text in args.variant:
        name, _, sets = text.partition("=")
        variants.append((name, [s for s in sets.split(",") if s]))
    results = {}
    for name in args.datasets.split(","):
        data = ingest(name, work)
        rows = results[name] = {}
        for variant, overrides in variants:
            run = os.path.join(work, name, f"run-{variant}-{int(time.time())}")
            print(f"\n=== {name}: {variant} {overrides or ''}", flush=True)
            rows[variant] = ours(data, run, args.minutes, overrides)
        if args.nnunet:
            print(f"\n=== {name}: nnU-Net", flush=True)
            rows["nnunet"] = nnunet(name, work, args.minutes, args.nnunet_venv)
        if not args.skip_seed:
            print(f"\n=== {name}: seed baseline", flush=True)
            rows["seed"] = seed(data, args.minutes)
        if args.json:  # after every dataset: a long run that stops keeps what it measured
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
    print(f"\nTest mean IoU, {args.minutes:g} min of training per model (work: {work})")
    print(
        f"{'dataset':<16} {'model':<10} {'test mIoU':>9} {'vs seed':>8} {'steps/epochs':>12} "
        f"{'seconds':>7} {'infer=train px':>14}"
    )
    for name, rows in results.items():
        base = rows.get("seed", {}).get("mean_iou")
        for model, r in rows.items():
            delta = f"{r['mean_iou'] - base:+.3f}" if base is not None and model != "seed" else ""
            count = r.get("steps", r.get("epochs"))
            agree = f"{r['mode_agreement']:.3f}" if "mode_agreement" in r else ""
            print(
                f"{name:<16} {model:<10} {r['mean_iou']:>9.4f} {delta:>8} {count:>12} "
                f"{r['seconds']:>7.0f} {agree:>14}"
            )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
