import math

from pipelines.ingest.dataset_stats import DatasetStats, _median, summarize
from pipelines.ingest.pair_encoding import PairStats


def _stats(split, h, w, value, classes, channels=3):
    n = h * w
    return PairStats(
        split=split,
        height=h,
        width=w,
        channels=channels,
        bit_depth=8,
        pixel_sum=(value * n,) * 3,
        pixel_sumsq=(value * value * n,) * 3,
        class_pixels=classes,
        ignored_pixels=1,
        record_bytes=100,
    )


def test_golden_numbers():
    fn = DatasetStats(num_classes=2)
    acc = fn.empty()
    # Two 2x2 images, constant 0 and constant 10: mean 5, std 5 per channel.
    for s in (_stats("train", 2, 2, 0, (3, 1)), _stats("val", 2, 2, 10, (0, 4))):
        acc = fn.add(acc, s)
    out = summarize(fn.merge([acc, fn.empty()]))
    assert out["records"] == {"train": 1, "val": 1}
    assert out["mean"] == [5.0, 5.0, 5.0]
    assert all(math.isclose(s, 5.0) for s in out["std"])
    assert out["class_pixels"] == [3, 5] and out["ignored_pixels"] == 2
    assert out["class_frequencies"] == [3 / 8, 5 / 8]
    assert out["channels"] == 3


def test_images_outside_the_sample_count_everywhere_but_in_mean_and_std():
    import dataclasses

    fn = DatasetStats(num_classes=2)
    unsampled = dataclasses.replace(
        _stats("train", 4, 4, 99, (10, 6)), pixel_sum=None, pixel_sumsq=None
    )
    accs = [fn.add(fn.empty(), s) for s in (_stats("val", 2, 2, 10, (0, 4)),)]
    accs.append(fn.add(fn.empty(), unsampled))
    out = summarize(fn.merge(accs))
    assert out["mean"] == [10.0, 10.0, 10.0] and out["std"] == [0.0, 0.0, 0.0]
    assert out["intensity_images"] == 1
    assert out["records"] == {"val": 1, "train": 1} and out["class_pixels"] == [10, 10]
    assert out["image_height"] == {"min": 2, "median": 3.0, "max": 4}


def test_gray_only_dataset_has_one_channel():
    fn = DatasetStats(num_classes=2)
    acc = fn.add(fn.empty(), _stats("train", 1, 1, 7, (1, 0), channels=1))
    out = summarize(acc)
    assert out["channels"] == 1 and out["mean"] == [7.0]


def test_median_of_counter():
    from collections import Counter

    assert _median(Counter({1: 1, 3: 1})) == 2
    assert _median(Counter({5: 3, 9: 1})) == 5
    assert _median(Counter()) == 0


def test_merging_bundles_in_any_grouping_matches_one_accumulator():
    """Bundles merge like one pass over all pairs, whatever the split into bundles."""
    items = [_stats("train", h, h, h, (h, 0)) for h in (1, 2, 3, 4, 5)]
    fn = DatasetStats(num_classes=2)
    one = fn.empty()
    for item in items:
        fn.add(one, item)
    bundles = [fn.empty(), fn.empty(), fn.empty()]
    for i, item in enumerate(items):
        fn.add(bundles[i % 3], item)
    merged = summarize(fn.merge(bundles[::-1]))
    assert merged == summarize(one)
    assert merged["image_height"] == {"min": 1, "median": 3, "max": 5}
    assert merged["class_pixels"] == [15, 0]
