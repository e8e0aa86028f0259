"""Test-time augmentation: what it buys (test mean IoU) and what it costs (images/s), in one run.

    .venv/bin/python bench/tta_bench.py --minutes 4
    .venv/bin/python bench/tta_bench.py --run nuclei_blocks=/tmp/bench/w/nuclei_blocks/run-X ...

Quality: for each small dataset of bench/small_datasets.py (the issue 10 benchmark), train the
default plan for --minutes (or reuse a training run folder with --run NAME=DIR), then evaluate
the best checkpoint on the test split with `--tta none`, `flips` and `d4` (segmodel.evaluate,
native resolution). Baseline: the same checkpoint without TTA; prints the gain.

Cost: `python -m pipelines.infer` (FnApiRunner, 2 workers, end to end) over --images generated
256x256 gray PNGs with the first dataset's model, once per TTA mode, interleaved; prints images/s
and the ratio to no TTA.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from small_data_bench import ingest  # noqa: E402

MODES = ("none", "flips", "d4")


def trained(name: str, data: str, work: str, minutes: float, runs: dict) -> str:
    if name in runs:
        return runs[name]
    from segmodel import train

    run = os.path.join(work, name, f"run-tta-{int(time.time())}")
    train.train(data, run, "default", [f"train.max_minutes={minutes}"], verbose=0)
    return run


def quality(names, work, minutes, runs) -> dict:
    from segmodel import evaluate, saving

    results = {}
    for name in names:
        data = ingest(name, work)
        run = trained(name, data, work, minutes, runs)
        model = saving.load_model(run)
        results[name] = {"run": run}
        for mode in MODES:
            start = time.time()
            metrics = evaluate.evaluate(run, data, "test", model=model, tta=mode)
            results[name][mode] = {
                "mean_iou": metrics["mean_iou"],
                "seconds": round(time.time() - start, 1),
            }
        print(
            f"{name:<16} test mean IoU  none {results[name]['none']['mean_iou']:.4f}  "
            + "  ".join(
                f"{m} {results[name][m]['mean_iou']:.4f} "
                f"({results[name][m]['mean_iou'] - results[name]['none']['mean_iou']:+.4f})"
                for m in MODES[1:]
            ),
            flush=True,
        )
    return results


def cost(run: str, images: int, repeats: int) -> dict:
    from PIL import Image

    from segmodel import export

    scratch = tempfile.mkdtemp(prefix="tta-bench-")
    model_dir = os.path.join(scratch, "model")
    export.export(run, model_dir)
    folder = os.path.join(scratch, "images")
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    for i in range(images):
        pixels = rng.integers(0, 65535, (256, 256), dtype=np.uint16)
        Image.fromarray(pixels).save(os.path.join(folder, f"img{i:05d}.png"))
    times = {mode: [] for mode in MODES}
    for repeat in range(repeats):
        for mode in MODES:
            out = os.path.join(scratch, f"out-{mode}-{repeat}")
            start = time.time()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pipelines.infer",
                    f"--model_dir={model_dir}",
                    f"--input_pattern={folder}/*.png",
                    f"--output_dir={out}",
                    f"--tta={mode}",
                    "--direct_num_workers=2",
                ],
                check=True,
                capture_output=True,
            )
            times[mode].append(time.time() - start)
    result = {}
    for mode in MODES:
        best = float(np.median(times[mode]))
        result[mode] = {"images_per_s": round(images / best, 2), "runs_s": times[mode]}
    for mode in MODES:
        ratio = result[mode]["images_per_s"] / result["none"]["images_per_s"]
        result[mode]["ratio_to_none"] = round(ratio, 3)
        print(
            f"infer --tta {mode:<5} {result[mode]['images_per_s']:8.2f} images/s  "
            f"ratio {ratio:.2f}",
            flush=True,
        )
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "tta-bench"))
    p.add_argument("--datasets", default="nuclei_blocks,synthetic_small,thin_rare")
    p.add_argument("--minutes", type=float, default=4.0)
    p.add_argument("--run", action="append", default=[], help="NAME=training run folder")
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--json", default=None, help="Also write the results here.")
    args = p.parse_args(argv)
    runs = dict(item.split("=", 1) for item in args.run)
    names = args.datasets.split(",")
    results = {"quality": quality(names, args.work, args.minutes, runs)}
    results["cost"] = cost(results["quality"][names[0]]["run"], args.images, args.repeats)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
