"""Pictures and tables people look at: coloured masks, image | truth | prediction overlays.

    python -m segmodel.evaluate ...   # writes overlays.png through here

Pure numpy + Pillow: no plotting library needed to see what a model does.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

# Distinct colours for the first classes (class 0, usually background, is black); more classes
# get colours from a fixed random palette.
_BASE = np.array(
    [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
     [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
     [0, 128, 128]], np.uint8,
)  # fmt: skip
IGNORE_COLOUR = np.array([128, 128, 128], np.uint8)


def palette(num_classes: int) -> np.ndarray:
    """[num_classes, 3] uint8 colours."""
    extra = np.random.default_rng(0).integers(40, 256, (max(0, num_classes - len(_BASE)), 3))
    return np.concatenate([_BASE, extra.astype(np.uint8)])[:num_classes]


def colorize(mask: np.ndarray, num_classes: int, ignore_label: int = 255) -> np.ndarray:
    """Class map [H, W] → RGB [H, W, 3]; ignored pixels grey."""
    colours = palette(num_classes)
    safe = np.where(mask < num_classes, mask, 0)
    rgb = colours[safe]
    rgb[mask == ignore_label] = IGNORE_COLOUR
    return rgb


def to_display(image: np.ndarray) -> np.ndarray:
    """Any image (float, 16-bit, 1/3/4 channels) → uint8 RGB, stretched to its own range."""
    image = np.asarray(image, np.float32)
    if image.ndim == 2:
        image = image[..., None]
    image = image[..., :3]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    lo, hi = np.percentile(image, 1), np.percentile(image, 99)
    scaled = (image - lo) / max(hi - lo, 1e-6)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def blend(image_rgb: np.ndarray, mask_rgb: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    return (image_rgb * (1 - alpha) + mask_rgb * alpha).astype(np.uint8)


def overlay_grid(rows, num_classes: int, ignore_label: int, path: str, cell: int = 192) -> None:
    """Writes a PNG grid: one row per (name, image, truth, prediction), three columns.

    `truth` may be None (bulk inference has no ground truth): the column is then left blank.
    """
    header = 22
    width, height = 3 * cell, header + len(rows) * (cell + header)
    canvas = Image.new("RGB", (width, max(height, header + 1)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for col, title in enumerate(("image", "truth", "prediction")):
        draw.text((col * cell + 6, 4), title, fill=(0, 0, 0))
    for r, (name, image, truth, pred) in enumerate(rows):
        top = header + r * (cell + header)
        draw.text((6, top + 3), str(name)[:80], fill=(60, 60, 60))
        shown = to_display(image)
        tiles = [shown]
        for mask in (truth, pred):
            tiles.append(
                None if mask is None else blend(shown, colorize(mask, num_classes, ignore_label))
            )
        for col, tile in enumerate(tiles):
            if tile is None:
                continue
            h, w = tile.shape[:2]
            scale = cell / max(h, w)
            size = (max(1, int(w * scale)), max(1, int(h * scale)))
            canvas.paste(
                Image.fromarray(tile).resize(size, Image.NEAREST), (col * cell, top + header)
            )
    canvas.save(path)


def metrics_table(metrics: dict) -> str:
    """A per-class console table plus the headline numbers."""
    lines = [f"{'class':<20} {'IoU':>7} {'Dice':>7} {'pixels':>12}"]
    for name, iou in metrics["per_class_iou"].items():
        dice = metrics["per_class_dice"][name]
        fmt = lambda v: "   n/a" if v is None else f"{v:7.4f}"  # noqa: E731
        lines.append(f"{name:<20} {fmt(iou)} {fmt(dice)} {metrics['class_pixels'][name]:>12,}")
    lines.append(
        f"mean IoU {metrics['mean_iou']:.4f} | mean Dice {metrics['mean_dice']:.4f} | "
        f"pixel accuracy {metrics['pixel_accuracy']:.4f}"
    )
    return "\n".join(lines)
