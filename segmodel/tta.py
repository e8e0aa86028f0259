"""Test-time augmentation: class probabilities averaged over flips (and 90° rotations).

    segscale infer ... --tta flips        # 4 views: as is, left-right, up-down, both
    segscale evaluate ... --tta d4        # 8 views: the 4 rotations, each also mirrored

Each view is predicted, mapped back to the original orientation, and the probabilities are
averaged: a cheap ensemble that smooths errors a model makes in one orientation only. It costs one
model call per view (4× or 8× the compute). Pure numpy on [..., H, W, C] arrays, so the same code
serves bulk inference (per image, any size, tiled or not) and evaluation (batches).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# (quarter turns, mirror left-right first). "flips": identity, left-right, up-down (= half turn
# of the mirror), and the half turn (= both flips).
VIEWS = {
    "none": [(0, False)],
    "flips": [(0, False), (0, True), (2, True), (2, False)],
    "d4": [(k, mirror) for k in range(4) for mirror in (False, True)],
}


def check(tta: str) -> str:
    if tta not in VIEWS:
        raise ValueError(f"unknown test-time augmentation {tta!r}; choose from {sorted(VIEWS)}")
    return tta


def to_view(x: np.ndarray, turns: int, mirror: bool) -> np.ndarray:
    """The view of x [..., H, W, C]: mirrored left-right, then turned `turns` quarter turns."""
    if mirror:
        x = x[..., :, ::-1, :]
    return np.ascontiguousarray(np.rot90(x, turns, axes=(-3, -2)))


def from_view(p: np.ndarray, turns: int, mirror: bool) -> np.ndarray:
    """Inverse of to_view, for the probabilities predicted on a view."""
    p = np.rot90(p, -turns, axes=(-3, -2))
    if mirror:
        p = p[..., :, ::-1, :]
    return p


def averaged(predict: Callable[[list[np.ndarray]], list[np.ndarray]], images, tta: str):
    """Mean probabilities over the views of `tta`. `predict` maps a list of images [H, W, C]
    (any sizes) to their probabilities [H, W, K]; it is called once per view with all images,
    so batching inside it is kept."""
    views = VIEWS[check(tta)]
    if len(views) == 1:
        return predict(list(images))
    totals = None
    for turns, mirror in views:
        outputs = predict([to_view(x, turns, mirror) for x in images])
        back = [from_view(p, turns, mirror) for p in outputs]
        totals = back if totals is None else [t + b for t, b in zip(totals, back, strict=True)]
    return [(t / len(views)).astype(np.float32) for t in totals]
