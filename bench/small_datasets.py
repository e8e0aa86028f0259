"""Five small labelled datasets, written as image/mask folders that our ingest reads.

    .venv/bin/python bench/small_datasets.py --output_dir /tmp/small --names thin_rare

Each builder writes `images/<split>/<name>.png` with its mask at the same relative path under
`masks/` (8-bit, one channel, class indices 0..N-1); the first path component names the split,
for the ingest's `--splits folders` mode. Each returns {"images_dir", "masks_dir",
"num_classes", "class_names", "splits": "folders"}.

  nuclei_blocks    the real nuclei stack (60 slices, 16-bit), split by contiguous blocks of
                   slices with 4-slice guard bands, so neighbouring slices never straddle splits.
  nuclei_tiles     the same stack split in the plane instead: every slice gives a 256x96 training
                   strip and 96x96 validation and test tiles, 64 px apart; the builder checks
                   that no labelled nucleus has pixels in two splits.
  synthetic_small  150 `sample_data.synthetic_pair`s, 4 classes, sides 96..224 px.
  thin_rare        40 gray 320x384 images: thin curves (~3-10 % of pixels) and rare small
                   blobs (well under 1 %) of overlapping brightness on an uneven, noisy background.
  tissue_slices    182 16-bit gray slices (189..233 px) through 14 generated organs, 3 classes
                   (background with clutter, a tissue wall, the region it encloses), split by
                   organ: the shape of a small medical-imaging set.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from segmodel import sample_data


def _writer(output_dir: str):
    """Returns (save(split, name, image, mask), the dict every builder returns, minus classes)."""
    images_dir = os.path.join(output_dir, "images")
    masks_dir = os.path.join(output_dir, "masks")

    def save(split: str, name: str, image: np.ndarray, mask: np.ndarray) -> None:
        for folder, array in ((images_dir, image), (masks_dir, mask.astype(np.uint8))):
            os.makedirs(os.path.join(folder, split), exist_ok=True)
            Image.fromarray(array).save(os.path.join(folder, split, f"{name}.png"))

    return save, {"images_dir": images_dir, "masks_dir": masks_dir, "splits": "folders"}


def _split_by_index(i: int, train: int, val: int) -> str:
    return "train" if i < train else "val" if i < train + val else "test"


def build_nuclei_blocks(output_dir: str) -> dict:
    """The nuclei stack: slices 0-39 train, 44-49 val, 54-59 test (40-43, 50-53 dropped)."""
    images_dir, masks_dir = sample_data.write_nuclei_dataset(output_dir, by_blocks=True)
    return {
        "images_dir": images_dir,
        "masks_dir": masks_dir,
        "splits": "folders",
        "num_classes": 2,
        "class_names": ["background", "nucleus"],
    }


# (rows, columns) of each split's tile in every 256x256 slice, 64 px apart. Where the nuclei
# lie, that keeps each in one split at most (the widest, 66 px, lies inside the training
# strip); build_nuclei_tiles checks it rather than trusting the geometry.
NUCLEI_TILES = {
    "train": (slice(0, 256), slice(0, 96)),
    "val": (slice(0, 96), slice(160, 256)),
    "test": (slice(160, 256), slice(160, 256)),
}


def build_nuclei_tiles(output_dir: str) -> dict:
    """Every slice of the nuclei stack cut into the three NUCLEI_TILES; binary masks.

    Slices split by blocks (nuclei_blocks) put the same nuclei in train and in val/test (each
    starts by slice 28, inside the training block) and leave two nuclei, mostly one, in the
    test block; tiles split the objects themselves, as spatial cross-validation does. Checked
    before anything is written: no labelled nucleus in two splits.
    """
    images, labels = sample_data.nuclei_stack()
    owner = {}
    for split, (rows, cols) in NUCLEI_TILES.items():
        for instance in np.unique(labels[:, rows, cols]).tolist():
            if instance and owner.setdefault(instance, split) != split:
                raise ValueError(f"nucleus {instance} is in {owner[instance]} and {split}")
    save, info = _writer(output_dir)
    for split, (rows, cols) in NUCLEI_TILES.items():
        for z in range(len(images)):
            tile = labels[z][rows, cols]
            image = np.ascontiguousarray(images[z][rows, cols]).astype(np.uint16)
            save(split, f"slice_{z:03d}", image, (tile > 0).astype(np.uint8))
    return {**info, "num_classes": 2, "class_names": ["background", "nucleus"]}


def build_synthetic_small(output_dir: str, seed: int = 0) -> dict:
    """150 synthetic RGB pairs, 4 classes, sides drawn from 96..224; 110/20/20 by index."""
    rng = np.random.default_rng(seed)
    save, info = _writer(output_dir)
    for i in range(150):
        height, width = (int(s) for s in rng.integers(96, 225, size=2))
        image, mask = sample_data.synthetic_pair(rng, height, width, num_classes=4)
        save(_split_by_index(i, 110, 20), f"img_{i:03d}", image, mask)
    return {**info, "num_classes": 4, "class_names": ["background", "disc", "box", "triangle"]}


def _smooth_field(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a coarse random grid upsampled bicubically."""
    coarse = rng.normal(0, 1, size=(cells, cells + 1)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC)) / 2


def thin_rare_pair(rng: np.random.Generator, height: int = 320, width: int = 384):
    """One (image uint8 [H, W], mask uint8 [H, W]): 0 background, 1 thin curve, 2 rare blob.

    Curves and blobs take their contrast from the same range, and the background carries an
    illumination ramp larger than that contrast, so only shape separates the classes and no
    single threshold finds the foreground.
    """
    mask, bright = Image.new("L", (width, height)), Image.new("L", (width, height))
    draw_mask, draw_bright = ImageDraw.Draw(mask), ImageDraw.Draw(bright)
    for _ in range(rng.integers(6, 12)):  # thin curves: random walks with a smooth heading
        y, x, heading = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(0, 2 * np.pi)
        turn, points = 0.0, [(x, y)]
        for _ in range(rng.integers(60, 160)):
            turn = 0.8 * turn + rng.normal(0, 0.08)
            heading += turn
            x, y = x + 4 * np.cos(heading), y + 4 * np.sin(heading)
            if not (0 <= x < width and 0 <= y < height):
                break
            points.append((x, y))
        line_width = int(rng.integers(2, 5))
        draw_mask.line(points, fill=1, width=line_width, joint="curve")
        draw_bright.line(points, fill=int(rng.uniform(20, 50)), width=line_width, joint="curve")
    if rng.random() < 0.5:  # rare blobs, in about half the images
        for _ in range(rng.integers(1, 6)):
            ry, rx = rng.uniform(4, 8, size=2)
            cy, cx = rng.uniform(10, height - 10), rng.uniform(10, width - 10)
            box = (cx - rx, cy - ry, cx + rx, cy + ry)
            draw_mask.ellipse(box, fill=2)
            draw_bright.ellipse(box, fill=int(rng.uniform(20, 50)))
    # Soft edges: the optics blur the structures, the labels stay crisp.
    signal = np.asarray(bright.filter(ImageFilter.GaussianBlur(0.8)), np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (xx / width - 0.5) * np.cos(angle) + (yy / height - 0.5) * np.sin(angle)
    background = rng.uniform(70, 110) + rng.uniform(60, 100) * ramp
    background += 15 * _smooth_field(rng, height, width, cells=6)
    image = background + signal + rng.normal(0, rng.uniform(6, 12), size=(height, width))
    return np.clip(image, 0, 255).astype(np.uint8), np.asarray(mask, np.uint8)


def build_thin_rare(output_dir: str, seed: int = 0, count: int = 40) -> dict:
    """`count` thin_rare_pair()s; the first 70 % train, then 15 % val and 15 % test, by index."""
    rng = np.random.default_rng(seed)
    save, info = _writer(output_dir)
    train, val = round(0.7 * count), round(0.15 * count)
    for i in range(count):
        image, mask = thin_rare_pair(rng)
        save(_split_by_index(i, train, val), f"img_{i:03d}", image, mask)
    return {**info, "num_classes": 3, "class_names": ["background", "thin", "rare"]}


def _closed_curve(rng: np.random.Generator, cy, cx, radius, bumps: int = 3):
    """Polygon points of a smooth, irregular closed curve of mean radius `radius` (y, x)."""
    theta = np.linspace(0, 2 * np.pi, 90, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 2 + bumps):
        r += rng.uniform(0, 0.12) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return [
        (cx + radius[1] * ri * np.cos(t), cy + radius[0] * ri * np.sin(t))
        for t, ri in zip(theta, r, strict=True)
    ]


def tissue_volume(rng: np.random.Generator, slices: int = 13):
    """Slices (image uint16 [H, W], mask uint8 [H, W]) through one generated organ.

    0 background with anatomy-like clutter, 1 a tissue wall, 2 the brighter region it
    encloses; all slices of a volume share one size (189..233 px a side), one scanner gain
    and one bias field, and the organ grows and shrinks from slice to slice (with 13 slices
    every slice holds some organ; longer volumes end in empty slices). Clutter blobs take
    the intensities of both classes, so shape and context, not brightness, separate them.
    """
    height, width = (int(v) for v in rng.integers(189, 234, size=2))
    gain = rng.uniform(0.6, 1.6) * 12  # 16-bit scanner units per grey level
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    bias = 1 + 0.25 * _smooth_field(rng, height, width, cells=3)
    cy, cx = rng.uniform(0.4, 0.6) * height, rng.uniform(0.4, 0.6) * width
    outer = rng.uniform(0.18, 0.3, size=2) * (height, width)
    wall = rng.uniform(0.25, 0.45)  # inner radius = (1 - wall) * outer
    clutter_shapes = [
        (
            rng.uniform(0, height),
            rng.uniform(0, width),
            rng.uniform(8, 30, size=2),
            rng.uniform(50, 180),
        )
        for _ in range(rng.integers(4, 9))
    ]
    pairs = []
    for z in range(slices):
        extent = 1 - ((z - (slices - 1) / 2) / ((slices + 1) / 2)) ** 2  # 0.27 at the ends of 13
        shape_rng = np.random.default_rng(rng.integers(1 << 31))
        mask, bright = Image.new("L", (width, height)), Image.new("L", (width, height), 40)
        draw_mask, draw_bright = ImageDraw.Draw(mask), ImageDraw.Draw(bright)
        for y, x, radius, level in clutter_shapes:  # drifts a little from slice to slice
            points = _closed_curve(shape_rng, y + 2 * z, x - z, radius)
            draw_bright.polygon(points, fill=int(level))
        if extent > 0.15:
            radius = outer * np.sqrt(extent)
            points = _closed_curve(shape_rng, cy, cx, radius)
            draw_mask.polygon(points, fill=1)
            draw_bright.polygon(points, fill=int(rng.uniform(90, 115)))
            inner = [
                (cx + (px - cx) * (1 - wall), cy + (py - cy) * (1 - wall)) for px, py in points
            ]
            draw_mask.polygon(inner, fill=2)
            draw_bright.polygon(inner, fill=int(rng.uniform(150, 175)))
        signal = np.asarray(bright.filter(ImageFilter.GaussianBlur(1.2)), np.float32)
        texture = 8 * _smooth_field(shape_rng, height, width, cells=24)
        noisy = (signal + texture) * bias + shape_rng.normal(0, 7, size=(height, width))
        image = np.clip(noisy * gain, 0, 65535).astype(np.uint16)
        pairs.append((image, np.asarray(mask, np.uint8)))
    return pairs


def build_tissue_slices(output_dir: str, seed: int = 0, volumes: int = 14) -> dict:
    """`volumes` tissue_volume()s of 13 slices; split by volume: 10 train, 2 val, 2 test."""
    rng = np.random.default_rng(seed)
    save, info = _writer(output_dir)
    for v in range(volumes):
        split = _split_by_index(v, volumes - 4, 2)
        for z, (image, mask) in enumerate(tissue_volume(rng)):
            save(split, f"vol{v:02d}_z{z:02d}", image, mask)
    return {**info, "num_classes": 3, "class_names": ["background", "wall", "lumen"]}


BUILDERS = {
    "nuclei_blocks": build_nuclei_blocks,
    "nuclei_tiles": build_nuclei_tiles,
    "synthetic_small": build_synthetic_small,
    "thin_rare": build_thin_rare,
    "tissue_slices": build_tissue_slices,
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", required=True, help="Writes one folder per dataset here.")
    parser.add_argument("--names", default=",".join(BUILDERS), help="Comma-separated builders.")
    args = parser.parse_args(argv)
    for name in args.names.split(","):
        print(name, BUILDERS[name](os.path.join(args.output_dir, name)))


if __name__ == "__main__":
    main()
