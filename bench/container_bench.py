"""Worker containers against the alternatives, on the same inputs in one run (S3 emulator).

    .venv/bin/python bench/container_bench.py --pairs 200

Needs a Docker engine (scripts/docker_engine.sh) and root for the first image build.
  start-up  launch to the first element processed by a worker: the segscale worker image
            (`--profile container`) against the install-at-start path a user would otherwise
            take (`--setup_file ./setup.py` on an image with Beam only, whose workers
            pip-install segscale and its stack when they start; from wheels inside the image,
            so offline and a lower bound: a real worker downloads them too)
  totals    ingest of --pairs 256x256 pairs and inference on the same images with the
            default U-Net (random weights), 2 workers: 2 containers against the local profile
            (2 worker processes), start-up included, every input and output on the emulator
Prints each figure and the ratios.
"""

from __future__ import annotations

import argparse
import glob
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "bench"), os.path.join(ROOT, "tests")]
BASELINE_IMAGE = "localhost/segscale-bench-setup-file:latest"
PYTHON = sys.executable


def build_images() -> str:
    """The worker image (build.sh) and the install-at-start baseline; returns the former."""
    image = subprocess.run(
        [shutil.which("bash"), os.path.join(ROOT, "runners", "container", "build.sh")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[-1]
    cache = os.path.join(
        os.environ.get("SEGSCALE_CACHE", os.path.expanduser("~/.cache/segscale")), "container"
    )
    (deps,) = glob.glob(os.path.join(cache, "deps-*"))
    (boot,) = glob.glob(os.path.join(cache, "boot-*"))
    with tempfile.TemporaryDirectory() as context:
        shutil.copytree(deps, os.path.join(context, "deps"), copy_function=os.link)
        shutil.copy(boot, os.path.join(context, "boot"))
        dockerfile = os.path.join(ROOT, "bench", "container", "setup_file.Dockerfile")
        subprocess.run(
            [
                shutil.which("docker"),
                "build",
                "--quiet",
                "-f",
                dockerfile,
                "-t",
                BASELINE_IMAGE,
                context,
            ],
            check=True,
            capture_output=True,
            env=dict(os.environ, DOCKER_BUILDKIT="0"),
        )
    return image


def stamp(_):
    return repr(time.time())  # the worker's clock: the host's (containers share its kernel)


def startup_child(argv: list[str]) -> None:
    """A pipeline whose only work is to note when a worker processed its first element."""
    import apache_beam as beam

    from runners import launch

    *flags, out = argv
    options = launch.pipeline_options(flags)
    launch.execute(
        options,
        lambda p: (
            p
            | beam.Create(["a", "b"])
            | beam.Map(stamp)
            | beam.io.WriteToText(out, num_shards=1, shard_name_template="")
        ),
    )


def timed(command: list[str], **kwargs) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2, help="start-up runs per path")
    args = parser.parse_args()

    import logging

    import numpy as np
    from infer_bench import make_model
    from object_store import flags, read, s3_server, upload
    from PIL import Image

    from segmodel.sample_data import synthetic_pair

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the emulator's request log
    image = build_images()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    with tempfile.TemporaryDirectory() as work, s3_server() as (url, client):
        rng = np.random.default_rng(0)
        for i in range(args.pairs):
            img, mask = synthetic_pair(rng, 256, 256, 4)
            for key, array in (
                (f"raw/images/p{i:05d}.png", img),
                (f"raw/masks/p{i:05d}.png", mask),
            ):
                buf = io.BytesIO()
                Image.fromarray(array).save(buf, format="PNG")
                client.put_object(Bucket="seg", Key=key, Body=buf.getvalue())
        make_model(os.path.join(work, "model"), channels=3)
        upload(client, os.path.join(work, "model"), "model")
        s3 = flags(url)

        print(f"start-up: launch to the first element processed ({args.repeats} runs each)")
        startup = {}
        paths = {
            "image": ["--profile=container", f"--environment_config={image}"],
            "setup_file": [
                "--profile=container",
                f"--environment_config={BASELINE_IMAGE}",
                f"--setup_file={os.path.join(ROOT, 'setup.py')}",
            ],
        }
        for name, extra in paths.items():
            for run in range(args.repeats):
                out = f"s3://seg/stamps/{name}-{run}.txt"
                launched = time.time()
                timed(
                    [PYTHON, __file__, "--startup_child", *extra, *s3, out],
                    env=env,
                    cwd=ROOT,
                    timeout=1200,
                )
                first = min(float(t) for t in read(client, out[len("s3://seg/") :]).split())
                startup.setdefault(name, []).append(first - launched)
            print(f"  {name:11s} " + "  ".join(f"{s:6.1f} s" for s in startup[name]))
        best = {name: min(times) for name, times in startup.items()}
        print(f"  ratio setup_file / image: {best['setup_file'] / best['image']:.1f}x (best runs)")

        print(f"totals: {args.pairs} pairs, 2 workers, every input and output on the emulator")
        totals = {}
        for profile in ("local", "container"):
            extra = ["--direct_num_workers=2", f"--profile={profile}"]
            if profile == "container":
                extra.append(f"--environment_config={image}")
            ingest = timed(
                [PYTHON, "-m", "pipelines.ingest", "--images_dir=s3://seg/raw/images"]
                + ["--masks_dir=s3://seg/raw/masks", f"--output_dir=s3://seg/{profile}/data"]
                + ["--num_classes=4", *s3, *extra],
                env=env,
                timeout=1800,
            )
            infer = timed(
                [PYTHON, "-m", "pipelines.infer", "--model_dir=s3://seg/model"]
                + [
                    "--input_pattern=s3://seg/raw/images/*.png",
                    f"--output_dir=s3://seg/{profile}/pred",
                ]
                + [*s3, *extra],
                env=env,
                timeout=1800,
            )
            totals[profile] = (ingest, infer)
            print(f"  {profile:9s} ingest {ingest:6.1f} s   inference {infer:6.1f} s")
        for i, what in enumerate(("ingest", "inference")):
            ratio = totals["container"][i] / totals["local"][i]
            print(f"  ratio container / local, {what}: {ratio:.2f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--startup_child"]:
        sys.path.insert(0, ROOT)
        startup_child(sys.argv[2:])
    else:
        main()
