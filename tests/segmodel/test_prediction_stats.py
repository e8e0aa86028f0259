"""segmodel/prediction_stats.py: per-image statistics, the run-wide merge, the uncertain scale."""

import numpy as np
import pytest

from segmodel.prediction_stats import (
    RunStats,
    channel_moments,
    image_stats,
    top_class,
    uncertain_threshold,
)


def _record(rng, h, w, k=3, skipped=False):
    probs = rng.dirichlet(np.ones(k), size=(h, w)).astype(np.float32)
    x = rng.normal(0.3, 2.0, (h, w, 2)).astype(np.float32)
    classes = probs.argmax(-1)
    counts = np.bincount(classes.ravel(), minlength=k)
    record = {
        "height": h,
        "width": w,
        "class_fractions": list(counts / classes.size),
        "mean_confidence": float(probs.max(-1).mean()),
        "skipped": skipped,
        **image_stats(probs, x, 2, 8),
    }
    return record, probs, x


def test_run_statistics_merge_and_match_numpy_on_all_pixels():
    rng = np.random.default_rng(1)
    made = [_record(rng, h, w) for h, w in [(10, 12), (30, 8), (16, 16), (5, 40)]]
    one, left, right = RunStats(), RunStats(), RunStats()
    for i, (record, _, _) in enumerate(made):
        one.add(record)
        (left if i % 2 else right).add(record)
    one.add({"skipped": True})
    right.add({"skipped": True})
    merged = RunStats().merge(left).merge(right).summary()
    whole = one.summary()
    assert merged == whole
    pixels = np.concatenate([x.reshape(-1, 2) for _, _, x in made])
    probs = np.concatenate([p.reshape(-1, 3) for _, p, _ in made])
    assert np.allclose(whole["input"]["mean"], pixels.mean(0), atol=1e-4)
    assert np.allclose(whole["input"]["std"], pixels.std(0), atol=1e-3)
    assert whole["confidence"]["mean"] == pytest.approx(probs.max(-1).mean(), abs=1e-5)
    uncertain = (probs.max(-1) < uncertain_threshold(3)).mean()
    assert whole["confidence"]["uncertain_fraction"] == pytest.approx(uncertain, abs=1e-5)
    assert sum(whole["confidence"]["histogram"]) == len(probs) == whole["pixels"]
    assert whole["images"] == 4 and whole["skipped"] == 1
    assert whole["input"]["height"] == {"min": 5, "max": 30}
    assert whole["input"]["channels_found"] == {"2": 4}
    assert sum(whole["input"]["size_bins"].values()) == 4


def test_uncertain_threshold_is_the_midpoint_between_chance_and_certainty():
    assert uncertain_threshold(2) == 0.75
    assert uncertain_threshold(4) == pytest.approx(0.625)


@pytest.mark.parametrize("k", [1, 2, 4, 7])
def test_top_class_equals_argmax_and_max_ties_to_the_lower_class(k):
    rng = np.random.default_rng(k)
    probs = rng.dirichlet(np.ones(k), size=(33, 17)).astype(np.float32)
    probs[0, :] = 1.0 / k  # every class tied: argmax says class 0
    probs[1, :, -1] = probs[1, :, 0]  # first and last tied
    classes, confidence = top_class(probs)
    np.testing.assert_array_equal(classes, probs.argmax(-1))
    np.testing.assert_array_equal(confidence, probs.max(-1))
    assert classes.dtype == np.uint8


def test_top_class_past_256_classes_is_uint16():
    probs = np.zeros((2, 3, 300), np.float32)
    probs[1, 2, 299] = 1.0
    classes, _ = top_class(probs)
    assert classes.dtype == np.uint16 and classes[1, 2] == 299 and classes[0, 0] == 0


def test_channel_moments_equal_numpy_mean_and_std_in_float64():
    x = np.random.default_rng(3).normal(40.0, 3.0, (57, 31, 3)).astype(np.float32)
    means, stds = channel_moments(x)
    pixels = x.reshape(-1, 3)
    np.testing.assert_allclose(means, pixels.mean(0, dtype=np.float64), rtol=1e-12)
    np.testing.assert_allclose(stds, pixels.std(0, dtype=np.float64), rtol=1e-12)
