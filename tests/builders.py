"""Helpers that build small inputs for tests (imported by tests; pytest puts tests/ on the path)."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

from segmodel import sample_data


def encode(array: np.ndarray, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def write(path: str, data: bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def random_pair(seed: int, height: int = 32, width: int = 40, num_classes: int = 3):
    return sample_data.synthetic_pair(np.random.default_rng(seed), height, width, num_classes)
