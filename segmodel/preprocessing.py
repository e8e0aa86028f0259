"""The one model-input path: decoded pixels → the model's channels, bit depth and normalisation.

    python -c "from segmodel.preprocessing import model_input_np; help(model_input_np)"

Training and evaluation (tf.data over the shards), the exported SavedModel's `serve` signature
and Beam bulk inference all turn a decoded image into the model's input here, with the same
arithmetic in two forms: `model_input_tf` (TensorFlow ops, for tf.data and the SavedModel) and
`model_input_np` (numpy, for Beam workers that decode with Pillow).
tests/segmodel/test_model_input_parity.py feeds the same files through every path and checks the
inputs agree to 1e-6 and the predicted masks are equal.

The steps, in this order, in float32:
1. bit depth: pixels are brought to the model's value range — 0..255 for a model trained on
   8-bit images, 0..65535 for one trained on 16-bit ones — by multiplying with 257 or 1/257. A
   16-bit file sent to an 8-bit model (or the reverse) gets the same input as its 8-bit twin.
   Float pixels (bit depth 32) are taken as they are: their scale is the data's own.
2. channels: for pictures, alpha is dropped (it carries no class information; gray+alpha
   counts as gray); gray becomes RGB by repetition, RGB becomes gray by ITU-R 601 luma
   0.299 R + 0.587 G + 0.114 B (Pillow's "L" weights), summed in that order. For rasters of
   bands (`bands=True`: multi-band, float) nothing is converted: a file must hold exactly the
   model's bands (ingest and inference reject the others by name).
3. normalise: (x − mean) / std with the training manifest's per-channel statistics.
"""

from __future__ import annotations

import numpy as np

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as Pillow's convert("L")
_MAX = {8: 255.0, 16: 65535.0}
FLOAT_BITS = 32  # the "bit depth" of float32 pixels: never rescaled


def normalization_from_manifest(manifest: dict) -> tuple[list[float], list[float]]:
    """(mean, std) per channel from a manifest; std floored so flat channels stay finite."""
    stats = manifest["stats"]
    if not stats.get("mean"):
        raise ValueError("manifest has no image statistics (no accepted records?)")
    return list(stats["mean"]), [max(s, 1e-3) for s in stats["std"]]


def bit_depth_from_manifest(manifest: dict) -> int:
    """The model's input bit depth: 32 for float rasters, 16 when every training image was
    16-bit, else 8 (a dataset mixing 8- and 16-bit images is brought to 8-bit values, and its
    statistics are computed on that scale: pipelines/ingest/dataset_stats.py)."""
    depths = set(manifest["stats"].get("bit_depths") or {"8": 1})
    if str(FLOAT_BITS) in depths:
        return FLOAT_BITS
    return 16 if depths == {"16"} else 8


def bands_from_manifest(manifest: dict) -> bool:
    """True for a dataset of rasters whose channels are bands (kept, never converted)."""
    return bool(manifest["stats"].get("bands", False))


def normalize(image, mean, std):
    """(image - mean) / std, per channel. Works on tf tensors, Keras tensors and numpy arrays."""
    mean = np.asarray(mean, np.float32)
    std = np.asarray(std, np.float32)
    return (image - mean) / std


def scale_factor(source_bits: int, bit_depth: int) -> np.float32:
    """The float32 factor that brings `source_bits` pixels to the model's `bit_depth` range."""
    if source_bits == bit_depth or FLOAT_BITS in (source_bits, bit_depth):
        return np.float32(1.0)
    return np.float32(_MAX[bit_depth] / _MAX[source_bits])  # 257 or 1/257


def _luma(r, g, b):
    return r * np.float32(LUMA[0]) + g * np.float32(LUMA[1]) + b * np.float32(LUMA[2])


def source_bits_of(array: np.ndarray) -> int:
    return {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(array.dtype, FLOAT_BITS)


def convert_np(array: np.ndarray, channels: int, bit_depth: int, bands: bool = False) -> np.ndarray:
    """Decoded pixels (uint8/uint16/float32, [H, W] or [H, W, C]) → float32 [H, W, channels]
    in the `bit_depth` value range (steps 1-2). ValueError for a raster of other bands."""
    x = array.astype(np.float32)
    if x.ndim == 2:
        x = x[..., None]
    factor = scale_factor(source_bits_of(array), bit_depth)
    if factor != 1:
        x = x * factor
    if bands:
        if x.shape[-1] != channels:
            raise ValueError(f"the image has {x.shape[-1]} bands, the model takes {channels}")
        return x
    if x.shape[-1] > 4:
        raise ValueError(f"the image has {x.shape[-1]} bands; the model takes a picture")
    if x.shape[-1] in (1, 2):
        gray = x[..., :1]
        return np.repeat(gray, 3, axis=-1) if channels == 3 else gray
    if channels == 3:
        return np.ascontiguousarray(x[..., :3])
    return _luma(x[..., 0], x[..., 1], x[..., 2])[..., None]


def model_input_np(
    array: np.ndarray, channels: int, bit_depth: int, mean, std, bands: bool = False
) -> np.ndarray:
    """Decoded pixels → the model's normalised float32 input [H, W, channels] (numpy form)."""
    return normalize(convert_np(array, channels, bit_depth, bands), mean, std)


def convert_tf(image, source_bits, channels: int, bit_depth: int | None, bands: bool = False):
    """Decoded pixels (float32 [H, W, C], values in the `source_bits` range, a tensor) →
    float32 [H, W, channels] in the `bit_depth` range (steps 1-2; None: keep the image's own
    range)."""
    import tensorflow as tf

    x = tf.cast(image, tf.float32)
    if bit_depth is not None:
        from_8, from_16 = scale_factor(8, bit_depth), scale_factor(16, bit_depth)
        factor = tf.where(
            tf.equal(source_bits, 16),
            from_16,
            tf.where(tf.equal(source_bits, 8), from_8, np.float32(1.0)),
        )
        x = tf.cond(tf.equal(factor, 1.0), lambda: x, lambda: x * factor)
    if bands:
        x.set_shape([None, None, channels])
        return x
    color = tf.shape(x)[-1] >= 3
    if channels == 3:
        x = tf.cond(color, lambda: x[..., :3], lambda: tf.repeat(x[..., :1], 3, axis=-1))
    else:
        x = tf.cond(
            color, lambda: _luma(x[..., 0], x[..., 1], x[..., 2])[..., None], lambda: x[..., :1]
        )
    x.set_shape([None, None, channels])
    return x


def model_input_tf(image, source_bits, channels: int, bit_depth: int, mean, std, bands=False):
    """Decoded pixels → the model's normalised float32 input [H, W, channels] (TensorFlow form)."""
    return normalize(convert_tf(image, source_bits, channels, bit_depth, bands), mean, std)


def decode_raw_tf(encoded, dtype, height, width, channels):
    """A record's "raw" pixels (segmodel/record_schema.py) → (float32 [H, W, C], source bits
    8, 16 or 32)."""
    import tensorflow as tf

    shape = tf.stack(
        [tf.cast(height, tf.int32), tf.cast(width, tf.int32), tf.cast(channels, tf.int32)]
    )

    def read(out_type, bits):
        def branch():  # decoded only in the branch that runs: the lengths differ by dtype
            pixels = tf.io.decode_raw(encoded, out_type, little_endian=True)
            return tf.reshape(tf.cast(pixels, tf.float32), shape), tf.constant(bits)

        return branch

    return tf.case(
        [
            (tf.equal(dtype, b"uint8"), read(tf.uint8, 8)),
            (tf.equal(dtype, b"uint16"), read(tf.uint16, 16)),
        ],
        default=read(tf.float32, FLOAT_BITS),
    )


def decode_tf(encoded):
    """Encoded PNG / JPEG / BMP / GIF bytes → (float32 [H, W, C] in the file's own range, its bit
    depth 8 or 16), decoded natively: the format and bit depth are read from the bytes.

    JPEG uses libjpeg's ISLOW ("INTEGER_ACCURATE"), the method Pillow uses, so the training shards,
    the SavedModel and Beam inference see the same pixels. Palette PNGs expand to RGB(A).
    """
    import tensorflow as tf

    is_jpeg = tf.equal(tf.strings.substr(encoded, 0, 2), b"\xff\xd8")
    # A PNG's IHDR holds the bit depth at byte 24.
    is_png16 = tf.logical_and(
        tf.equal(tf.strings.substr(encoded, 0, 4), b"\x89PNG"),
        tf.equal(tf.strings.substr(encoded, 24, 1), b"\x10"),
    )

    def jpeg():
        return tf.io.decode_jpeg(encoded, channels=0, dct_method="INTEGER_ACCURATE")

    def png16():
        return tf.io.decode_png(encoded, channels=0, dtype=tf.uint16)

    def other():
        return tf.io.decode_image(encoded, channels=0, expand_animations=False)

    image = tf.case(
        [
            (is_jpeg, lambda: tf.cast(jpeg(), tf.float32)),
            (is_png16, lambda: tf.cast(png16(), tf.float32)),
        ],
        default=lambda: tf.cast(other(), tf.float32),
    )
    image.set_shape([None, None, None])
    return image, tf.where(is_png16, 16, 8)
