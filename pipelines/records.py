"""One pair of files → one validated tf.train.Example plus its statistics (pure, no Beam).

    python -m pipelines.ingest --images_dir data/images --masks_dir data/masks ...

Each pair is decoded exactly once: the same arrays feed validation, statistics and (when the
source is not PNG/JPEG) the lossless re-encode.
"""

from __future__ import annotations

import dataclasses
import posixpath

import numpy as np

from pipelines import masks
from pipelines.pairing import Pair, Reject
from segmodel import features
from segmodel.image_io import ImageError, encode_png, read_image, read_label_image


@dataclasses.dataclass(frozen=True)
class RecordSpec:
    """What a valid pair must satisfy (from the ingest flags)."""

    num_classes: int
    mask_mode: str = "index"
    ignore_label: int = 255
    max_pixels: int = 100_000_000
    palette: dict[int, int] | None = None


@dataclasses.dataclass(frozen=True)
class PairStats:
    """What the manifest needs to know about one accepted pair.

    Pixel sums are over the image seen as RGB (gray replicated, alpha dropped), kept as exact
    Python ints so that millions of images add up without rounding.
    """

    split: str
    height: int
    width: int
    channels: int
    bit_depth: int
    pixel_sum: tuple[int, int, int]
    pixel_sumsq: tuple[int, int, int]
    class_pixels: tuple[int, ...]
    ignored_pixels: int
    record_bytes: int


def _rgb_sums(array: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    flat = array.reshape(array.shape[0] * array.shape[1], -1)[:, :3].astype(np.int64)
    sums = flat.sum(axis=0)
    sumsq = np.einsum("ij,ij->j", flat, flat)
    if flat.shape[1] == 1:
        sums, sumsq = np.repeat(sums, 3), np.repeat(sumsq, 3)
    return tuple(int(v) for v in sums), tuple(int(v) for v in sumsq)


def _decode(role: str, data: bytes, pair: Pair, spec: RecordSpec):
    try:
        if role == "image":
            return read_image(data, max_pixels=spec.max_pixels)
        return read_label_image(data, max_pixels=spec.max_pixels)
    except ImageError as e:
        raise _RejectError(f"{role}_{e.reason}", f"{role}: {e}") from None


class _RejectError(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def encode_pair(
    pair: Pair, image_bytes: bytes, mask_bytes: bytes, spec: RecordSpec
) -> tuple[bytes, PairStats] | Reject:
    """Decodes, validates and serializes one pair.

    Returns:
      (serialized tf.train.Example, PairStats), or a Reject naming the files and the problem.
    """
    try:
        image = _decode("image", image_bytes, pair, spec)
        raw_mask = _decode("mask", mask_bytes, pair, spec)
        if raw_mask.shape[:2] != (image.height, image.width):
            raise _RejectError(
                "size_mismatch",
                f"image is {image.width}x{image.height} but mask is "
                f"{raw_mask.shape[1]}x{raw_mask.shape[0]} (width x height)",
            )
        try:
            classes = masks.to_classes(raw_mask, spec.mask_mode, spec.palette)
            mask, class_pixels, ignored = masks.check_classes(
                classes, spec.num_classes, spec.ignore_label
            )
        except ImageError as e:
            raise _RejectError(e.reason, f"mask: {e}") from None
    except _RejectError as e:
        return Reject(e.reason, e.detail, pair.key, pair.image, pair.mask)

    if image.passthrough:
        encoded, image_format = image_bytes, image.format.lower()
    else:
        encoded, image_format = encode_png(image.array), "png"
    example = features.make_example(
        image_encoded=encoded,
        image_format=image_format,
        height=image.height,
        width=image.width,
        channels=image.channels,
        bit_depth=image.bit_depth,
        mask_png=encode_png(mask),
        filename=pair.key + posixpath.splitext(pair.image)[1],
        source_id=pair.key,
    )
    serialized = example.SerializeToString(
        deterministic=True
    )  # map order fixed: same bytes on every worker
    pixel_sum, pixel_sumsq = _rgb_sums(image.array)
    stats = PairStats(
        split=pair.split,
        height=image.height,
        width=image.width,
        channels=image.channels,
        bit_depth=image.bit_depth,
        pixel_sum=pixel_sum,
        pixel_sumsq=pixel_sumsq,
        class_pixels=tuple(int(v) for v in class_pixels),
        ignored_pixels=ignored,
        record_bytes=len(serialized),
    )
    return serialized, stats
