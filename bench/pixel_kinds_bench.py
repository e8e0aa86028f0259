"""Ingest throughput by pixel kind: 16-bit colour and multi-band pairs against 8-bit RGB, in
one run; and 8-bit ingest of this checkout against an earlier one (multi-band support must not
make 8-bit ingest slower).

    .venv/bin/python bench/pixel_kinds_bench.py --pairs 400 --repeats 3
    git worktree add /tmp/before 6ec68ca   # the commit before multi-band support
    .venv/bin/python bench/pixel_kinds_bench.py --pairs 400 --baseline_checkout /tmp/before

Each kind is a folder of `--pairs` 256x256 images with 3-class PNG masks: 8-bit RGB PNG (the
baseline), 16-bit RGB PNG, 4-band uint16 TIFF (R, G, B, NIR), 8-band uint16 TIFF, 13-band
float32 TIFF (Sentinel-2-like). Each ingest is a whole `python -m pipelines.ingest` command on
the local profile with 2 workers, interpreter start-up included, `--repeats` runs of each
interleaved, median. Prints pairs/s, MB/s of source files, and the ratio to 8-bit RGB.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PYTHON = sys.executable
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = ("rgb8_png", "rgb16_png", "bands4_u16_tif", "bands8_u16_tif", "bands13_f32_tif")


def _image(kind: str, rng, rgb):
    import numpy as np

    if kind == "rgb8_png":
        return rgb
    if kind == "rgb16_png":
        return rgb.astype(np.uint16) * 16 + rng.integers(0, 16, rgb.shape, dtype=np.uint16)
    bands = int(kind.split("_")[0][5:])
    if kind.endswith("f32_tif"):
        return rng.normal(0.2, 0.05, (256, 256, bands)).astype(np.float32)
    extra = rng.integers(0, 4096, (256, 256, bands - 3), dtype=np.uint16)
    return np.dstack([rgb.astype(np.uint16) * 16, extra])


def _encode(kind: str, array) -> bytes:
    import tifffile

    from pipelines.image_io import encode_png

    if kind.endswith("png"):
        return encode_png(array, compress_level=6)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, photometric="minisblack", planarconfig="contig")
    return buffer.getvalue()


def _generate(args):
    out, kind, start, stop = args
    import numpy as np

    from pipelines.image_io import encode_png
    from segmodel.sample_data import synthetic_pair

    rng = np.random.default_rng(start)
    extension = ".png" if kind.endswith("png") else ".tif"
    for i in range(start, stop):
        rgb, mask = synthetic_pair(rng, 256, 256, 3)
        for folder, data, ext in (
            ("images", _encode(kind, _image(kind, rng, rgb)), extension),
            ("masks", encode_png(mask), ".png"),
        ):
            os.makedirs(os.path.join(out, folder), exist_ok=True)
            with open(os.path.join(out, folder, f"p{i:05d}{ext}"), "wb") as f:
                f.write(data)


def generate(root: str, kind: str, pairs: int) -> str:
    out = os.path.join(root, kind)
    if not os.path.isdir(out):
        chunks = [(out, kind, s, min(s + 100, pairs)) for s in range(0, pairs, 100)]
        with multiprocessing.Pool(2) as pool:
            pool.map(_generate, chunks)
    return out


def source_mb(folder: str) -> float:
    return sum(e.stat().st_size for e in os.scandir(os.path.join(folder, "images"))) / 1e6


def ingest_seconds(folder: str, out: str, checkout: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    command = [
        PYTHON,
        "-m",
        "pipelines.ingest",
        f"--images_dir={folder}/images",
        f"--masks_dir={folder}/masks",
        f"--output_dir={out}",
        "--num_classes=3",
        "--profile=local",
        "--direct_num_workers=2",
    ]
    env = dict(os.environ, PYTHONPATH=checkout, TF_CPP_MIN_LOG_LEVEL="2")
    start = time.perf_counter()
    subprocess.run(command, cwd=checkout, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=400)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "pixel_kinds_bench"))
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument(
        "--baseline_checkout",
        default=None,
        help="An earlier checkout (git worktree) whose 8-bit ingest is timed beside this one's.",
    )
    args = p.parse_args(argv)
    kinds = args.kinds.split(",")
    folders = {k: generate(f"{args.workdir}/{args.pairs}", k, args.pairs) for k in kinds}
    runs = [(k, ROOT) for k in kinds]
    if args.baseline_checkout:
        runs.append(("rgb8_png@baseline", os.path.abspath(args.baseline_checkout)))
    times = {name: [] for name, _ in runs}
    for _ in range(args.repeats):  # interleaved, so drift of the machine hits every kind alike
        for name, checkout in runs:
            folder = folders[name.split("@")[0]]
            times[name].append(ingest_seconds(folder, f"{args.workdir}/out", checkout))
    base = statistics.median(times["rgb8_png"])
    print(f"{args.pairs} pairs of 256x256, local profile, 2 workers, median of {args.repeats}")
    print(f"{'kind':<20} {'s':>7} {'pairs/s':>8} {'MB/s':>7} {'vs rgb8_png':>11}")
    for name, _ in runs:
        seconds = statistics.median(times[name])
        mb = source_mb(folders[name.split("@")[0]])
        print(
            f"{name:<20} {seconds:7.1f} {args.pairs / seconds:8.1f} {mb / seconds:7.1f} "
            f"{base / seconds:10.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
