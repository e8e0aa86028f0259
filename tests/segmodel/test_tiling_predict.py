import numpy as np
import pytest

from segmodel import tiling
from segmodel.predict import predict_images
from segmodel.preprocessing import model_input_np


@pytest.mark.parametrize(
    "length,tile,overlap", [(100, 32, 8), (32, 32, 8), (33, 32, 0), (5, 32, 8), (2048, 512, 64)]
)
def test_tiles_cover_every_pixel_with_the_overlap(length, tile, overlap):
    starts = tiling.tile_starts(length, tile, overlap)
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s : s + tile] = True
        assert s + min(tile, length) <= length
    assert covered.all()
    for a, b in zip(starts, starts[1:], strict=False):
        assert a + tile - b >= overlap


def test_blend_is_a_partition_of_unity():
    # constant per-tile predictions: blending must give back exactly that constant everywhere
    image = np.zeros((70, 45, 1), np.float32)
    probs = tiling.predict_tiled(
        lambda b: np.full((*b.shape[:3], 3), 1 / 3, np.float32), image, 32, 8, 4
    )
    np.testing.assert_allclose(probs, 1 / 3, rtol=1e-6)


class ShiftInvariant:
    """A 'model' whose output at a pixel depends only on that pixel: tiling must be exact."""

    def __call__(self, batch, training=False):
        x = batch[..., :1]
        return np.concatenate([1 / (1 + np.exp(x)), 1 - 1 / (1 + np.exp(x))], axis=-1)


def test_tiled_equals_whole_for_a_local_model():
    rng = np.random.default_rng(0)
    big = rng.normal(size=(150, 90, 1)).astype(np.float32)
    small = [rng.normal(size=(20, 20, 1)).astype(np.float32) for _ in range(3)]
    out = predict_images(
        ShiftInvariant(), [big, *small], tile_size=64, tile_overlap=16, batch_size=2
    )
    np.testing.assert_allclose(out[0], ShiftInvariant()(big[None])[0], atol=1e-6)
    for image, probs in zip(small, out[1:], strict=True):
        np.testing.assert_allclose(probs, ShiftInvariant()(image[None])[0], atol=1e-6)


def test_model_input_matches_channels_and_normalises():
    gray = np.full((4, 5), 100, np.uint8)
    out = model_input_np(gray, 3, 8, [50, 50, 50], [25, 25, 25])
    assert out.shape == (4, 5, 3) and np.allclose(out, 2.0)
    rgba = np.zeros((2, 2, 4), np.uint8)
    assert model_input_np(rgba, 3, 8, [0, 0, 0], [1, 1, 1]).shape == (2, 2, 3)
    assert model_input_np(np.zeros((2, 2, 3), np.uint8), 1, 8, [0], [1]).shape == (2, 2, 1)
