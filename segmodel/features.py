"""The record schema: feature keys, make_example() and parse_example(), side by side.

    python -c "from segmodel import features; print(features.SCHEMA_VERSION, features.FEATURE_KEYS)"

Keys follow TF Model Garden / DeepLab (`official/vision/dataloaders/segmentation_input.py`), so
other tools can read our shards. Two keys are ours: `image/bit_depth` (8 or 16, so 16-bit
microscopy PNGs decode without being rescaled) and `image/segmentation/class/ignore_label`.

Writer (pipelines/ingest) and readers (segmodel/input_pipeline, evaluation, inference) all import
this module; tests/segmodel/test_features.py guards the round trip.
"""

from __future__ import annotations

import tensorflow as tf

SCHEMA_VERSION = 1

IMAGE_ENCODED = "image/encoded"
IMAGE_FORMAT = "image/format"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
IMAGE_CHANNELS = "image/channels"
IMAGE_BIT_DEPTH = "image/bit_depth"
IMAGE_FILENAME = "image/filename"
IMAGE_SOURCE_ID = "image/source_id"
MASK_ENCODED = "image/segmentation/class/encoded"
MASK_FORMAT = "image/segmentation/class/format"

FEATURE_KEYS = (
    IMAGE_ENCODED,
    IMAGE_FORMAT,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    IMAGE_CHANNELS,
    IMAGE_BIT_DEPTH,
    IMAGE_FILENAME,
    IMAGE_SOURCE_ID,
    MASK_ENCODED,
    MASK_FORMAT,
)

# Formats whose source bytes are stored as they are; everything else is re-encoded as PNG.
STORED_FORMATS = ("png", "jpeg")


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def make_example(
    *,
    image_encoded: bytes,
    image_format: str,
    height: int,
    width: int,
    channels: int,
    bit_depth: int,
    mask_png: bytes,
    filename: str,
    source_id: str,
) -> tf.train.Example:
    """Builds one record.

    Args:
      image_encoded: PNG or JPEG bytes of the image.
      image_format: "png" or "jpeg".
      height, width, channels: the decoded image's shape.
      bit_depth: 8, or 16 for 16-bit PNGs.
      mask_png: PNG of class indices (uint8, one channel, same height and width).
      filename: the image's path relative to the input folder.
      source_id: the pair's key (relative path without extension); unique in a dataset.
    """
    if image_format not in STORED_FORMATS:
        raise ValueError(f"image_format must be one of {STORED_FORMATS}, got {image_format!r}")
    feature = {
        IMAGE_ENCODED: _bytes(image_encoded),
        IMAGE_FORMAT: _bytes(image_format.encode()),
        IMAGE_HEIGHT: _int(height),
        IMAGE_WIDTH: _int(width),
        IMAGE_CHANNELS: _int(channels),
        IMAGE_BIT_DEPTH: _int(bit_depth),
        IMAGE_FILENAME: _bytes(filename.encode("utf-8")),
        IMAGE_SOURCE_ID: _bytes(source_id.encode("utf-8")),
        MASK_ENCODED: _bytes(mask_png),
        MASK_FORMAT: _bytes(b"png"),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


_PARSE_SPEC = {
    IMAGE_ENCODED: tf.io.FixedLenFeature((), tf.string),
    IMAGE_FORMAT: tf.io.FixedLenFeature((), tf.string, default_value="png"),
    IMAGE_HEIGHT: tf.io.FixedLenFeature((), tf.int64),
    IMAGE_WIDTH: tf.io.FixedLenFeature((), tf.int64),
    IMAGE_CHANNELS: tf.io.FixedLenFeature((), tf.int64, default_value=3),
    IMAGE_BIT_DEPTH: tf.io.FixedLenFeature((), tf.int64, default_value=8),
    IMAGE_FILENAME: tf.io.FixedLenFeature((), tf.string, default_value=""),
    IMAGE_SOURCE_ID: tf.io.FixedLenFeature((), tf.string, default_value=""),
    MASK_ENCODED: tf.io.FixedLenFeature((), tf.string),
    MASK_FORMAT: tf.io.FixedLenFeature((), tf.string, default_value="png"),
}


def parse_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parses one serialized record into its raw features (nothing decoded yet)."""
    return tf.io.parse_single_example(serialized, _PARSE_SPEC)


def decode_image(encoded: tf.Tensor, image_format: tf.Tensor, bit_depth: tf.Tensor, channels: int):
    """Decodes stored image bytes to float32 [H, W, channels] in the image's own value range.

    8-bit images come back in [0, 255], 16-bit ones in [0, 65535]: normalisation with the
    manifest's mean/std happens later, in one place (segmodel/preprocessing).
    """

    def jpeg():
        # INTEGER_ACCURATE is libjpeg's ISLOW, the method Pillow uses: ingest and training see
        # the same pixels.
        return tf.cast(
            tf.io.decode_jpeg(encoded, channels=channels, dct_method="INTEGER_ACCURATE"),
            tf.float32,
        )

    def png16():
        return tf.cast(tf.io.decode_png(encoded, channels=channels, dtype=tf.uint16), tf.float32)

    def png8():
        return tf.cast(tf.io.decode_png(encoded, channels=channels, dtype=tf.uint8), tf.float32)

    image = tf.case(
        [(tf.equal(image_format, "jpeg"), jpeg), (tf.equal(bit_depth, 16), png16)],
        default=png8,
    )
    image.set_shape([None, None, channels])
    return image


def decode_mask(encoded: tf.Tensor) -> tf.Tensor:
    """Decodes the class-index PNG to int32 [H, W]."""
    mask = tf.io.decode_png(encoded, channels=1, dtype=tf.uint8)
    return tf.cast(mask[..., 0], tf.int32)


def decode_example(parsed: dict[str, tf.Tensor], channels: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Decodes a parsed record to (image float32 [H, W, channels], mask int32 [H, W])."""
    image = decode_image(
        parsed[IMAGE_ENCODED], parsed[IMAGE_FORMAT], parsed[IMAGE_BIT_DEPTH], channels
    )
    return image, decode_mask(parsed[MASK_ENCODED])
