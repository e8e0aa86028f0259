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

from pipelines import tiff_io
from pipelines.tiff_io import orient

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
      height, width, channels, bit_depth: of `array` (of the file when array is None);
        bit_depth is 8 or 16 for integer pixels, 32 for float32.
      bands: a raster whose every channel is a band of its own (float pixels, 2 or 5+
        channels, a 4-channel TIFF whose 4th sample is not alpha): kept as it is, never
        converted to gray or RGB. Otherwise a picture: gray, RGB, or RGB + alpha.
      orientation: the EXIF / TIFF orientation (1-8) applied to `array` (1: none).
      geo: a GeoTIFF's georeference tags (pipelines.tiff_io.GEO_TAGS), else empty.
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
    bands: bool = False
    orientation: int = 1
    geo: dict = dataclasses.field(default_factory=dict)

    @property
    def dtype(self) -> str:
        return {8: "uint8", 16: "uint16", 32: "float32"}[self.bit_depth]


def check_size(width: int, height: int, max_pixels: int) -> None:
    """From a header, before any pixel is decoded: too_many_pixels or a zero size (corrupt)."""
    if width * height > max_pixels:
        raise ImageError(
            "too_many_pixels",
            f"{width}x{height} = {width * height:,} pixels exceeds --max_pixels={max_pixels:,}",
        )
    if width == 0 or height == 0:
        raise ImageError("corrupt", f"image has zero size {width}x{height}")


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
    check_size(*image.size, max_pixels)
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
    if not data.startswith(PNG_SIGNATURE) or png_ihdr(data)[0] == 16 and png_ihdr(data)[1] != 0:
        return None  # 16-bit colour: Pillow reads 8 bits of it (decoded by imagecodecs)
    image = open_header(data, max_pixels=max_pixels)
    if image.mode not in _PNG_LAYOUT or getattr(image, "n_frames", 1) != 1:
        return None
    if b"eXIf" in data:  # an orientation (also in an eXIf chunk after the pixels) is applied
        return None  # when decoded: decoded and stored again
    try:
        image.verify()
    except Exception as e:
        raise ImageError("corrupt", f"truncated or corrupt PNG data: {e}") from None
    channels, bit_depth = _PNG_LAYOUT[image.mode]
    width, height = image.size
    return DecodedImage(None, "PNG", image.mode, True, height, width, channels, bit_depth)


def png_ihdr(data: bytes) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR; (0, 0) when it is no PNG."""
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR" or len(data) < 26:
        return 0, 0
    return data[24], data[25]


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1-8) of an opened image; 1 when absent or unreadable."""
    try:
        if image.format == "PNG":  # its eXIf chunk, read with the header (getexif would read
            raw = image.info.get("exif")  # on, and a later verify() could not run)
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
        else:
            exif = image.getexif()
        value = int(exif.get(0x0112, 1))
    except Exception:  # a damaged EXIF block: shown as stored by viewers too
        return 1
    return value if 1 <= value <= 8 else 1


def _read_png16_colour(data: bytes, max_pixels: int) -> DecodedImage:
    """16-bit RGB, RGBA or gray+alpha PNGs, which Pillow opens as 8-bit: imagecodecs keeps 16."""
    import imagecodecs

    image = open_header(data, max_pixels=max_pixels)
    orientation = exif_orientation(image)
    try:
        array = imagecodecs.png_decode(data)
    except Exception as e:
        raise ImageError("corrupt", f"truncated or corrupt PNG data: {e}") from None
    colour_type = png_ihdr(data)[1]
    if colour_type == 4:  # gray + alpha: alpha carries no class information
        array = array[..., 0]
    array = orient(array.astype(np.uint16, copy=False), orientation)
    return _decoded(array, "PNG", image.mode, colour_type in (2, 6) and orientation == 1)


def _decoded(array, format, mode, passthrough, *, bands=False, orientation=1, geo=None):
    return DecodedImage(
        array=array,
        format=format,
        mode=mode,
        passthrough=passthrough,
        height=array.shape[0],
        width=array.shape[1],
        channels=1 if array.ndim == 2 else array.shape[2],
        bit_depth={np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(array.dtype, 32),
        bands=bands,
        orientation=orientation,
        geo=geo or {},
    )


def _read_tiff_image(data: bytes, max_pixels: int) -> DecodedImage | None:
    """A TIFF by tifffile: every band in its dtype (see pipelines/tiff_io.py); None for the
    palette, CMYK and YCbCr TIFFs that Pillow converts."""
    try:
        tif, page = tiff_io.header(data)
    except Exception as e:
        raise ImageError("corrupt", f"damaged TIFF header: {e}") from None
    with tif:
        check_size(page.imagewidth, page.imagelength, max_pixels)
        if tiff_io.image_pages(tif) > 1:
            raise ImageError(
                "multi_frame",
                f"TIFF has {len(tif.pages)} pages; write the bands of one image as samples of "
                "one page, or slice stacks into single images first",
            )
        if tiff_io.wants_pillow(page):
            return None
        try:
            read = tiff_io.read_tiff(tif, page)
        except ValueError as e:
            raise ImageError("unsupported_pixel_type", str(e)) from None
        except Exception as e:
            raise ImageError("corrupt", f"truncated or corrupt TIFF data: {e}") from None
    array = read.array
    if array.dtype == np.float32 and not np.isfinite(array).all():
        bad = int((~np.isfinite(array.reshape(*array.shape[:2], -1))).any(-1).sum())
        raise ImageError(
            "non_finite_pixels",
            f"{bad:,} pixels are NaN or infinite (a nodata value?); fill them (e.g. with the "
            "band's mean) before segmenting",
        )
    if read.alpha and array.shape[-1] == 2:  # gray + alpha counts as gray
        array = np.ascontiguousarray(array[..., 0])
    channels = 1 if array.ndim == 2 else array.shape[2]
    bands = array.dtype == np.float32 or (channels not in (1, 3) and not read.alpha)
    mode = f"{channels}x{array.dtype}" + (" alpha" if read.alpha else "")
    return _decoded(
        array, "TIFF", mode, False, bands=bands, orientation=read.orientation, geo=read.geo
    )


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
    """Decodes image file bytes (PNG, JPEG, TIFF, BMP, WebP) as they are stored and as they
    are displayed: 8- and 16-bit gray, RGB and RGBA (16-bit colour PNGs by imagecodecs, which
    Pillow would cut to 8 bits), TIFFs of any number of uint8 / uint16 / float32 bands
    (pipelines/tiff_io.py), and the EXIF or TIFF orientation applied.

    Args:
      histograms: also count the pixel values per channel of an 8-bit image
        (`DecodedImage.histograms`), straight from the decoded image (see channel_histograms).

    Raises:
      ImageError: see `open_image`, plus unsupported_pixel_type.
    """
    if tiff_io.is_tiff(data):
        decoded = _read_tiff_image(data, max_pixels)
        if decoded is not None:
            return _with_histograms(decoded, None) if histograms else decoded
    depth, colour_type = png_ihdr(data)
    if depth == 16 and colour_type in (2, 4, 6):
        decoded = _read_png16_colour(data, max_pixels)
        return _with_histograms(decoded, None) if histograms else decoded
    image = open_image(data, max_pixels=max_pixels)
    orientation = exif_orientation(image)
    array = orient(_to_array(image), orientation)
    passthrough = (
        image.mode in _PASSTHROUGH.get(image.format, ())
        and getattr(image, "n_frames", 1) == 1
        and orientation == 1  # TensorFlow ignores EXIF: a turned image is stored turned
    )
    decoded = _decoded(array, image.format, image.mode, passthrough, orientation=orientation)
    if not histograms:
        return decoded
    return _with_histograms(decoded, image if image.mode in ("L", "RGB", "RGBA") else None)


def _with_histograms(decoded: DecodedImage, image: Image.Image | None) -> DecodedImage:
    """Per-channel counts of an 8-bit picture; from Pillow's C histogram of `image` when the
    array is that image's very pixels (turning an image does not change its counts)."""
    if decoded.array.dtype != np.uint8 or decoded.bands:
        return decoded
    if image is not None:
        counts = np.asarray(image.histogram(), np.int64).reshape(-1, 256)
    else:
        counts = channel_histograms(decoded.array)
    return dataclasses.replace(decoded, histograms=counts)


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
    """Encodes uint8 or uint16 ([H, W], [H, W, 3|4]) arrays losslessly as PNG.

    compress_level=1: masks and re-encoded images compress nearly as well as at the default 6,
    several times faster.
    """
    if array.dtype == np.uint16 and array.ndim == 3:  # Pillow writes 16 bits of gray only
        import imagecodecs

        return imagecodecs.png_encode(array, level=compress_level)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()
