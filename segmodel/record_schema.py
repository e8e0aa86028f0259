"""The record schema: feature keys, make_example() and parse_example(), side by side.

    python -c "from segmodel import record_schema; print(record_schema.SCHEMA_VERSION, record_schema.FEATURE_KEYS)"

Keys follow TF Model Garden / DeepLab (`official/vision/dataloaders/segmentation_input.py`), so
other tools can read our shards. Two keys are ours: `image/bit_depth` (8 or 16, so 16-bit
microscopy PNGs decode without being rescaled) and `image/segmentation/class/ignore_label`.

Writer (pipelines/ingest) and readers (segmodel/input_pipeline, evaluation, inference) all import
this module; tests/segmodel/test_record_schema.py guards the round trip.

`make_example()` writes the tf.train.Example wire format itself (a dozen lines of protobuf
encoding) instead of building the proto through TensorFlow: ingest workers then never import
TensorFlow, which saves each Beam worker process seconds of start-up and ~300 MB. The readers
import TensorFlow on first use. The round-trip tests parse our bytes with TensorFlow's own
tf.train.Example and tf.io.parse_single_example.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tensorflow as tf

SCHEMA_VERSION = 1

IMAGE_ENCODED = "image/encoded"
IMAGE_FORMAT = "image/format"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
IMAGE_CHANNELS = "image/channels"
IMAGE_BIT_DEPTH = "image/bit_depth"
IMAGE_DTYPE = "image/dtype"
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
)  # plus IMAGE_DTYPE in "raw" records only

# How the image is stored: PNG or JPEG bytes (the source's, or a lossless PNG re-encode), or
# "raw": the pixels as they are, row-major [H, W, C] little-endian in `image/dtype` (uint8,
# uint16 or float32), for multi-band and float rasters that no image format TensorFlow
# decodes can hold; tf.io.decode_raw reads them.
STORED_FORMATS = ("png", "jpeg", "raw")
RAW_DTYPES = ("uint8", "uint16", "float32")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits, value = value & 0x7F, value >> 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _bytes_feature(value: bytes) -> bytes:
    # Feature.bytes_list (1) -> BytesList.value (1)
    return _field(1, _field(1, value))


def _int64_feature(value: int) -> bytes:
    # Feature.int64_list (3) -> Int64List.value (1), packed
    if value < 0:
        raise ValueError("only non-negative integers are stored")
    return _field(3, _field(1, _varint(value)))


def serialize_features(features: dict[str, bytes | int]) -> bytes:
    """tf.train.Example wire bytes for {key: bytes or non-negative int}, keys sorted.

    Example.features (1) -> Features.feature (1, map entries {key: 1, value: 2}). Sorted keys
    make the bytes deterministic: the same pair gives the same record on every worker.
    """
    entries = b"".join(
        _field(
            1,
            _field(1, key.encode("utf-8"))
            + _field(
                2,
                _int64_feature(value) if isinstance(value, int) else _bytes_feature(value),
            ),
        )
        for key, value in sorted(features.items())
    )
    return _field(1, entries)


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
    dtype: str = "",
) -> bytes:
    """Builds one serialized tf.train.Example.

    Args:
      image_encoded: PNG or JPEG bytes of the image.
      image_format: "png", "jpeg" or "raw".
      height, width, channels: the decoded image's shape.
      bit_depth: 8 or 16 (integer pixels), 32 (float32).
      dtype: of a "raw" image (RAW_DTYPES); empty for PNG and JPEG.
      mask_png: PNG of class indices (uint8, one channel, same height and width).
      filename: the image's path relative to the input folder.
      source_id: the pair's key (relative path without extension); unique in a dataset.
    """
    if image_format not in STORED_FORMATS:
        raise ValueError(f"image_format must be one of {STORED_FORMATS}, got {image_format!r}")
    if (image_format == "raw") != (dtype in RAW_DTYPES):
        raise ValueError(f"a raw image needs a dtype of {RAW_DTYPES} (and only it): {dtype!r}")
    extra = {IMAGE_DTYPE: dtype.encode()} if dtype else {}
    return serialize_features(
        {
            **extra,
            IMAGE_ENCODED: image_encoded,
            IMAGE_FORMAT: image_format.encode(),
            IMAGE_HEIGHT: int(height),
            IMAGE_WIDTH: int(width),
            IMAGE_CHANNELS: int(channels),
            IMAGE_BIT_DEPTH: int(bit_depth),
            IMAGE_FILENAME: filename.encode("utf-8"),
            IMAGE_SOURCE_ID: source_id.encode("utf-8"),
            MASK_ENCODED: mask_png,
            MASK_FORMAT: b"png",
        }
    )


def _parse_spec():
    import tensorflow as tf

    return {
        IMAGE_ENCODED: tf.io.FixedLenFeature((), tf.string),
        IMAGE_FORMAT: tf.io.FixedLenFeature((), tf.string, default_value="png"),
        IMAGE_HEIGHT: tf.io.FixedLenFeature((), tf.int64),
        IMAGE_WIDTH: tf.io.FixedLenFeature((), tf.int64),
        IMAGE_CHANNELS: tf.io.FixedLenFeature((), tf.int64, default_value=3),
        IMAGE_BIT_DEPTH: tf.io.FixedLenFeature((), tf.int64, default_value=8),
        IMAGE_DTYPE: tf.io.FixedLenFeature((), tf.string, default_value=""),
        IMAGE_FILENAME: tf.io.FixedLenFeature((), tf.string, default_value=""),
        IMAGE_SOURCE_ID: tf.io.FixedLenFeature((), tf.string, default_value=""),
        MASK_ENCODED: tf.io.FixedLenFeature((), tf.string),
        MASK_FORMAT: tf.io.FixedLenFeature((), tf.string, default_value="png"),
    }


def parse_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parses one serialized record into its raw features (nothing decoded yet)."""
    import tensorflow as tf

    return tf.io.parse_single_example(serialized, _parse_spec())


def decode_mask(encoded: tf.Tensor) -> tf.Tensor:
    """Decodes the class-index PNG to int32 [H, W]."""
    import tensorflow as tf

    mask = tf.io.decode_png(encoded, channels=1, dtype=tf.uint8)
    return tf.cast(mask[..., 0], tf.int32)


def decode_example(
    parsed: dict[str, tf.Tensor],
    channels: int | None = None,
    bit_depth: int | None = None,
    bands: bool = False,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Decodes a parsed record to (image float32 [H, W, C], mask int32 [H, W]).

    channels=None: the stored pixels as they are (their own channels and value range), for
    round trips. Otherwise through the one model-input path (segmodel/preprocessing.py) to
    that many channels (a picture: 1 or 3; `bands`: a raster's own band count), in the
    `bit_depth` value range (None: the image's own range).
    """
    import tensorflow as tf

    from segmodel.preprocessing import convert_tf, decode_raw_tf, decode_tf

    def encoded():
        return decode_tf(parsed[IMAGE_ENCODED])

    def raw():
        return decode_raw_tf(
            parsed[IMAGE_ENCODED],
            parsed[IMAGE_DTYPE],
            parsed[IMAGE_HEIGHT],
            parsed[IMAGE_WIDTH],
            parsed[IMAGE_CHANNELS],
        )

    image, source_bits = tf.cond(tf.equal(parsed[IMAGE_FORMAT], b"raw"), raw, encoded)
    image.set_shape([None, None, None])
    if channels is not None:
        image = convert_tf(image, source_bits, channels, bit_depth, bands)
    return image, decode_mask(parsed[MASK_ENCODED])
