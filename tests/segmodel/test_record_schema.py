import numpy as np
import pytest
import tensorflow as tf

from pipelines.image_io import encode_png
from segmodel import record_schema


def _example(image: np.ndarray, mask: np.ndarray, fmt="png", encoded=None):
    return record_schema.make_example(
        image_encoded=encoded if encoded is not None else encode_png(image),
        image_format=fmt,
        height=image.shape[0],
        width=image.shape[1],
        channels=1 if image.ndim == 2 else image.shape[2],
        bit_depth=16 if image.dtype == np.uint16 else 8,
        mask_png=encode_png(mask),
        filename="a/b.png",
        source_id="a/b",
    )


@pytest.mark.parametrize(
    "image",
    [
        np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3),
        np.arange(5 * 7, dtype=np.uint16).reshape(5, 7) * 1000,  # 16-bit microscopy
        np.full((3, 4, 4), 200, np.uint8),  # RGBA
    ],
    ids=["rgb8", "gray16", "rgba"],
)
def test_round_trip_keeps_every_pixel(image):
    mask = (
        (np.arange(image.shape[0] * image.shape[1]) % 3).reshape(image.shape[:2]).astype(np.uint8)
    )
    mask[0, 0] = 255
    parsed = record_schema.parse_example(tf.constant(_example(image, mask)))
    channels = 1 if image.ndim == 2 else image.shape[2]
    decoded, decoded_mask = record_schema.decode_example(parsed)  # as stored
    np.testing.assert_array_equal(decoded.numpy(), image.reshape(*image.shape[:2], channels))
    np.testing.assert_array_equal(decoded_mask.numpy(), mask)
    assert parsed[record_schema.IMAGE_SOURCE_ID].numpy() == b"a/b"
    assert parsed[record_schema.IMAGE_HEIGHT].numpy() == image.shape[0]


def test_decode_inside_tf_data_matches_eager():
    image = np.random.default_rng(0).integers(0, 255, (9, 11, 3), dtype=np.uint8)
    mask = np.zeros((9, 11), np.uint8)
    record = _example(image, mask)
    eager = record_schema.decode_example(record_schema.parse_example(tf.constant(record)), 3)[
        0
    ].numpy()
    ds = tf.data.Dataset.from_tensors(record).map(
        lambda r: record_schema.decode_example(record_schema.parse_example(r), 3)
    )
    graph = next(iter(ds))[0].numpy()
    np.testing.assert_array_equal(eager, graph)


def test_model_garden_keys_are_used():
    assert record_schema.IMAGE_ENCODED == "image/encoded"
    assert record_schema.MASK_ENCODED == "image/segmentation/class/encoded"
    proto = tf.train.Example.FromString(
        _example(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.uint8))
    )
    assert set(record_schema.FEATURE_KEYS) == set(proto.features.feature.keys())


def test_hand_written_wire_format_matches_tensorflow_proto():
    ours = record_schema.serialize_features(
        {"a/int": 300, "b/bytes": b"\x00\xff" * 200, "c/zero": 0}
    )
    expected = tf.train.Example(
        features=tf.train.Features(
            feature={
                "a/int": tf.train.Feature(int64_list=tf.train.Int64List(value=[300])),
                "b/bytes": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[b"\x00\xff" * 200])
                ),
                "c/zero": tf.train.Feature(int64_list=tf.train.Int64List(value=[0])),
            }
        )
    )
    assert tf.train.Example.FromString(ours) == expected
    assert ours == expected.SerializeToString(deterministic=True)


def test_ingest_side_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, pipelines.ingest; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_rejects_unknown_format():
    with pytest.raises(ValueError, match="image_format"):
        record_schema.make_example(
            image_encoded=b"",
            image_format="tiff",
            height=1,
            width=1,
            channels=1,
            bit_depth=8,
            mask_png=b"",
            filename="",
            source_id="",
        )
