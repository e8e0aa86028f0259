"""Mask files as they are stored and as they are displayed: class indices, palette indices or
colours, with the format that says whether the values survived compression.

    python -c "from pipelines.mask_io import read_mask; print(read_mask(open('m.png','rb').read()))"

The mask half of the one decoder (images: pipelines/image_io.py); the same header checks, the
same EXIF orientation, never a colour conversion.
"""

from __future__ import annotations

import numpy as np

from pipelines.image_io import DEFAULT_MAX_PIXELS, ImageError, exif_orientation, open_image
from pipelines.tiff_io import orient


def read_label_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decodes a mask file without colour conversion.

    Palette PNGs keep their palette indices (they are the classes); 16-bit masks stay 16-bit.

    Returns:
      [H, W] integer array, or [H, W, 3|4] for colour masks.
    """
    return read_mask(data, max_pixels=max_pixels)[0]


def read_mask(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, str]:
    """A mask file → ([H, W] integers or [H, W, 3|4] colours, as displayed: its EXIF
    orientation applied, as for images), and its format ("PNG", "JPEG", ...), which tells
    whether the values survived compression (LOSSY_FORMATS)."""
    image = open_image(data, max_pixels=max_pixels)
    orientation = exif_orientation(image)
    if image.mode in ("P", "L", "1"):
        array = np.asarray(image).astype(np.uint8)
    elif image.mode.startswith("I"):
        array = np.asarray(image).astype(np.int64)
    elif image.mode in ("LA", "PA"):
        array = np.asarray(image)[..., 0]
    elif image.mode in ("RGB", "RGBA"):
        array = np.asarray(image)
    else:
        raise ImageError(
            "unsupported_pixel_type", f"mask pixel mode {image.mode!r} is not supported"
        )
    return orient(array, orientation), image.format


# Formats whose compression changes pixel values: class indices and palette colours do not
# survive them (WebP can be lossless, but Pillow cannot tell which a file is).
LOSSY_FORMATS = ("JPEG", "MPO", "WEBP")
