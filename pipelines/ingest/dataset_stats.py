"""Dataset statistics for the manifest, accumulated over per-pair PairStats.

    python -m pipelines.ingest ...   # the manifest's "stats" section comes from here

The accumulator is small and bounded: counters keyed by distinct image sizes (at most one entry
per distinct height or width), exact integer pixel sums, one count per class. The ingest DoFn
keeps one accumulator per bundle (`add` per record) inside its bundle report, and the job merges
them at the end (pipelines/ingest/bundle_report.py), so per-pair stats never travel through the
runner on their own. Pure: no Beam.
"""

from __future__ import annotations

import collections
import math

from pipelines.ingest.pair_encoding import PairStats


def _median(counter: collections.Counter) -> float:
    """Median of the multiset a Counter holds (mean of the two middle values when even)."""
    n = sum(counter.values())
    if n == 0:
        return 0
    lo_rank, hi_rank = (n - 1) // 2, n // 2
    seen, lo = 0, None
    for value in sorted(counter):
        seen += counter[value]
        if lo is None and seen > lo_rank:
            lo = value
        if seen > hi_rank:
            return (lo + value) / 2
    raise AssertionError("unreachable")


class DatasetStats:
    """PairStats → accumulators (plain dicts, picklable) → the manifest's statistics."""

    def __init__(self, num_classes: int):
        self._num_classes = num_classes

    def empty(self) -> dict:
        return {
            "records": collections.Counter(),
            "bytes": collections.Counter(),
            "heights": collections.Counter(),
            "widths": collections.Counter(),
            "channels": collections.Counter(),
            "bit_depths": collections.Counter(),
            "pixels": 0,  # of the images in the intensity sample
            "intensity_images": 0,
            "sum": [0, 0, 0],
            "sumsq": [0, 0, 0],
            "class_pixels": [0] * self._num_classes,
            "ignored_pixels": 0,
        }

    def add(self, acc: dict, stats: PairStats) -> dict:
        acc["records"][stats.split] += 1
        acc["bytes"][stats.split] += stats.record_bytes
        acc["heights"][stats.height] += 1
        acc["widths"][stats.width] += 1
        acc["channels"][stats.channels] += 1
        acc["bit_depths"][stats.bit_depth] += 1
        if stats.pixel_sum is not None:  # in the intensity sample
            acc["pixels"] += stats.height * stats.width
            acc["intensity_images"] += 1
            for c in range(3):
                acc["sum"][c] += stats.pixel_sum[c]
                acc["sumsq"][c] += stats.pixel_sumsq[c]
        for k, v in enumerate(stats.class_pixels):
            acc["class_pixels"][k] += v
        acc["ignored_pixels"] += stats.ignored_pixels
        return acc

    def merge(self, accumulators) -> dict:
        accumulators = iter(accumulators)
        merged = next(accumulators)
        for acc in accumulators:
            for key in ("records", "bytes", "heights", "widths", "channels", "bit_depths"):
                merged[key].update(acc[key])
            merged["pixels"] += acc["pixels"]
            merged["intensity_images"] += acc["intensity_images"]
            merged["ignored_pixels"] += acc["ignored_pixels"]
            for key in ("sum", "sumsq", "class_pixels"):
                merged[key] = [a + b for a, b in zip(merged[key], acc[key], strict=True)]
        return merged


def summarize(acc: dict) -> dict:
    """Turns an accumulator into the manifest's JSON-ready statistics."""
    n = acc["pixels"]
    # Gray-only datasets train on one channel; anything with colour trains on RGB.
    channels = 1 if set(acc["channels"]) <= {1} else 3
    mean, std = [], []
    for c in range(channels):
        if n:
            m = acc["sum"][c] / n
            # Exact integer numerator: no catastrophic cancellation over millions of pixels.
            var = (acc["sumsq"][c] * n - acc["sum"][c] ** 2) / (n * n)
            mean.append(m)
            std.append(math.sqrt(max(var, 0.0)))
    labelled = sum(acc["class_pixels"])
    return {
        "records": dict(acc["records"]),
        "record_bytes": dict(acc["bytes"]),
        "image_height": _min_median_max(acc["heights"]),
        "image_width": _min_median_max(acc["widths"]),
        "channels": channels,
        "channels_found": {str(k): v for k, v in sorted(acc["channels"].items())},
        "bit_depths": {str(k): v for k, v in sorted(acc["bit_depths"].items())},
        "mean": mean,
        "std": std,
        "intensity_images": acc["intensity_images"],  # images mean and std come from
        "class_pixels": list(acc["class_pixels"]),
        "class_frequencies": [v / labelled if labelled else 0.0 for v in acc["class_pixels"]],
        "ignored_pixels": acc["ignored_pixels"],
    }


def _min_median_max(counter: collections.Counter) -> dict:
    if not counter:
        return {"min": 0, "median": 0, "max": 0}
    return {"min": min(counter), "median": _median(counter), "max": max(counter)}
