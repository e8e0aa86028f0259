"""Decoding image files with Pillow into arrays, with the checks every stage needs.

    python -c "from pipelines.image_io import read_image; print(read_image(open('x.png','rb').read()))"

Ingest and bulk inference both decode through `read_image()`, so a file that one stage accepts
the other accepts too. Failures raise `ImageError` with a short reason code (used for counters and
rejects records) and a message that says what is wrong.
"""

from __future__ import annotations

import dataclasses
import io
import threading
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

# We enforce our own pixel limit (`max_pixels`) from the header before decoding. Pillow's own
# guard (a process-wide setting, ~89 Mpx by default, raising at twice that) stays on; while a
# header is parsed it is lifted to at least `max_pixels` in a scope, under a lock because Beam
# runs several threads per worker, then restored: a user who raises --max_pixels on purpose is
# not refused by Pillow, and nothing else in the process loses the guard.
_PIXEL_LIMIT_LOCK = threading.Lock()

DEFAULT_MAX_PIXELS = 100_000_000  # 10k x 10k: larger frames should be tiled before ingest.

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")

# Pillow modes of PNGs whose bytes TensorFlow decodes to the same pixels -> (channels, bits).
_PNG_LAYOUT = {"L": (1, 8), "RGB": (3, 8), "RGBA": (4, 8), "I;16": (1, 16)}

_PASSTHROUGH = {
    # format -> Pillow modes whose bytes TensorFlow decodes to the same pixels.
    "PNG": set(_PNG_LAYOUT),
    "JPEG": {"L", "RGB"},
}


class ImageError(ValueError):
    """A file that cannot be used. `reason` is a short code; str(self) explains."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclasses.dataclass(frozen=True)
class DecodedImage:
    """An image as an array plus what we need to store or re-encode it.

    Attributes:
      array: uint8 or uint16, [H, W] for one channel or [H, W, C] for 3 or 4 channels; None
        when only the file's structure was checked (verify_png).
      format: Pillow's format name ("PNG", "JPEG", "TIFF", ...).
      mode: Pillow's mode of the file as read ("L", "RGB", "P", "I;16", ...).
      passthrough: True when the source bytes can be stored as they are (PNG/JPEG that
        TensorFlow decodes to exactly `array`).
      height, width, channels, bit_depth: of `array` (of the file when array is None).
    """

    array: np.ndarray | None
    format: str
    mode: str
    passthrough: bool
    height: int
    width: int
    channels: int
    bit_depth: int
    histograms: np.ndarray | None = None  # [C, 256] for uint8 arrays when asked for


def open_header(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Opens an image and checks its header (size, frames); no pixel is decoded.

    Raises:
      ImageError: empty_file, not_an_image, too_many_pixels, multi_frame or corrupt.
    """
    if not data:
        raise ImageError("empty_file", "file is empty (0 bytes)")
    try:
        with warnings.catch_warnings(), _PIXEL_LIMIT_LOCK:
            warnings.simplefilter("ignore")
            pillow_limit = Image.MAX_IMAGE_PIXELS
            if pillow_limit is not None:
                Image.MAX_IMAGE_PIXELS = max(pillow_limit, max_pixels)
            try:
                image = Image.open(io.BytesIO(data))
            finally:
                Image.MAX_IMAGE_PIXELS = pillow_limit
    except Image.DecompressionBombError as e:
        raise ImageError("too_many_pixels", f"{e} (--max_pixels={max_pixels:,})") from None
    except UnidentifiedImageError:
        raise ImageError("not_an_image", "not a readable image (unknown format)") from None
    except Exception as e:  # Pillow raises a zoo of types for damaged headers.
        raise ImageError("corrupt", f"damaged image header: {e}") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(
            "too_many_pixels",
            f"{width}x{height} = {width * height:,} pixels exceeds --max_pixels={max_pixels:,}",
        )
    if width == 0 or height == 0:
        raise ImageError("corrupt", f"image has zero size {width}x{height}")
    frames = getattr(image, "n_frames", 1)
    if frames > 1 and image.format != "PNG":  # APNG frame 0 is the still image.
        raise ImageError(
            "multi_frame",
            f"{image.format} has {frames} frames/pages; slice stacks into single images first",
        )
    return image


def open_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Opens and fully loads an image, checking size before any pixel is decoded.

    Raises:
      ImageError: see open_header.
    """
    image = open_header(data, max_pixels=max_pixels)
    try:
        image.load()
    except Exception as e:
        raise ImageError("corrupt", f"truncated or corrupt {image.format} data: {e}") from None
    return image


def verify_png(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage | None:
    """Checks a PNG that can be stored as it is without decoding its pixels.

    For a single-frame PNG in a mode TensorFlow decodes as is (gray, RGB, RGBA, 16-bit gray):
    the header checks of open_header, then every chunk's CRC-32 up to IEND (Pillow's
    `verify`). That catches what happens to files in practice (truncated copies and
    downloads, damaged bytes, other data under a .png name) at about 1/14 of a decode's cost.
    It does not inflate the pixel data, so a PNG written with a broken compressed stream and
    correct checksums would pass: only a faulty encoder makes those.

    Returns:
      A DecodedImage without array (its size, channels and bit depth from the header), or
      None when the file should be decoded instead (not PNG, palette, APNG, ...).

    Raises:
      ImageError: see open_header; corrupt for a bad checksum or a truncated file.
    """
    if not data.startswith(PNG_SIGNATURE):
        return None
    image = open_header(data, max_pixels=max_pixels)
    if image.mode not in _PNG_LAYOUT or getattr(image, "n_frames", 1) != 1:
        return None
    try:
        image.verify()
    except Exception as e:
        raise ImageError("corrupt", f"truncated or corrupt PNG data: {e}") from None
    channels, bit_depth = _PNG_LAYOUT[image.mode]
    width, height = image.size
    return DecodedImage(None, "PNG", image.mode, True, height, width, channels, bit_depth)


def _to_array(image: Image.Image) -> np.ndarray:
    """Normalises Pillow modes to uint8/uint16 arrays with 1, 3 or 4 channels."""
    mode = image.mode
    if mode in ("L", "RGB", "RGBA"):
        return np.asarray(image)
    if mode == "1":
        return np.asarray(image.convert("L"))
    if mode == "LA":
        return np.asarray(image.convert("L"))
    if mode == "P" or mode == "PA":
        has_alpha = mode == "PA" or "transparency" in image.info
        return np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    if mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16)
    if mode == "I":
        array = np.asarray(image)
        if array.min() < 0 or array.max() > 65535:
            raise ImageError(
                "unsupported_pixel_type", "32-bit integer pixels outside the 16-bit range"
            )
        return array.astype(np.uint16)
    if mode in ("CMYK", "YCbCr", "RGBX", "LAB", "HSV"):
        return np.asarray(image.convert("RGB"))
    raise ImageError("unsupported_pixel_type", f"pixel mode {mode!r} (e.g. float) is not supported")


def read_image(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, histograms: bool = False
) -> DecodedImage:
    """Decodes image file bytes (PNG, JPEG, TIFF, BMP, WebP; gray, RGB, RGBA, 16-bit gray).

    Args:
      histograms: also count the pixel values per channel of an 8-bit image
        (`DecodedImage.histograms`), straight from the decoded image (see channel_histograms).

    Raises:
      ImageError: see `open_image`, plus unsupported_pixel_type.
    """
    image = open_image(data, max_pixels=max_pixels)
    array = _to_array(image)
    passthrough = (
        image.mode in _PASSTHROUGH.get(image.format, ()) and getattr(image, "n_frames", 1) == 1
    )
    counts = None
    if histograms and array.dtype == np.uint8:
        if image.mode in ("L", "RGB", "RGBA"):  # the array is these very pixels
            counts = np.asarray(image.histogram(), np.int64).reshape(-1, 256)
        else:
            counts = channel_histograms(array)
    return DecodedImage(
        array=array,
        format=image.format,
        mode=image.mode,
        passthrough=passthrough,
        height=array.shape[0],
        width=array.shape[1],
        channels=1 if array.ndim == 2 else array.shape[2],
        bit_depth=16 if array.dtype == np.uint16 else 8,
        histograms=counts,
    )


def read_label_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decodes a mask file without colour conversion.

    Palette PNGs keep their palette indices (they are the classes); 16-bit masks stay 16-bit.

    Returns:
      [H, W] integer array, or [H, W, 3|4] for colour masks.
    """
    image = open_image(data, max_pixels=max_pixels)
    if image.mode in ("P", "L", "1"):
        return np.asarray(image).astype(np.uint8)
    if image.mode.startswith("I"):
        return np.asarray(image).astype(np.int64)
    if image.mode in ("LA", "PA"):
        return np.asarray(image)[..., 0]
    if image.mode in ("RGB", "RGBA"):
        return np.asarray(image)
    raise ImageError("unsupported_pixel_type", f"mask pixel mode {image.mode!r} is not supported")


def channel_histograms(array: np.ndarray) -> np.ndarray:
    """[C, 256] int64 pixel counts per channel of a uint8 [H, W] or [H, W, 1|3|4] array.

    Pillow's C histogram: one pass over the interleaved pixels, about 3x faster than a numpy
    bincount per channel (which first copies each strided channel and widens it to int64).
    """
    if array.dtype != np.uint8:
        raise ValueError(f"channel_histograms takes uint8 arrays, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[2] not in (3, 4):
        raise ValueError(f"channel_histograms takes 1, 3 or 4 channels, got {array.shape[2]}")
    channels = 1 if array.ndim == 2 else array.shape[2]
    counts = Image.fromarray(np.ascontiguousarray(array)).histogram()
    return np.asarray(counts, np.int64).reshape(channels, 256)


def encode_png(array: np.ndarray, *, compress_level: int = 1) -> bytes:
    """Encodes uint8 ([H, W], [H, W, 3|4]) or uint16 [H, W] arrays losslessly as PNG.

    compress_level=1: masks and re-encoded images compress nearly as well as at the default 6,
    several times faster.
    """
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()
