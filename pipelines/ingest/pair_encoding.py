"""One pair of files → one validated tf.train.Example plus its statistics (pure, no Beam).

    python -m pipelines.ingest --images_dir data/images --masks_dir data/masks ...

Each pair is decoded at most once: the same arrays feed validation, statistics and (when the
source is not PNG/JPEG) the lossless re-encode. Every PNG stored as it is gets its structure and
checksums checked (image_io.verify_png); outside the statistics sample (`pixels=False`) that is
all it gets, since decoding is nearly all of an 8-bit RGB pair's cost.
"""

from __future__ import annotations

import dataclasses
import posixpath

import numpy as np

from pipelines.image_io import (
    PNG_SIGNATURE,
    ImageError,
    channel_histograms,
    encode_png,
    read_image,
    verify_png,
)
from pipelines.ingest import masks
from pipelines.ingest.pairing import Pair, Reject
from pipelines.mask_io import LOSSY_FORMATS, read_mask
from segmodel import record_schema


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
    Python ints so that millions of images add up without rounding; None for an image outside
    the statistics sample (decoded or not), so that no format weighs more in the mean.
    """

    split: str
    height: int
    width: int
    channels: int
    bit_depth: int
    pixel_sum: tuple[int | float, ...] | None
    pixel_sumsq: tuple[int | float, ...] | None
    class_pixels: tuple[int, ...]
    ignored_pixels: int
    record_bytes: int
    bands: bool = False  # a raster of bands: sums per band (else over the picture as RGB)


def _rgb_sums(
    array: np.ndarray, histograms: np.ndarray | None = None, bands: bool = False
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per-channel sum and sum of squares over the image seen as RGB, exactly; for a raster
    of bands, per band (float bands in float64).

    8-bit images go through 256-bin histograms per channel (sum = h·v, sum of squares = h·v²):
    exact in int64 and several times faster than squaring every pixel.
    """
    if bands:  # every band; float bands in float64, integer ones exactly
        flat = array.reshape(-1, 1 if array.ndim == 2 else array.shape[2])
        if array.dtype == np.float32:
            planes = flat.astype(np.float64)
            return tuple(planes.sum(0).tolist()), tuple((planes * planes).sum(0).tolist())
        planes = flat.astype(np.int64)
        return (
            tuple(int(v) for v in planes.sum(0)),
            tuple(int(v) for v in np.einsum("ij,ij->j", planes, planes)),
        )
    channels = 1 if array.ndim == 2 else min(array.shape[2], 3)
    sums, sumsq = [], []
    if array.dtype == np.uint8:
        for hist in (channel_histograms(array) if histograms is None else histograms)[:channels]:
            sums.append(int(hist @ _VALUES))
            sumsq.append(int(hist @ _SQUARES))
    else:
        planes = [array] if array.ndim == 2 else [array[..., c] for c in range(channels)]
        for plane in planes:
            flat = plane.ravel().astype(np.int64)
            sums.append(int(flat.sum()))
            sumsq.append(int(flat @ flat))
    if channels == 1:
        sums, sumsq = sums * 3, sumsq * 3
    return tuple(sums), tuple(sumsq)


_VALUES = np.arange(256, dtype=np.int64)
_SQUARES = _VALUES**2


def _decode(role: str, data: bytes, spec: RecordSpec, pixels: bool = True):
    try:
        if role == "image":
            # Every PNG stored as it is gets its chunks checked, decoded or not: Pillow decodes
            # a PNG without IEND that TensorFlow refuses, which would fail training later.
            checked = verify_png(data, max_pixels=spec.max_pixels)
            if checked is not None and not pixels:
                return checked
            return read_image(data, max_pixels=spec.max_pixels, histograms=True)
        mask, mask_format = read_mask(data, max_pixels=spec.max_pixels)
    except ImageError as e:
        raise _RejectError(f"{role}_{e.reason}", f"{role}: {e}") from None
    if mask_format in LOSSY_FORMATS and spec.mask_mode != "binary":
        raise _RejectError(
            "mask_lossy",
            f"mask: a {mask_format} file, whose lossy compression changes class values at "
            "every edge; save masks as PNG (lossless), or for 0/255 masks use --mask_mode "
            "binary, which thresholds at 128",
        )
    return mask


class _RejectError(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def is_gray8_png(data: bytes) -> bool:
    """True for a PNG whose header says 8-bit grayscale (colour type 0): TensorFlow decodes its
    bytes to exactly the values Pillow reads, so they can be stored as they are."""
    return data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR" and data[24:26] == b"\x08\x00"


def encode_pair(
    pair: Pair, image_bytes: bytes, mask_bytes: bytes, spec: RecordSpec, pixels: bool = True
) -> tuple[bytes, PairStats] | Reject:
    """Decodes, validates and serializes one pair.

    Args:
      pixels: decode the image's pixels for the statistics; False lets a PNG that is stored
        as it is be checked by its structure only (the mask is always decoded).

    Returns:
      (serialized tf.train.Example, PairStats), or a Reject naming the files and the problem.
    """
    try:
        image = _decode("image", image_bytes, spec, pixels)
        raw_mask = _decode("mask", mask_bytes, spec)
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

    encoded, image_format = stored_image(image, image_bytes)
    # A mask that already is what we would write (an 8-bit gray PNG of valid class indices,
    # in index mode, so the values are the classes) is stored as it is: no re-encode. Binary,
    # colour, palette and 16-bit masks are converted and re-encoded.
    mask_passthrough = (
        spec.mask_mode == "index"
        and is_gray8_png(mask_bytes)
        and raw_mask.dtype == np.uint8
        and b"eXIf" not in mask_bytes  # an EXIF-turned mask is stored as displayed
    )
    serialized = record_schema.make_example(
        image_encoded=encoded,
        image_format=image_format,
        height=image.height,
        width=image.width,
        channels=image.channels,
        bit_depth=image.bit_depth,
        mask_png=mask_bytes if mask_passthrough else encode_png(mask),
        filename=pair.key + posixpath.splitext(pair.image)[1],
        source_id=pair.key,
        dtype=image.dtype if image_format == "raw" else "",
    )
    pixel_sum = pixel_sumsq = None
    if pixels:  # only the sample counts, whatever the format, so mean and std stay unbiased
        pixel_sum, pixel_sumsq = _rgb_sums(image.array, image.histograms, image.bands)
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
        bands=image.bands,
    )
    return serialized, stats


def stored_image(image, source: bytes) -> tuple[bytes, str]:
    """(bytes, format) the record holds: the source PNG/JPEG when TensorFlow decodes it to
    the very pixels (not turned by EXIF), a lossless PNG (16-bit colour too), or the raw
    pixels of a raster of bands (record_schema.STORED_FORMATS)."""
    if image.passthrough:
        return source, image.format.lower()
    if image.bands:
        little = image.array.astype(image.array.dtype.newbyteorder("<"), copy=False)
        return np.ascontiguousarray(little).tobytes(), "raw"
    return encode_png(image.array), "png"
