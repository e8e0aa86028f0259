"""Ingest benchmark: the Beam pipeline against a hand-written 2-process loop, in one run.

    .venv/bin/python bench/ingest_bench.py --pairs 2000 --memory_pairs 20000

Baseline (the stricter one of issue 11): a 2-process `multiprocessing` loop that reads both
files, decodes the image with Pillow and the mask to numpy, checks sizes and the class range,
and writes a Model Garden tf.Example holding both files' original bytes to one TFRecord per
process; it computes no statistics and assembles no shards. Both start 2 processes and both
are timed as whole commands, interpreter start-up included: `--repeats` plain runs of each,
interleaved, median. Prints images/s and the ratio pipeline / loop (target >= 0.8), then the
pipeline's peak memory (whole process tree, from separate runs that sample /proc every 0.1 s:
sampling costs CPU, so it stays out of the timed runs) on `--pairs` and on `--memory_pairs`
inputs (target: within +15 %).

Inputs are 256x256 RGB PNGs with 4-class masks from segmodel.sample_data; the larger set
repeats the smaller one's files under new names (hard links), so only pairing keys differ.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proc_stats import run_measured, run_timed  # noqa: E402

PYTHON = sys.executable


def _generate_chunk(args):
    out, start, stop, seed = args
    import numpy as np
    from PIL import Image

    from segmodel.sample_data import synthetic_pair

    rng = np.random.default_rng(seed + start)
    for i in range(start, stop):
        image, mask = synthetic_pair(rng, 256, 256, 4)
        group = f"g{i // 500:03d}"
        for kind, array in (("images", image), ("masks", mask)):
            os.makedirs(os.path.join(out, kind, group), exist_ok=True)
            Image.fromarray(array).save(os.path.join(out, kind, group, f"p{i:06d}.png"))


def generate(out: str, count: int) -> None:
    chunks = [(out, s, min(s + 250, count), 7) for s in range(0, count, 250)]
    with multiprocessing.Pool(2) as pool:
        pool.map(_generate_chunk, chunks)


def replicate(src: str, dst: str, count: int) -> None:
    """Hard-links src's pairs under new names until dst holds `count` pairs."""
    names = []
    for dirpath, _, files in os.walk(os.path.join(src, "images")):
        names += [
            os.path.relpath(os.path.join(dirpath, f), os.path.join(src, "images")) for f in files
        ]
    names.sort()
    for i in range(count):
        name = names[i % len(names)]
        new = os.path.join(f"copy{i // len(names):02d}", name)
        for kind in ("images", "masks"):
            target = os.path.join(dst, kind, new)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.link(os.path.join(src, kind, name), target)


# --- the hand-written baseline (runs in its own process: `--baseline`) ------------------------


def _baseline_worker(args):
    """The stricter baseline (issue 11): read both files, decode the image with Pillow and the
    mask to numpy, check sizes and the class range, write a Model Garden tf.Example holding both
    files' original bytes (no re-encoding) to one TFRecord per process. No statistics, no
    shards by key, no manifest: the least any ingest must do."""
    worker, pairs, out, num_classes = args
    import numpy as np
    from PIL import Image

    from pipelines import tfrecord_framing
    from segmodel import record_schema

    accepted = rejected = 0
    with open(os.path.join(out, f"records-{worker}.tfrecord"), "wb") as handle:
        for key, image_path, mask_path, _ in pairs:
            with open(image_path, "rb") as f:
                image_bytes = f.read()
            with open(mask_path, "rb") as f:
                mask_bytes = f.read()
            image = np.asarray(Image.open(io.BytesIO(image_bytes)))
            mask = np.asarray(Image.open(io.BytesIO(mask_bytes)))
            if image.shape[:2] != mask.shape or mask.max(initial=0) >= num_classes:
                rejected += 1
                continue
            record = record_schema.make_example(
                image_encoded=image_bytes,
                image_format="png",
                height=image.shape[0],
                width=image.shape[1],
                channels=1 if image.ndim == 2 else image.shape[2],
                bit_depth=8,
                mask_png=mask_bytes,
                filename=key + ".png",
                source_id=key,
            )
            tfrecord_framing.write_record(handle, record)
            accepted += 1
    return accepted, rejected


def baseline(images: str, masks: str, out: str, num_classes: int) -> None:
    from pipelines.ingest.pairing import assign_split, parse_splits

    splits = parse_splits("train=0.8,val=0.1,test=0.1")
    pairs = []
    for dirpath, _, files in os.walk(images):
        for name in files:
            path = os.path.join(dirpath, name)
            key = os.path.splitext(os.path.relpath(path, images))[0]
            pairs.append((key, path, os.path.join(masks, key + ".png"), assign_split(key, splits)))
    os.makedirs(out, exist_ok=True)
    work = [(w, pairs[w::2], out, num_classes) for w in range(2)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(_baseline_worker, work)
    print(f"baseline: accepted {sum(a for a, _ in results)}, rejected {sum(r for _, r in results)}")


# --- the comparison ---------------------------------------------------------------------------


def _pipeline_cmd(data: str, out: str) -> list[str]:
    return [
        PYTHON,
        "-m",
        "pipelines.ingest",
        f"--images_dir={data}/images",
        f"--masks_dir={data}/masks",
        f"--output_dir={out}",
        "--num_classes=4",
        "--profile=local",
        "--direct_num_workers=2",
        "--overwrite",  # every timed run replaces the last one's dataset
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--memory_pairs", type=int, default=20000, help="0 skips the memory run.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed runs of each side.")
    parser.add_argument("--workdir", default="", help="Keep data here (default: a temp dir).")
    parser.add_argument(
        "--baseline", nargs=3, metavar=("IMAGES", "MASKS", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.baseline:
        baseline(*args.baseline, num_classes=4)
        return

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    work = args.workdir or tempfile.mkdtemp(prefix="ingest-bench-")
    small = os.path.join(work, f"data{args.pairs}")
    if not os.path.isdir(small):
        print(f"generating {args.pairs} pairs of 256x256 ...", flush=True)
        generate(small, args.pairs)

    # Timing runs are plain (no memory sampling: walking /proc for every thread of every
    # process costs CPU the measured job would otherwise have), interleaved, median of N.
    commands = {
        "baseline": [
            PYTHON,
            __file__,
            "--baseline",
            f"{small}/images",
            f"{small}/masks",
            f"{work}/out-baseline",
        ],
        "pipeline": _pipeline_cmd(small, f"{work}/out-pipeline"),
    }
    times = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, cmd in commands.items():
            shutil.rmtree(os.path.join(work, f"out-{name}"), ignore_errors=True)
            times[name].append(run_timed(cmd, env=env))
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(
            f"{name:<9} {args.pairs / median:7.1f} images/s  (median of "
            + ", ".join(f"{s:.2f}" for s in seconds)
            + " s)",
            flush=True,
        )
    ratio = statistics.median(times["baseline"]) / statistics.median(times["pipeline"])
    print(f"ratio pipeline/baseline images/s: {ratio:.2f}  (target >= 0.80)")
    shutil.rmtree(os.path.join(work, "out-pipeline"), ignore_errors=True)
    _, small_peak, _ = run_measured(commands["pipeline"], env=env)

    if args.memory_pairs:
        large = os.path.join(work, f"data{args.memory_pairs}")
        if not os.path.isdir(large):
            replicate(small, large, args.memory_pairs)
        for name in ("out-large", "out-large-baseline"):
            shutil.rmtree(f"{work}/{name}", ignore_errors=True)
        base_s = run_timed(
            [
                PYTHON,
                __file__,
                "--baseline",
                f"{large}/images",
                f"{large}/masks",
                f"{work}/out-large-baseline",
            ],
            env=env,
        )
        seconds = run_timed(_pipeline_cmd(large, f"{work}/out-large"), env=env)
        shutil.rmtree(f"{work}/out-large", ignore_errors=True)
        _, peak, _ = run_measured(_pipeline_cmd(large, f"{work}/out-large"), env=env)
        growth = peak / small_peak - 1
        print(
            f"on {args.memory_pairs} pairs: baseline {args.memory_pairs / base_s:.1f} images/s, "
            f"pipeline {args.memory_pairs / seconds:.1f} images/s, ratio {base_s / seconds:.2f}"
        )
        print(
            f"pipeline peak memory {peak / 2**20:.0f} MiB on {args.memory_pairs} pairs vs "
            f"{small_peak / 2**20:.0f} MiB on {args.pairs}: {growth:+.1%}  (target <= +15 %)"
        )
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
