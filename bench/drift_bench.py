"""Drift thresholds against simulated nights: clean batches must stay quiet, shifted ones loud.

    .venv/bin/python bench/drift_bench.py --run nuclei_blocks=/tmp/bench/w/nuclei_blocks/run-X \
        --run synthetic_small=/tmp/bench/w/synthetic_small/run-Y

For each dataset of bench/small_datasets.py (a model trained with the default plan for
--minutes, or an existing training run folder), export the model, then run scheduled
inference night after night into one output folder (`python -m pipelines.infer
--skip_existing`, in-process runner) and `segscale drift` against the training data after each:
  clean nights  --clean batches of --batch images drawn at random from the dataset's own images
  shifted       one night each: inverted, darker (x0.5), lower contrast (x0.5 around the mean),
                2x larger, another kind of file (16-bit → 8-bit, 8-bit gray → 16-bit, RGB →
                RGBA), added noise
Prints, per check, the largest value any clean night reached and the value on each shifted
night, and the verdicts: the baseline is "no alarm on any clean night". The figures are what
the default thresholds in pipelines/monitor/drift.py rest on (docs/monitoring.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from small_data_bench import ingest  # noqa: E402

CHECKS = (
    "class_shift",
    "confidence_drop",
    "intensity_shift",
    "contrast_change",
    "size_outside",
    "new_kinds",
)


def _scaled(image, factor):
    top = 65535 if image.dtype == np.uint16 else 255
    return np.clip(image.astype(np.float64) * factor, 0, top).astype(image.dtype)


def _contrast(image, factor):
    top = 65535 if image.dtype == np.uint16 else 255
    mean = image.mean()
    return np.clip(mean + (image.astype(np.float64) - mean) * factor, 0, top).astype(image.dtype)


def _noise(image):
    top = 65535 if image.dtype == np.uint16 else 255
    rng = np.random.default_rng(0)
    noisy = image.astype(np.float64) + rng.normal(0, 0.15 * top, image.shape)
    return np.clip(noisy, 0, top).astype(image.dtype)


def _other_kind(image):
    """16-bit → 8-bit; 8-bit gray → 16-bit; 8-bit RGB → RGBA (Pillow writes no 16-bit RGB)."""
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        return image.astype(np.uint16) * 257
    return np.concatenate([image[..., :3], np.full(image.shape[:2] + (1,), 255, np.uint8)], -1)


SHIFTS = {
    "inverted": lambda a: (65535 if a.dtype == np.uint16 else 255) - a,
    "darker": lambda a: _scaled(a, 0.5),
    "low_contrast": lambda a: _contrast(a, 0.5),
    "larger_2x": lambda a: np.asarray(
        Image.fromarray(a).resize((a.shape[1] * 2, a.shape[0] * 2), Image.BILINEAR)
    ),
    "other_kind": _other_kind,
    "noisy": _noise,
}


def source_images(raw: str) -> list[str]:
    return sorted(
        os.path.join(folder, name)
        for folder, _, names in os.walk(os.path.join(raw, "images"))
        for name in names
    )


def night(out_root, incoming, model_dir, name, paths, change=None) -> dict:
    from pipelines.infer import pipeline as infer
    from pipelines.monitor import drift

    folder = os.path.join(incoming, name)
    os.makedirs(folder)
    for i, path in enumerate(paths):
        image = np.asarray(Image.open(path))
        if change is not None:
            image = change(image)
        Image.fromarray(image).save(os.path.join(folder, f"{i:04d}.png"))
    infer.run(
        [
            f"--model_dir={model_dir}",
            f"--input_pattern={incoming}/**",
            f"--output_dir={out_root}",
            "--skip_existing",
            "--profile=inprocess",
        ]
    )
    args = drift.parser().parse_args(["--run", out_root])
    return drift.drift(args)


def bench_dataset(name, work, minutes, run, clean, batch) -> dict:
    from segmodel import export, train

    data = ingest(name, work)
    if run is None:
        run = os.path.join(work, name, f"run-drift-{int(time.time())}")
        train.train(data, run, "default", [f"train.max_minutes={minutes}"], verbose=0)
    scratch = tempfile.mkdtemp(prefix=f"drift-{name}-")
    model_dir = os.path.join(scratch, "model")
    export.export(run, model_dir)
    paths = source_images(os.path.join(work, name, "raw"))
    rng = np.random.default_rng(0)
    out_root, incoming = os.path.join(scratch, "pred"), os.path.join(scratch, "incoming")
    nights = {}
    for k in range(clean):
        chosen = rng.choice(len(paths), size=min(batch, len(paths)), replace=False)
        nights[f"clean{k}"] = night(
            out_root, incoming, model_dir, f"clean{k}", [paths[i] for i in chosen]
        )
    for shift, change in SHIFTS.items():
        chosen = rng.choice(len(paths), size=min(batch, len(paths)), replace=False)
        nights[shift] = night(
            out_root, incoming, model_dir, shift, [paths[i] for i in chosen], change
        )
    shutil.rmtree(scratch)
    return nights


def table(name: str, nights: dict) -> None:
    clean = {k: v for k, v in nights.items() if k.startswith("clean")}
    print(f"\n{name}: {len(clean)} clean nights, largest value (noise) on any of them;")
    print("then each shifted night's value; * = drift reported")
    header = f"{'check':<16} {'clean max':>16} " + " ".join(f"{s[:12]:>13}" for s in SHIFTS)
    print(header)
    for check in CHECKS:
        values = [
            c["checks"][check]["value"]
            for c in clean.values()
            if c["checks"][check]["value"] is not None
        ]
        worst = max(values) if values else float("nan")
        noise = max((c["checks"][check]["noise"] or 0.0) for c in clean.values())
        cells = []
        for shift in SHIFTS:
            c = nights[shift]["checks"][check]
            value = "n/a" if c["value"] is None else f"{c['value']:.3f}"
            cells.append(f"{value + ('*' if c['drift'] else ' '):>13}")
        print(f"{check:<16} {worst:>8.3f} ±{noise:<6.3f} " + " ".join(cells))
    alarms = sum(c["drift"] for c in clean.values())
    caught = sum(nights[s]["drift"] for s in SHIFTS)
    print(
        f"clean nights with an alarm: {alarms}/{len(clean)} (baseline: 0); "
        f"shifted nights caught: {caught}/{len(SHIFTS)}"
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "drift-bench"))
    p.add_argument("--datasets", default="nuclei_blocks,synthetic_small")
    p.add_argument("--minutes", type=float, default=4.0)
    p.add_argument("--run", action="append", default=[], help="NAME=training run folder")
    p.add_argument("--clean", type=int, default=8, help="Clean nights per dataset.")
    p.add_argument("--batch", type=int, default=15, help="Images per night.")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    runs = dict(item.split("=", 1) for item in args.run)
    results = {}
    for name in args.datasets.split(","):
        results[name] = bench_dataset(
            name, args.work, args.minutes, runs.get(name), args.clean, args.batch
        )
        table(name, results[name])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
