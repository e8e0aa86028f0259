"""TIFF files (GeoTIFF included) as they are stored: any number of bands, uint8 / uint16 /
float32, with their orientation and georeference tags.

    python -c "from pipelines.tiff_io import read_tiff; print(read_tiff(open('x.tif','rb').read()))"

Pillow reads TIFFs of 1, 3 or 4 samples of 8 bits (and 16-bit gray), and cuts or refuses the
rest: 16-bit RGB, 5+ band rasters and float samples. tifffile (with imagecodecs for LZW,
deflate, zstd and JPEG tiles) reads them all as numpy arrays of their own dtype. This module is
the TIFF half of the one decoder (pipelines/image_io.py calls it); nothing else opens TIFFs.

What is kept: every sample, in its dtype. What counts as alpha: the last sample of an RGB or
gray image when the file marks it as alpha (ExtraSamples 1 or 2); any other extra sample is a
band (a near-infrared band next to RGB, say). Palette, CMYK and YCbCr TIFFs go back to Pillow,
which converts them as it does for other formats. Refused by name: other dtypes (int16, float64,
...), several pages, planes of different sizes.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np

TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

KEPT_DTYPES = ("uint8", "uint16", "float32")

# TIFF tags that georeference a raster (GeoTIFF 1.1): copied as they are onto a mask GeoTIFF.
GEO_TAGS = {
    33550: "ModelPixelScaleTag",
    33922: "ModelTiepointTag",
    34264: "ModelTransformationTag",
    34735: "GeoKeyDirectoryTag",
    34736: "GeoDoubleParamsTag",
    34737: "GeoAsciiParamsTag",
    42112: "GDAL_METADATA",
    42113: "GDAL_NODATA",
}

_ALPHA = (1, 2)  # ExtraSamples: associated, unassociated alpha
_PILLOW_PHOTOMETRIC = (3, 5, 6)  # palette, CMYK, YCbCr: converted by Pillow


@dataclasses.dataclass(frozen=True)
class Tiff:
    """A TIFF's first page: [H, W] or [H, W, S] in the stored dtype, as displayed.

    alpha: the last sample is alpha. orientation: the TIFF Orientation tag (1 = as stored),
    already applied to `array`. geo: {tag code: (dtype code, count, value)} of GEO_TAGS found.
    """

    array: np.ndarray
    alpha: bool
    orientation: int
    geo: dict


def is_tiff(data: bytes) -> bool:
    return data[:4] in TIFF_SIGNATURES


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Applies an EXIF/TIFF orientation (1-8) to [H, W, ...]: the array as a viewer shows it."""
    if orientation in (2, 4, 5, 7):
        array = array[:, ::-1]  # mirrored: flip left-right first
        orientation = {2: 1, 4: 3, 5: 6, 7: 8}[orientation]
    if orientation == 3:
        array = array[::-1, ::-1]
    elif orientation == 6:  # "rotate 90 CW to display"
        array = np.rot90(array, -1)
    elif orientation == 8:
        array = np.rot90(array, 1)
    return np.ascontiguousarray(array)


def header(data: bytes):
    """(tifffile.TiffFile, its first page), for size checks before anything is decoded.
    Raises ValueError with the problem."""
    import tifffile

    tif = tifffile.TiffFile(io.BytesIO(data))
    if not tif.pages:
        tif.close()
        raise ValueError("TIFF holds no image")
    return tif, tif.pages[0]


def wants_pillow(page) -> bool:
    """Palette, CMYK and YCbCr TIFFs of 8 bits, 1-bit and MINISWHITE (inverted gray) TIFFs:
    Pillow converts them as it does for other formats."""
    if page.dtype == np.bool_ or int(page.photometric) == 0:
        return True
    return int(page.photometric) in _PILLOW_PHOTOMETRIC and page.dtype == np.uint8


def image_pages(tif) -> int:
    """Full-resolution images in a TIFF: reduced-resolution overviews and mask pages (a cloud-
    optimised GeoTIFF's, NewSubfileType bits 1 and 4) are not images of their own."""
    return sum(1 for page in tif.pages if not (int(getattr(page, "subfiletype", 0)) & 5))


def read_tiff(tif, page) -> Tiff:
    """Decodes the first page of an opened TIFF (see header; the caller has refused files of
    several image pages). Raises ValueError with the problem (the caller turns it into a
    reject reason)."""
    if str(page.dtype) not in KEPT_DTYPES:
        raise ValueError(
            f"{page.dtype} samples are not supported (kept as they are: {', '.join(KEPT_DTYPES)})"
        )
    array = page.asarray()
    axes = page.axes.replace("I", "")  # a single page: no image axis
    if "S" in axes and axes.index("S") == 0:  # planar: bands first
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3):
        raise ValueError(f"TIFF page of shape {array.shape} ({page.axes}) is not one image")
    extra = tuple(int(e) for e in (page.extrasamples or ()))
    alpha = bool(extra) and extra[-1] in _ALPHA and array.ndim == 3 and array.shape[-1] in (2, 4)
    tag = page.tags.get(274)
    orientation = int(tag.value) if tag is not None else 1
    geo = {
        code: (page.tags[code].dtype, page.tags[code].count, page.tags[code].value)
        for code in GEO_TAGS
        if code in page.tags
    }
    return Tiff(orient(array, orientation), alpha, orientation, geo)


def geotiff_mask(classes: np.ndarray, geo: dict) -> bytes:
    """A class-index mask [H, W] uint8 as a GeoTIFF carrying the input's georeference tags as
    they were (transform, CRS, GDAL metadata), so that GIS tools lay it over the input."""
    import tifffile

    extratags = [
        (code, int(dtype), count, value, True)
        for code, (dtype, count, value) in sorted(geo.items())
        if code != 42113  # GDAL_NODATA: the input's, not a class value
    ]
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        np.ascontiguousarray(classes, np.uint8),
        photometric="minisblack",
        compression="zlib",
        extratags=extratags,
        metadata=None,
    )
    return buffer.getvalue()
