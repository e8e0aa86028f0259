"""Sliding-window inference for images larger than a tile, blended with Gaussian weights.

    python -c "from segmodel.tiling import tile_starts; print(tile_starts(2048, 512, 64))"

A 2048x2048 microscopy frame or a satellite tile is cut into overlapping tiles; each tile's
probabilities are weighted by a Gaussian that is highest at the tile centre, and the weighted
sum is divided by the summed weights, so there are no seams and every pixel's weights sum to 1.
Memory is bounded by the image (one probability map) plus one batch of tiles.
"""

from __future__ import annotations

import math

import numpy as np


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets so that tiles of `tile` px cover [0, length), neighbours overlapping by at
    least `overlap` px; the last tile is aligned to the end (never runs past the image)."""
    if tile <= 0 or not 0 <= overlap < tile:
        raise ValueError(
            f"need tile > 0 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}"
        )
    if length <= tile:
        return [0]
    stride = tile - overlap
    count = math.ceil((length - tile) / stride) + 1
    return sorted({min(i * stride, length - tile) for i in range(count)})


def blend_weights(height: int, width: int, sigma_fraction: float = 0.25) -> np.ndarray:
    """[height, width] float32 Gaussian window, peak 1 at the centre, floor 1e-3 at the corners
    (so a pixel covered by one tile's corner alone still gets a defined value)."""
    ys = np.arange(height, dtype=np.float64) - (height - 1) / 2
    xs = np.arange(width, dtype=np.float64) - (width - 1) / 2
    gy = np.exp(-0.5 * (ys / max(sigma_fraction * height, 1e-6)) ** 2)
    gx = np.exp(-0.5 * (xs / max(sigma_fraction * width, 1e-6)) ** 2)
    return np.maximum(np.outer(gy, gx), 1e-3).astype(np.float32)


def windows(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(top, left, tile_height, tile_width) of every window; tiles shrink to small images."""
    th, tw = min(tile, height), min(tile, width)
    return [
        (y, x, th, tw)
        for y in tile_starts(height, th, min(overlap, th - 1))
        for x in tile_starts(width, tw, min(overlap, tw - 1))
    ]


def predict_tiled(predict_batch, image: np.ndarray, tile: int, overlap: int, batch_size: int):
    """Probabilities [H, W, K] for one image [H, W, C], tile by tile.

    Args:
      predict_batch: [N, h, w, C] float32 → [N, h, w, K] probabilities.
    """
    height, width = image.shape[:2]
    wins = windows(height, width, tile, overlap)
    weight = blend_weights(wins[0][2], wins[0][3])
    total, weight_sum = None, np.zeros((height, width), np.float32)
    for i in range(0, len(wins), batch_size):
        chunk = wins[i : i + batch_size]
        batch = np.stack([image[y : y + h, x : x + w] for y, x, h, w in chunk])
        probs = np.asarray(predict_batch(batch), np.float32)
        if total is None:
            total = np.zeros((height, width, probs.shape[-1]), np.float32)
        for (y, x, h, w), p in zip(chunk, probs, strict=True):
            total[y : y + h, x : x + w] += p * weight[..., None]
            weight_sum[y : y + h, x : x + w] += weight
    return total / weight_sum[..., None]
