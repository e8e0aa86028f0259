"""Class colours, shared by every picture of a mask: overlays, reports and bulk-inference PNGs.

python -c "from segmodel.palette import palette; print(palette(4))"
"""

from __future__ import annotations

import numpy as np

# Distinct colours for the first classes (class 0, usually background, is black); more classes
# get colours from a fixed random palette.
_BASE = np.array(
    [
        [0, 0, 0],
        [230, 25, 75],
        [60, 180, 75],
        [255, 225, 25],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [210, 245, 60],
        [250, 190, 212],
        [0, 128, 128],
    ],
    np.uint8,
)
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
