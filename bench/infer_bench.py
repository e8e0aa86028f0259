"""Bulk-inference benchmark: the Beam pipeline against the model's own limit, in one run.

    .venv/bin/python bench/infer_bench.py --images 1000 --large_images 10000

On `--images` generated 256x256 gray PNGs (`--channels 3`: RGB) and the default preset's
U-Net (random weights: speed does not depend on them; 4 classes), each measured as its own
process, in this order:

  loop       the model's limit: `predict_on_batch` over the same images already decoded and
             normalised in memory, at the same batch size, one process, TensorFlow's default
             threads. Timed over the loop alone (not its start, import, load or decode). Run
             before the pipelines and again after them; the ratios use the mean of the two.
  pipeline   `python -m pipelines.infer`, FnApiRunner with 2 worker processes, end to end
             (start, list, read, decode, predict, statistics, mask encode, atomic writes,
             summaries): on --images, then on --large_images (the same files again under new
             names, hard links).

For each pipeline run it prints two ratios to the loop's images/s:
  end to end    images / the whole command's wall time (process start included)
  steady state  images between the 10th and the 90th percentile of the masks' write times
                / the time between them (start and the last stragglers left out)
Targets (issue 24): end to end >= 0.9 at 1,000 images; steady state >= 0.95 at 10,000.
It also prints where the fixed start goes (the first mask's time after launch) and the peak
memory of all the pipeline's processes on both sizes (flat: within +15 %).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proc_stats import run_measured  # noqa: E402

PYTHON = sys.executable
NUM_CLASSES = 4
SIDE = 256


def make_model(model_dir: str, channels: int) -> None:
    from segmodel import config, unet
    from segmodel.runtime_forms import write_openvino

    os.makedirs(model_dir, exist_ok=True)
    model = unet.build_unet(config.ModelConfig(), NUM_CLASSES, channels)
    model.save(os.path.join(model_dir, "model.keras"))
    write_openvino(model, model_dir, channels)
    meta = {
        "model_version": "bench",
        "num_classes": NUM_CLASSES,
        "channels": channels,
        "normalization": {"mean": [120.0] * channels, "std": [60.0] * channels},
        # Speed only: random weights have no accuracy to gate (segscale export measures the
        # gate on a trained model's validation split; docs/benchmarks.md).
        "runtimes": {f"openvino_{p}": {"passed": True} for p in ("float32", "bfloat16")},
    }
    with open(os.path.join(model_dir, "metadata.json"), "w") as f:
        json.dump(meta, f)


def make_images(folder: str, count: int, channels: int) -> None:
    import numpy as np
    from PIL import Image

    from segmodel.sample_data import synthetic_pair

    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        image = Image.fromarray(synthetic_pair(rng, SIDE, SIDE, NUM_CLASSES)[0])
        (image if channels == 3 else image.convert("L")).save(f"{folder}/img_{i:05d}.png")


def replicate(src: str, dst: str, count: int) -> None:
    names = sorted(os.listdir(src))
    os.makedirs(dst, exist_ok=True)
    for i in range(count):
        os.link(os.path.join(src, names[i % len(names)]), os.path.join(dst, f"r{i:06d}.png"))


def loop(images: str, model_dir: str, batch_size: int, form: str = "keras") -> None:
    """Runs in its own process; prints JSON: the predict_on_batch loop's images/s (`form`
    "openvino:float32" etc.: the OpenVINO form's, on the same inputs)."""
    import time

    import numpy as np
    from PIL import Image

    from segmodel.preprocessing import model_input_np
    from segmodel.saving import load_metadata, load_model

    model, meta = load_model(model_dir), load_metadata(model_dir)
    norm = meta["normalization"]
    x = np.stack(
        [
            model_input_np(
                np.asarray(Image.open(path)), meta["channels"], 8, norm["mean"], norm["std"]
            )
            for path in sorted(glob.glob(f"{images}/*.png"))
        ]
    )
    if form != "keras":
        from segmodel.runtimes import OpenVinoModel, openvino_xml

        model = OpenVinoModel(openvino_xml(model_dir), form.split(":")[1])
    model.predict_on_batch(x[:batch_size])  # traces the predict function
    start = time.perf_counter()
    for i in range(0, len(x), batch_size):
        model.predict_on_batch(x[i : i + batch_size])
    print(json.dumps({"images_per_s": len(x) / (time.perf_counter() - start)}))


def loop_rate(images: str, model_dir: str, batch_size: int, env: dict, form="keras") -> float:
    out = subprocess.run(
        [
            PYTHON,
            __file__,
            "--loop",
            images,
            model_dir,
            f"--batch_size={batch_size}",
            f"--loop_form={form}",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"]


def form_flags(form: str) -> list[str]:
    runtime, _, precision = form.partition(":")
    return [f"--runtime={runtime}", f"--precision={precision or 'auto'}"]


def pipeline(images: str, model_dir: str, out: str, batch_size: int, env: dict, form) -> dict:
    """Runs the pipeline as a user would; returns its wall time, the steady-state rate from
    the masks' write times, the first mask's time after launch, and the peak memory."""
    import time

    shutil.rmtree(out, ignore_errors=True)
    launched = time.time()
    seconds, peak, _ = run_measured(
        [
            PYTHON,
            "-m",
            "pipelines.infer",
            f"--model_dir={model_dir}",
            f"--input_pattern={images}/*.png",
            f"--output_dir={out}",
            f"--batch_size={batch_size}",
            "--profile=local",
            "--direct_num_workers=2",
            *form_flags(form),
        ],
        env=env,
    )
    written = sorted(os.path.getmtime(p) for p in glob.glob(f"{out}/masks/*.png"))
    low, high = len(written) // 10, len(written) - 1 - len(written) // 10
    return {
        "images": len(written),
        "seconds": seconds,
        "steady_per_s": (high - low) / (written[high] - written[low]),
        "first_mask_s": written[0] - launched,
        "peak_mib": peak / 2**20,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--large_images", type=int, default=10000, help="0 skips that run.")
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3))
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--workdir", default="", help="Keep (and reuse) the images and model.")
    parser.add_argument(
        "--forms",
        default="keras",
        help="Comma-separated forms the pipeline runs with: keras, openvino:float32, "
        "openvino:bfloat16 (each against the same TF float32 loop).",
    )
    parser.add_argument("--loop", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--loop_form", default="keras", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.loop:
        loop(*args.loop, args.batch_size, args.loop_form)
        return
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    work = args.workdir or tempfile.mkdtemp(prefix="infer-bench-")
    model_dir = f"{work}/model-c{args.channels}"
    images = f"{work}/images-c{args.channels}-{args.images}"
    if not os.path.exists(f"{model_dir}/model.keras"):
        make_model(model_dir, args.channels)
    if not os.path.isdir(images):
        make_images(images, args.images, args.channels)
    runs = [(args.images, images)]
    if args.large_images:
        large = f"{images}-x{args.large_images}"
        if not os.path.isdir(large):
            replicate(images, large, args.large_images)
        runs.append((args.large_images, large))

    forms = args.forms.split(",")
    before = loop_rate(images, model_dir, args.batch_size, env)
    print(f"loop (predict_on_batch, batch {args.batch_size}, in memory): {before:.1f} images/s")
    for form in forms:
        if form != "keras":
            rate = loop_rate(images, model_dir, args.batch_size, env, form)
            print(f"loop of {form}, same inputs: {rate:.1f} images/s ({rate / before:.2f}x)")
    results = []
    for form in forms:
        for count, folder in runs:
            r = pipeline(folder, model_dir, f"{work}/out-{count}", args.batch_size, env, form)
            assert r["images"] == count, f"{r['images']} masks for {count} images"
            results.append((form, count, r))
            print(
                f"pipeline {form}, {count} images: {count / r['seconds']:.1f} images/s end to "
                f"end ({r['seconds']:.1f} s, first mask after {r['first_mask_s']:.1f} s), "
                f"{r['steady_per_s']:.1f} images/s steady, peak {r['peak_mib']:.0f} MiB",
                flush=True,
            )
    after = loop_rate(images, model_dir, args.batch_size, env)
    limit = (before + after) / 2
    print(
        f"loop again: {after:.1f} images/s; the ratios to the TF float32 loop use the mean, "
        f"{limit:.1f}"
    )
    for form, count, r in results:
        print(
            f"ratio {form} at {count} images: end to end {count / r['seconds'] / limit:.3f}, "
            f"steady state {r['steady_per_s'] / limit:.3f}"
        )
    results = [r for form, _, r in results if form == forms[0]]
    if len(results) == 2:
        growth = results[1]["peak_mib"] / results[0]["peak_mib"] - 1
        print(f"peak memory {runs[1][0]} vs {runs[0][0]} images: {growth:+.1%} (target <= +15 %)")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
