"""The one preprocessing function: training, evaluation, export and bulk inference all call it.

    python -c "from segmodel.preprocessing import normalize"

Images arrive as float32 in their own value range (0..255, or 0..65535 for 16-bit) and leave
standardised with the manifest's per-channel mean and std. Keeping this in one place is what
makes train/serve parity hold: the exported serving function and the Beam inference pipeline
import this very function.
"""

from __future__ import annotations

import numpy as np


def normalization_from_manifest(manifest: dict) -> tuple[list[float], list[float]]:
    """(mean, std) per channel from a manifest; std floored so flat channels stay finite."""
    stats = manifest["stats"]
    if not stats.get("mean"):
        raise ValueError("manifest has no image statistics (no accepted records?)")
    return list(stats["mean"]), [max(s, 1e-3) for s in stats["std"]]


def normalize(image, mean, std):
    """(image - mean) / std, per channel. Works on tf tensors, Keras tensors and numpy arrays."""
    mean = np.asarray(mean, np.float32)
    std = np.asarray(std, np.float32)
    return (image - mean) / std
