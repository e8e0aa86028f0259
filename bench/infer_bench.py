"""Bulk-inference benchmark: the Beam pipeline against bare model.predict, in one run.

    .venv/bin/python bench/infer_bench.py --images 1000 --memory_images 10000

On `--images` generated 256x256 RGB PNGs and the default preset's U-Net (random weights: speed
does not depend on them), each measured as its own process:
  pipeline   python -m pipelines.infer, FnApiRunner with 2 workers, end to end (read, decode,
             predict, encode, write), start-up included
  bare       model.predict on the same images already decoded in memory, same batch size: the
             ceiling (target: pipeline >= 0.8x of it)
  per-image  model.predict one image per call, like the Keras tutorial's loop (target: the
             pipeline keeps >= 1.3x of it)
Then the pipeline's peak memory (all processes) on --memory_images (the same files repeated under
new names): target flat, within +15 %.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proc_stats import run_measured  # noqa: E402

PYTHON = sys.executable


def make_model(model_dir: str) -> None:
    from segmodel import config, unet

    os.makedirs(model_dir, exist_ok=True)
    model = unet.build_unet(config.ModelConfig(), 4, 3)
    model.save(os.path.join(model_dir, "model.keras"))
    meta = {
        "model_version": "bench",
        "num_classes": 4,
        "channels": 3,
        "normalization": {"mean": [120.0] * 3, "std": [60.0] * 3},
    }
    with open(os.path.join(model_dir, "metadata.json"), "w") as f:
        json.dump(meta, f)


def make_images(folder: str, count: int) -> None:
    import numpy as np
    from PIL import Image

    from segmodel.sample_data import synthetic_pair

    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        Image.fromarray(synthetic_pair(rng, 256, 256, 4)[0]).save(f"{folder}/img_{i:05d}.png")


def replicate(src: str, dst: str, count: int) -> None:
    names = sorted(os.listdir(src))
    os.makedirs(dst, exist_ok=True)
    for i in range(count):
        os.link(os.path.join(src, names[i % len(names)]), os.path.join(dst, f"r{i:06d}.png"))


def baseline(images: str, model_dir: str, batch_size: int, per_image: int) -> None:
    """Runs in its own process; prints JSON with bare and per-image images/s."""
    import time

    import numpy as np
    from PIL import Image

    from segmodel.preprocessing import model_input_np
    from segmodel.saving import load_model

    model = load_model(model_dir)
    names = sorted(os.listdir(images))
    x = np.stack(
        [
            model_input_np(
                np.asarray(Image.open(os.path.join(images, n))), 3, 8, [120.0] * 3, [60.0] * 3
            )
            for n in names
        ]
    )
    model.predict(x[:batch_size], batch_size=batch_size, verbose=0)  # warm-up
    start = time.perf_counter()
    model.predict(x, batch_size=batch_size, verbose=0)
    bare = len(x) / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(per_image):
        model.predict(x[i : i + 1], verbose=0)
    single = per_image / (time.perf_counter() - start)
    print(json.dumps({"bare": bare, "per_image": single}))


def pipeline_cmd(images: str, model_dir: str, out: str, batch_size: int) -> list[str]:
    return [
        PYTHON,
        "-m",
        "pipelines.infer",
        f"--model_dir={model_dir}",
        f"--input_pattern={images}/*.png",
        f"--output_dir={out}",
        f"--batch_size={batch_size}",
        "--profile=local",
        "--direct_num_workers=2",
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--memory_images", type=int, default=10000, help="0 skips the memory run.")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--per_image", type=int, default=100, help="Images in the per-image loop.")
    parser.add_argument("--workdir", default="")
    parser.add_argument("--baseline", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline:
        baseline(*args.baseline, args.batch_size, args.per_image)
        return
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    work = args.workdir or tempfile.mkdtemp(prefix="infer-bench-")
    model_dir, images = f"{work}/model", f"{work}/images{args.images}"
    if not os.path.exists(f"{model_dir}/model.keras"):
        make_model(model_dir)
    if not os.path.isdir(images):
        make_images(images, args.images)

    out = subprocess.run(
        [
            PYTHON,
            __file__,
            "--baseline",
            images,
            model_dir,
            f"--batch_size={args.batch_size}",
            f"--per_image={args.per_image}",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    base = json.loads(out.stdout.strip().splitlines()[-1])
    shutil.rmtree(f"{work}/out", ignore_errors=True)
    seconds, peak, _ = run_measured(
        pipeline_cmd(images, model_dir, f"{work}/out", args.batch_size), env=env
    )
    ips = args.images / seconds
    print(
        f"bare model.predict (batch {args.batch_size}, decoded in memory): {base['bare']:7.1f} images/s"
    )
    print(f"per-image model.predict loop:                  {base['per_image']:7.1f} images/s")
    print(
        f"pipeline end to end ({args.images} images, 2 workers):     {ips:7.1f} images/s "
        f"({seconds:.1f} s, peak {peak / 2**20:.0f} MiB)"
    )
    print(
        f"ratio pipeline/bare: {ips / base['bare']:.2f} (target >= 0.80); "
        f"pipeline/per-image: {ips / base['per_image']:.2f} (target >= 1.30)"
    )
    if args.memory_images:
        large = f"{work}/images{args.memory_images}"
        if not os.path.isdir(large):
            replicate(images, large, args.memory_images)
        shutil.rmtree(f"{work}/out-large", ignore_errors=True)
        s2, peak2, _ = run_measured(
            pipeline_cmd(large, model_dir, f"{work}/out-large", args.batch_size), env=env
        )
        print(
            f"pipeline on {args.memory_images} images: {args.memory_images / s2:.1f} images/s, peak "
            f"{peak2 / 2**20:.0f} MiB vs {peak / 2**20:.0f} MiB: {peak2 / peak - 1:+.1%} (target <= +15 %)"
        )
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
