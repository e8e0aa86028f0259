"""Mask conventions → class-index maps, and their validation (pure functions, no Beam).

    python -m pipelines.ingest --mask_mode rgb --palette palette.json ...

Modes:
  index:  8/16-bit single-channel masks whose values are the classes; palette PNGs (their palette
          indices are the classes); an RGB(A) mask whose channels are all equal counts as gray.
  binary: the "mask / 255" convention. 0/255 masks (or 0/1) become classes 0/1; values of a
          lossy 8-bit mask are thresholded at 128.
  rgb:    colour-coded masks, mapped through a palette JSON file.

Palette file: a JSON object mapping colours to classes, colours as "#rrggbb" or "r,g,b":
  {"#000000": 0, "#ff0000": 1, "0,255,0": 2, "#ffffff": 255}
or {"colors": [{"color": [0, 0, 0], "class": 0, "name": "background"}, ...]}.
"""

from __future__ import annotations

import json

import numpy as np

from pipelines.image_io import ImageError, channel_histograms

MASK_MODES = ("index", "binary", "rgb")


def _parse_colour(text) -> tuple[int, int, int]:
    if isinstance(text, (list, tuple)):
        rgb = tuple(int(v) for v in text)
    elif isinstance(text, str) and text.startswith("#") and len(text) == 7:
        rgb = tuple(int(text[i : i + 2], 16) for i in (1, 3, 5))
    elif isinstance(text, str) and text.count(",") == 2:
        rgb = tuple(int(v) for v in text.split(","))
    else:
        raise ValueError(f"colour {text!r} is not '#rrggbb', 'r,g,b' or [r, g, b]")
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise ValueError(f"colour {text!r} is not three values in 0..255")
    return rgb


def parse_palette(text: str) -> dict[int, int]:
    """Parses palette JSON into {packed 0xRRGGBB colour: class}.

    Raises:
      ValueError: naming what in the file is wrong.
    """
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"palette is not valid JSON: {e}") from None
    if isinstance(raw, dict) and "colors" in raw:
        items = [(entry["color"], entry["class"]) for entry in raw["colors"]]
    elif isinstance(raw, dict):
        items = list(raw.items())
    else:
        raise ValueError("palette must be a JSON object")
    palette = {}
    for colour, cls in items:
        r, g, b = _parse_colour(colour)
        if not isinstance(cls, int) or not 0 <= cls <= 255:
            raise ValueError(f"class for colour {colour!r} must be an integer 0..255, got {cls!r}")
        palette[(r << 16) | (g << 8) | b] = cls
    if not palette:
        raise ValueError("palette is empty")
    return palette


def _single_channel(raw: np.ndarray) -> np.ndarray | None:
    """[H, W] from a gray-looking colour mask, or None if its channels differ."""
    if raw.ndim == 2:
        return raw
    rgb = raw[..., :3]
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return rgb[..., 0]
    return None


def to_classes(raw: np.ndarray, mode: str, palette: dict[int, int] | None = None) -> np.ndarray:
    """Converts a decoded mask (see pipelines.mask_io.read_mask) to class indices [H, W].

    Raises:
      ImageError: mask_not_single_channel (colour mask in index/binary mode) or
        unknown_mask_colour (rgb mode, colour not in the palette).
    """
    if mode == "rgb":
        if palette is None:
            raise ValueError("--mask_mode rgb needs --palette")
        if raw.ndim == 2:
            raise ImageError(
                "mask_not_colour", "single-channel mask, but --mask_mode rgb expects colours"
            )
        rgb = raw[..., :3].astype(np.uint32)
        packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        colours, inverse = np.unique(packed, return_inverse=True)
        unknown = [int(c) for c in colours if int(c) not in palette]
        if unknown:
            shown = ", ".join(f"#{c:06x}" for c in unknown[:5])
            raise ImageError(
                "unknown_mask_colour",
                f"{len(unknown)} colour(s) not in the palette: {shown}",
            )
        lut = np.array([palette[int(c)] for c in colours], dtype=np.uint8)
        return lut[inverse.reshape(packed.shape)]

    gray = _single_channel(raw)
    if gray is None:
        raise ImageError(
            "mask_not_single_channel",
            f"mask has {raw.shape[2]} differing colour channels; "
            "use --mask_mode rgb with --palette for colour-coded masks",
        )
    if mode == "binary":
        if gray.max(initial=0) <= 1:
            return gray.astype(np.uint8)
        return (gray >= 128).astype(np.uint8)
    if mode == "index":
        return gray
    raise ValueError(f"unknown mask mode {mode!r}; expected one of {MASK_MODES}")


def check_classes(
    classes: np.ndarray, num_classes: int, ignore_label: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Checks every value is a class in [0, num_classes) or the ignore label.

    Returns:
      (mask as uint8 [H, W], pixel count per class [num_classes], ignored pixel count).

    Raises:
      ImageError: mask_values_out_of_range, naming the offending values.
    """
    if classes.dtype == np.uint8 and 0 <= ignore_label < 256 and num_classes <= 256:
        counts = channel_histograms(classes)[0]  # Pillow's C histogram: no int64 copy
    else:
        if classes.min(initial=0) < 0:
            raise ImageError("mask_values_out_of_range", "mask has negative values")
        counts = np.bincount(classes.ravel(), minlength=max(num_classes, ignore_label + 1))
    present = np.flatnonzero(counts)
    bad = present[(present >= num_classes) & (present != ignore_label)]
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:8])
        raise ImageError(
            "mask_values_out_of_range",
            f"mask values {shown} are outside [0, {num_classes}) and not the ignore label "
            f"{ignore_label}",
        )
    return classes.astype(np.uint8, copy=False), counts[:num_classes], int(counts[ignore_label])
