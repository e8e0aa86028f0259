import io

import numpy as np
import pytest
import tensorflow as tf
from builders import encode, random_pair

from pipelines.ingest.pair_encoding import RecordSpec, encode_pair
from pipelines.ingest.pairing import Pair, Reject
from segmodel import record_schema

SPEC = RecordSpec(num_classes=3)
PAIR = Pair("a/x", "/in/images/a/x.png", "/in/masks/a/x.png", "train", 0)


def test_good_pair_round_trips_with_stats():
    image, mask = random_pair(0)
    record, stats = encode_pair(PAIR, encode(image), encode(mask), SPEC)
    parsed = record_schema.parse_example(tf.constant(record))
    decoded, decoded_mask = record_schema.decode_example(parsed, 3)
    np.testing.assert_array_equal(decoded.numpy(), image)
    np.testing.assert_array_equal(decoded_mask.numpy(), mask)
    assert parsed[record_schema.IMAGE_FILENAME].numpy() == b"a/x.png"
    assert stats.class_pixels == tuple(np.bincount(mask.ravel(), minlength=3).tolist())
    assert stats.pixel_sum[0] == int(image[..., 0].sum())


def test_outside_the_statistics_sample_a_png_is_checked_not_decoded():
    image, mask = random_pair(2)
    data = encode(image)
    decoded_record, decoded_stats = encode_pair(PAIR, data, encode(mask), SPEC)
    record, stats = encode_pair(PAIR, data, encode(mask), SPEC, pixels=False)
    assert record == decoded_record  # the same record either way
    assert stats.pixel_sum is None and stats.pixel_sumsq is None
    assert stats.class_pixels == decoded_stats.class_pixels  # masks are always decoded
    truncated = encode_pair(PAIR, data[: len(data) - 20], encode(mask), SPEC, pixels=False)
    assert isinstance(truncated, Reject) and truncated.reason == "image_corrupt"
    no_iend = encode_pair(PAIR, data[:-12], encode(mask), SPEC)  # decoded, still refused
    assert isinstance(no_iend, Reject) and no_iend.reason == "image_corrupt"
    tiff = io.BytesIO()
    from PIL import Image

    Image.fromarray(image).save(tiff, format="TIFF")  # re-encoded, so decoded anyway, but
    tiff_record, tiff_stats = encode_pair(PAIR, tiff.getvalue(), encode(mask), SPEC, pixels=False)
    assert tiff_stats.pixel_sum is None  # outside the sample: no format weighs more in the mean
    stored = record_schema.decode_example(record_schema.parse_example(tf.constant(tiff_record)), 3)[
        0
    ]
    np.testing.assert_array_equal(stored.numpy(), image)


def test_source_png_bytes_are_stored_unchanged():
    image, mask = random_pair(1)
    data = encode(image)
    record, _ = encode_pair(PAIR, data, encode(mask), SPEC)
    assert (
        tf.train.Example.FromString(record)
        .features.feature[record_schema.IMAGE_ENCODED]
        .bytes_list.value[0]
        == data
    )


def _stored_mask(record: bytes) -> bytes:
    feature = tf.train.Example.FromString(record).features.feature
    return feature[record_schema.MASK_ENCODED].bytes_list.value[0]


def test_canonical_index_masks_are_stored_unchanged_and_others_converted():
    from PIL import Image

    image, mask = random_pair(3)
    gray8 = encode(mask)
    record, _ = encode_pair(PAIR, encode(image), gray8, SPEC)
    assert _stored_mask(record) == gray8  # no re-encode
    # a palette mask (indices are classes) and a 0/255 binary mask are converted, then decode
    # to the same classes
    palette = Image.fromarray(mask, mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    record, _ = encode_pair(PAIR, encode(image), buffer.getvalue(), SPEC)
    assert _stored_mask(record) != buffer.getvalue()
    np.testing.assert_array_equal(
        record_schema.decode_mask(tf.constant(_stored_mask(record))).numpy(), mask
    )
    binary = (mask > 0).astype(np.uint8)
    spec = RecordSpec(num_classes=2, mask_mode="binary")
    record, _ = encode_pair(PAIR, encode(image), encode(binary * 255), spec)
    assert _stored_mask(record) != encode(binary * 255)
    decoded = record_schema.decode_mask(tf.constant(_stored_mask(record))).numpy()
    np.testing.assert_array_equal(decoded, binary)


def test_jpeg_source_decodes_identically_in_tensorflow():
    image, mask = random_pair(2)
    data = encode(image, "JPEG", quality=90)
    from pipelines.image_io import read_image

    record, _ = encode_pair(PAIR, data, encode(mask), SPEC)
    decoded, _ = record_schema.decode_example(record_schema.parse_example(tf.constant(record)), 3)
    np.testing.assert_array_equal(decoded.numpy(), read_image(data).array)


def _bad(kind):
    image, mask = random_pair(3)
    if kind == "image_empty_file":
        return b"", encode(mask), SPEC
    if kind == "image_not_an_image":
        return b"this is text, not a png", encode(mask), SPEC
    if kind == "image_corrupt":
        return encode(image)[:100], encode(mask), SPEC
    if kind == "mask_corrupt":
        return encode(image), encode(mask)[:80], SPEC
    if kind == "size_mismatch":
        return encode(image), encode(mask[:-1]), SPEC
    if kind == "mask_values_out_of_range":
        return encode(image), encode(mask + 3), SPEC
    if kind == "image_too_many_pixels":
        return encode(image), encode(mask), RecordSpec(num_classes=3, max_pixels=100)
    if kind == "mask_not_single_channel":
        return encode(image), encode(image), SPEC
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "image_empty_file",
        "image_not_an_image",
        "image_corrupt",
        "mask_corrupt",
        "size_mismatch",
        "mask_values_out_of_range",
        "image_too_many_pixels",
        "mask_not_single_channel",
    ],
)
def test_each_bad_input_is_a_reject_naming_the_files(kind):
    result = encode_pair(PAIR, *_bad(kind))
    assert isinstance(result, Reject)
    assert result.reason == kind
    assert result.image == PAIR.image and result.mask == PAIR.mask and result.detail
