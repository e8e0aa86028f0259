"""The bundled demo: generate a sample dataset, then run the ingest pipeline on it.

    ./scripts/demo.sh                       # or: python -m pipelines.demo --output_dir out/demo

Writes out/demo/sample/{images,masks} (synthetic textured shapes, 4 classes, varied sizes, with a
few deliberately broken files so the rejects path shows up) and out/demo/data (shards, manifest,
rejects). Later stages (train, evaluate, infer) will extend this path.
"""

from __future__ import annotations

import argparse
import os
import sys

from pipelines import ingest
from segmodel import sample_data


def _add_broken_inputs(images_dir: str, masks_dir: str) -> None:
    """A few inputs of the kinds real folders contain, to show they are reported, not lost."""
    with open(os.path.join(images_dir, "broken.png"), "wb") as f:
        f.write(b"not really a png")
    with open(os.path.join(masks_dir, "broken.png"), "wb") as f:
        f.write(b"not really a png either")
    with open(os.path.join(masks_dir, "orphan_mask.png"), "wb") as f:
        with open(os.path.join(masks_dir, "group_000", "img_00000.png"), "rb") as src:
            f.write(src.read())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--output_dir", default="out/demo", help="Where everything is written.")
    parser.add_argument("--count", type=int, default=300, help="Sample pairs to generate.")
    parser.add_argument(
        "--workers", type=int, default=2, help="Beam worker processes for the local runner."
    )
    args = parser.parse_args(argv)

    sample = os.path.join(args.output_dir, "sample")
    if not os.path.isdir(os.path.join(sample, "images")):
        print(f"[1/2] Generating {args.count} sample pairs in {sample} ...", flush=True)
        images, masks = sample_data.write_dataset(
            sample, args.count, num_classes=4, size=(128, 128), vary_size=True, seed=0
        )
        _add_broken_inputs(images, masks)
    else:
        print(f"[1/2] Reusing the sample in {sample}", flush=True)
    print("[2/2] Ingest: pairing, validating, writing TFRecord shards ...", flush=True)
    ingest.run(
        [
            f"--images_dir={sample}/images",
            f"--masks_dir={sample}/masks",
            f"--output_dir={args.output_dir}/data",
            "--num_classes=4",
            "--class_names=background,disc,box,triangle",
            "--profile=local",
            f"--direct_num_workers={args.workers}",
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
