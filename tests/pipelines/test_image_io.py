import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from pipelines.image_io import (
    ImageError,
    channel_histograms,
    encode_png,
    read_image,
    verify_png,
)
from pipelines.mask_io import read_label_image


def _save(array_or_image, fmt, **kwargs) -> bytes:
    image = (
        array_or_image
        if isinstance(array_or_image, Image.Image)
        else Image.fromarray(array_or_image)
    )
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


RGB = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "fmt,array,passthrough",
    [
        ("PNG", RGB, True),
        ("PNG", RGB[..., 0], True),
        ("PNG", np.dstack([RGB, RGB[..., :1]]), True),
        ("BMP", RGB, False),
        ("TIFF", RGB, False),
        ("WEBP", RGB, False),
    ],
    ids=["png-rgb", "png-gray", "png-rgba", "bmp", "tiff", "webp"],
)
def test_formats_decode(fmt, array, passthrough):
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    decoded = read_image(_save(array, fmt, **kwargs))
    np.testing.assert_array_equal(decoded.array, array)
    assert decoded.passthrough == passthrough


def test_tiff_16bit_microscopy_keeps_full_range():
    array = np.arange(30, dtype=np.uint16).reshape(5, 6) * 2000
    decoded = read_image(_save(Image.fromarray(array), "TIFF"))
    assert decoded.array.dtype == np.uint16 and decoded.bit_depth == 16
    np.testing.assert_array_equal(decoded.array, array)
    # and it survives the lossless re-encode
    np.testing.assert_array_equal(read_image(encode_png(decoded.array)).array, array)


def test_palette_image_becomes_rgb_and_palette_mask_keeps_indices():
    indices = np.array([[0, 1], [2, 1]], np.uint8)
    image = Image.fromarray(indices, mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    data = _save(image, "PNG")
    assert read_image(data).array.shape == (2, 2, 3)
    np.testing.assert_array_equal(read_label_image(data), indices)


def test_jpeg_is_stored_as_is():
    decoded = read_image(_save(RGB, "JPEG"))
    assert decoded.format == "JPEG" and decoded.passthrough


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"", "empty_file"),
        (b"hello, I am text pretending to be a PNG", "not_an_image"),
        (_save(RGB, "PNG")[:60], "corrupt"),
    ],
    ids=["empty", "text", "truncated"],
)
def test_bad_files_raise_with_reason(data, reason):
    with pytest.raises(ImageError) as info:
        read_image(data)
    assert info.value.reason == reason


def test_pixel_limit_checked_before_decoding():
    with pytest.raises(ImageError, match="exceeds --max_pixels") as info:
        read_image(_save(RGB, "PNG"), max_pixels=29)
    assert info.value.reason == "too_many_pixels"
    assert read_image(_save(RGB, "PNG"), max_pixels=30).height == 6


def test_pillow_guard_stays_on_for_the_process_and_the_user_limit_rules():
    from builders import huge_png_header
    from PIL import Image

    default = Image.MAX_IMAGE_PIXELS
    assert default is not None  # importing our modules does not switch it off
    with pytest.raises(ImageError) as caught:
        read_image(huge_png_header(20_000, 20_000))  # 400 M pixels > --max_pixels default
    assert caught.value.reason == "too_many_pixels"
    header = huge_png_header(12_000, 12_000)  # 144 M: above Pillow's default, under ours
    with pytest.raises(ImageError) as caught:
        read_image(header, max_pixels=200_000_000)  # passes the size checks, then fails to decode
    assert caught.value.reason != "too_many_pixels"
    assert Image.MAX_IMAGE_PIXELS == default


def _bincounts(array: np.ndarray) -> np.ndarray:
    """The independent reference: numpy's bincount per channel."""
    planes = [array] if array.ndim == 2 else [array[..., c] for c in range(array.shape[2])]
    return np.stack([np.bincount(p.ravel(), minlength=256) for p in planes])


@pytest.mark.parametrize(
    "array",
    [RGB[..., 0], RGB, np.dstack([RGB, RGB[..., :1]]), RGB[:, ::2], RGB[..., :1]],
    ids=["gray", "rgb", "rgba", "strided", "one-channel-3d"],
)
def test_channel_histograms_match_numpy_bincount(array):
    expected = _bincounts(array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array)
    np.testing.assert_array_equal(channel_histograms(array), expected)


def test_read_image_histograms_are_those_of_its_array():
    palette = Image.fromarray(RGB).convert("P")
    for data in (_save(RGB, "PNG"), _save(RGB[..., 0], "PNG"), _save(palette, "PNG")):
        decoded = read_image(data, histograms=True)
        np.testing.assert_array_equal(decoded.histograms, _bincounts(decoded.array))
    assert read_image(_save(RGB, "PNG")).histograms is None  # only when asked for
    sixteen = read_image(_save(np.full((4, 4), 40000, np.uint16), "PNG"), histograms=True)
    assert sixteen.histograms is None  # 16-bit: sums are taken from the array


def test_channel_histograms_refuses_other_types():
    with pytest.raises(ValueError):
        channel_histograms(np.zeros((3, 3), np.uint16))


@pytest.mark.parametrize(
    "array",
    [RGB, RGB[..., 0], np.dstack([RGB, RGB[..., :1]]), RGB[..., 0].astype(np.uint16) * 257],
    ids=["rgb", "gray", "rgba", "gray16"],
)
def test_verify_png_reads_the_header_like_a_full_decode(array):
    data = _save(array, "PNG")
    checked, decoded = verify_png(data), read_image(data)
    assert checked.array is None and checked.passthrough and decoded.passthrough
    for field in ("format", "mode", "height", "width", "channels", "bit_depth"):
        assert getattr(checked, field) == getattr(decoded, field), field


def test_verify_png_leaves_other_files_to_a_full_decode():
    palette = Image.fromarray(RGB[..., 0] % 4, mode="L").convert("P")
    assert verify_png(_save(RGB, "JPEG")) is None
    assert verify_png(_save(RGB, "TIFF")) is None
    assert verify_png(_save(palette, "PNG")) is None


def test_verify_png_catches_damage_without_decoding():
    big = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = _save(big, "PNG")
    idat = data.index(b"IDAT")
    flipped = bytearray(data)
    flipped[idat + 200] ^= 0xFF  # one damaged byte inside the pixel data
    broken = {
        "truncated": data[: len(data) // 2],
        "flipped byte": bytes(flipped),
        "no IEND": data[:-12],
    }
    for name, damaged in broken.items():
        with pytest.raises(ImageError) as info:
            verify_png(damaged)
        assert info.value.reason == "corrupt", name
        with pytest.raises(tf.errors.InvalidArgumentError):  # what training would meet
            tf.io.decode_png(damaged).numpy()
    # Pillow's full decode accepts the PNG without IEND that TensorFlow refuses: hence
    # pair_encoding.encode_pair verifies every PNG it stores as is, decoded or not.
    assert read_image(broken["no IEND"]).height == 64
