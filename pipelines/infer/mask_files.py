"""Bulk inference's mask files, per image: how a mask is encoded, what its record holds, and the
record read back from a mask already written (where it goes: pipelines/run_paths.py).

Masks are palette PNGs of class indices (viewable as they are) with the model version and mean
confidence in PNG text chunks; that is what lets --skip_existing read a finished image's record
back instead of recomputing it. Pure functions: no Beam graph here.
"""

from __future__ import annotations

import io

import numpy as np
from apache_beam.io.filesystems import FileSystems
from PIL import Image, PngImagePlugin

from pipelines.fileio import read_bytes
from pipelines.run_paths import mask_path
from segmodel.palette import palette


def encode_mask(classes: np.ndarray, num_classes: int, text: dict[str, str]) -> bytes:
    """Palette PNG of class indices, with text chunks (model version, confidence)."""
    image = Image.fromarray(classes.astype(np.uint8), mode="P")
    colours = palette(max(num_classes, 1))
    image.putpalette(colours.flatten().tolist() + [0, 0, 0] * (256 - len(colours)))
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=1)
    return buffer.getvalue()


def prediction_record(relative, classes, num_classes, confidence, version, skipped=False):
    counts = np.bincount(classes.ravel(), minlength=num_classes)[:num_classes]
    return {
        "path": relative,
        "height": int(classes.shape[0]),
        "width": int(classes.shape[1]),
        "class_fractions": [round(float(c) / classes.size, 6) for c in counts],
        "mean_confidence": round(float(confidence), 6),
        "model_version": version,
        "skipped": skipped,
    }


def existing_record(
    relative: str, output_dir: str, metadata: dict, any_version: bool = True
) -> dict | None:
    """The record of a mask already written by one of our models (by this run's model version
    only, when not `any_version`), or None: segment the image (again). The record names the
    version that made the mask. A mask without a version was not written by us: remade."""
    path = mask_path(output_dir, relative)
    try:
        if not FileSystems.exists(path):
            return None
        image = Image.open(io.BytesIO(read_bytes(path)))
        image.load()
    except Exception:  # unreadable or partial: recompute it
        return None
    text = getattr(image, "text", {}) or {}
    version = text.get("model_version")
    if not version or (version != metadata["model_version"] and not any_version):
        return None
    record = prediction_record(
        relative,
        np.asarray(image),
        metadata["num_classes"],
        float(text.get("mean_confidence", "nan")),
        version,
        skipped=True,
    )
    if "uncertain_fraction" in text:  # masks written before it was recorded have none
        record["uncertain_fraction"] = float(text["uncertain_fraction"])
    return record
