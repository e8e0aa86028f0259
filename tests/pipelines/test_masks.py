import numpy as np
import pytest

from pipelines.image_io import ImageError
from pipelines.ingest import masks


def test_binary_0_255_becomes_0_1_and_jpeg_noise_is_thresholded():
    raw = np.array([[0, 255], [3, 250]], np.uint8)
    np.testing.assert_array_equal(masks.to_classes(raw, "binary"), [[0, 1], [0, 1]])
    np.testing.assert_array_equal(
        masks.to_classes(np.array([[0, 1]], np.uint8), "binary"), [[0, 1]]
    )


def test_gray_saved_as_rgb_counts_as_index_mask():
    raw = np.dstack([np.array([[0, 2]], np.uint8)] * 3)
    np.testing.assert_array_equal(masks.to_classes(raw, "index"), [[0, 2]])


def test_colour_mask_in_index_mode_is_refused():
    raw = np.zeros((1, 2, 3), np.uint8)
    raw[0, 1] = (255, 0, 0)
    with pytest.raises(ImageError, match="--mask_mode rgb") as info:
        masks.to_classes(raw, "index")
    assert info.value.reason == "mask_not_single_channel"


def test_rgb_palette_maps_colours_and_names_unknown_ones():
    palette = masks.parse_palette('{"#000000": 0, "255,0,0": 1, "#ffffff": 255}')
    raw = np.array([[[0, 0, 0], [255, 0, 0], [255, 255, 255]]], np.uint8)
    np.testing.assert_array_equal(masks.to_classes(raw, "rgb", palette), [[0, 1, 255]])
    raw[0, 0] = (1, 2, 3)
    with pytest.raises(ImageError, match="#010203"):
        masks.to_classes(raw, "rgb", palette)


def test_palette_list_form_and_errors():
    palette = masks.parse_palette('{"colors": [{"color": [0, 255, 0], "class": 2}]}')
    assert palette == {0x00FF00: 2}
    with pytest.raises(ValueError, match="JSON"):
        masks.parse_palette("{not json")
    with pytest.raises(ValueError, match="0..255"):
        masks.parse_palette('{"#000000": 300}')


def test_check_classes_counts_and_ignores():
    mask, counts, ignored = masks.check_classes(np.array([[0, 1, 1, 255]]), 3, 255)
    assert mask.dtype == np.uint8
    assert counts.tolist() == [1, 2, 0] and ignored == 1
    with pytest.raises(ImageError, match="mask values 3") as info:
        masks.check_classes(np.array([[0, 3]]), 3, 255)
    assert info.value.reason == "mask_values_out_of_range"


@pytest.mark.parametrize("dtype", [np.uint8, np.int64])
def test_check_classes_is_the_same_for_8_bit_and_wide_masks(dtype):
    # uint8 masks are counted with Pillow's histogram, wider ones with numpy: same answer.
    rng = np.random.default_rng(3)
    values = rng.integers(0, 5, (17, 23))
    values[0, :3] = 255
    mask, counts, ignored = masks.check_classes(values.astype(dtype), 5, 255)
    assert counts.tolist() == np.bincount(values[values != 255], minlength=5).tolist()
    assert ignored == 3 and mask.dtype == np.uint8
    with pytest.raises(ImageError, match="mask values 7"):
        masks.check_classes(np.array([[0, 7]], dtype), 5, 255)
