"""segmodel/tta.py: test-time augmentation views and their average (through predict_images)."""

import numpy as np
import pytest

from segmodel import tta
from segmodel.predict import predict_images


@pytest.mark.parametrize("name", ["flips", "d4"])
def test_every_view_maps_back_to_the_original(name):
    x = np.random.default_rng(0).random((5, 7, 3))
    for turns, mirror in tta.VIEWS[name]:
        view = tta.to_view(x, turns, mirror)
        assert np.array_equal(tta.from_view(view, turns, mirror), x)
    assert len({tta.to_view(x, t, m).tobytes() for t, m in tta.VIEWS[name]}) == len(tta.VIEWS[name])


def test_tta_averages_the_views_probabilities():
    """An independent check: a "model" whose output depends on the column index (not flip
    invariant). With flips, the average over the 4 views is computed by hand here."""

    def model(batch):  # [N, H, W, 1] -> 2-class probabilities leaning on the column position
        n, h, w, _ = batch.shape
        ramp = np.broadcast_to(np.linspace(0, 1, w)[None, None, :, None], (n, h, w, 1))
        return np.concatenate([ramp, 1 - ramp], -1).astype(np.float32)

    image = np.zeros((4, 6, 1), np.float32)
    plain = predict_images(model, [image], tile_size=64, tile_overlap=8, batch_size=2)[0]
    flips = predict_images(model, [image], tile_size=64, tile_overlap=8, batch_size=2, tta="flips")[
        0
    ]
    ramp = np.linspace(0, 1, 6)
    expected = (
        ramp + ramp[::-1] + ramp[::-1] + ramp
    ) / 4  # identity, lr, ud (=lr of rot180), rot180
    assert np.allclose(plain[0, :, 0], ramp)
    assert np.allclose(flips[..., 0], expected[None, :])
    assert flips.shape == plain.shape
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        tta.check("rot45")
