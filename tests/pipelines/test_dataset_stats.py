import math

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.ingest.dataset_stats import DatasetStatsFn, _median
from pipelines.ingest.records import PairStats


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
    fn = DatasetStatsFn(num_classes=2)
    acc = fn.create_accumulator()
    # Two 2x2 images, constant 0 and constant 10: mean 5, std 5 per channel.
    for s in (_stats("train", 2, 2, 0, (3, 1)), _stats("val", 2, 2, 10, (0, 4))):
        acc = fn.add_input(acc, s)
    out = fn.extract_output(fn.merge_accumulators([acc, fn.create_accumulator()]))
    assert out["records"] == {"train": 1, "val": 1}
    assert out["mean"] == [5.0, 5.0, 5.0]
    assert all(math.isclose(s, 5.0) for s in out["std"])
    assert out["class_pixels"] == [3, 5] and out["ignored_pixels"] == 2
    assert out["class_frequencies"] == [3 / 8, 5 / 8]
    assert out["channels"] == 3


def test_images_outside_the_sample_count_everywhere_but_in_mean_and_std():
    import dataclasses

    fn = DatasetStatsFn(num_classes=2)
    unsampled = dataclasses.replace(
        _stats("train", 4, 4, 99, (10, 6)), pixel_sum=None, pixel_sumsq=None
    )
    accs = [fn.add_input(fn.create_accumulator(), s) for s in (_stats("val", 2, 2, 10, (0, 4)),)]
    accs.append(fn.add_input(fn.create_accumulator(), unsampled))
    out = fn.extract_output(fn.merge_accumulators(accs))
    assert out["mean"] == [10.0, 10.0, 10.0] and out["std"] == [0.0, 0.0, 0.0]
    assert out["intensity_images"] == 1
    assert out["records"] == {"val": 1, "train": 1} and out["class_pixels"] == [10, 10]
    assert out["image_height"] == {"min": 2, "median": 3.0, "max": 4}


def test_gray_only_dataset_has_one_channel():
    fn = DatasetStatsFn(num_classes=2)
    acc = fn.add_input(fn.create_accumulator(), _stats("train", 1, 1, 7, (1, 0), channels=1))
    out = fn.extract_output(acc)
    assert out["channels"] == 1 and out["mean"] == [7.0]


def test_median_of_counter():
    from collections import Counter

    assert _median(Counter({1: 1, 3: 1})) == 2
    assert _median(Counter({5: 3, 9: 1})) == 5
    assert _median(Counter()) == 0


def test_combine_in_a_pipeline_matches_direct_computation():
    items = [_stats("train", h, h, h, (h, 0)) for h in (1, 2, 3, 4, 5)]
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(items) | beam.CombineGlobally(DatasetStatsFn(num_classes=2))
        assert_that(
            out | beam.Map(lambda s: (s["image_height"], s["class_pixels"])),
            equal_to([({"min": 1, "median": 3, "max": 5}, [15, 0])]),
        )
