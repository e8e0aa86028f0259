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
from segmodel.preprocessing import scale_factor


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
            # per layout of the sample's images: "picture/8", "picture/16" (sums over RGB)
            # or "bands<N>/<bits>" -> [pixels, sums per channel, sums of squares]
            "intensity": {},
            "bands": collections.Counter(),  # rasters of bands by band count
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
        if stats.bands:
            acc["bands"][stats.channels] += 1
        if stats.pixel_sum is not None:  # in the intensity sample
            pixels = stats.height * stats.width
            acc["pixels"] += pixels
            acc["intensity_images"] += 1
            layout = (
                f"bands{stats.channels}/{stats.bit_depth}"
                if stats.bands
                else f"picture/{stats.bit_depth}"
            )
            _add_intensity(acc["intensity"], layout, [pixels, stats.pixel_sum, stats.pixel_sumsq])
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
            merged["bands"].update(acc["bands"])
            merged["pixels"] += acc["pixels"]
            merged["intensity_images"] += acc["intensity_images"]
            merged["ignored_pixels"] += acc["ignored_pixels"]
            for layout, part in acc["intensity"].items():
                _add_intensity(merged["intensity"], layout, part)
            merged["class_pixels"] = [
                a + b for a, b in zip(merged["class_pixels"], acc["class_pixels"], strict=True)
            ]
        return merged


def _add_intensity(into: dict, layout: str, part: list) -> None:
    pixels, sums, sumsq = part
    if layout not in into:
        into[layout] = [0, [0] * len(sums), [0] * len(sums)]
    held = into[layout]
    held[0] += pixels
    held[1] = [a + b for a, b in zip(held[1], sums, strict=True)]
    held[2] = [a + b for a, b in zip(held[2], sumsq, strict=True)]


def layout_problems(acc: dict) -> list[str]:
    """What keeps the accepted images from being one model's input: pictures and rasters of
    bands mixed, rasters of different band counts, float rasters beside integer ones."""
    problems = []
    pictures = sum(acc["records"].values()) - sum(acc["bands"].values())
    if acc["bands"] and (pictures or len(acc["bands"]) > 1):
        kinds = [f"{n} images of {b} bands" for b, n in sorted(acc["bands"].items())]
        if pictures:
            kinds.append(f"{pictures} gray/RGB(A) images")
        problems.append(
            "the images are not one kind of input: " + ", ".join(kinds) + "; a model takes "
            "one band layout (split them into datasets of their own)"
        )
    depths = set(acc["bit_depths"])
    if 32 in depths and len(depths) > 1:
        problems.append(
            "float and integer images mixed ("
            + ", ".join(f"{n} of {b}-bit" for b, n in sorted(acc["bit_depths"].items()))
            + "); convert them to one pixel type"
        )
    return problems


def _moments(acc: dict, channels: int, bit_depth: int) -> tuple[list, list]:
    """Per-channel mean and std of the sample, every image on the model's value scale: a
    16-bit image counts as its 8-bit twin (values / 257) in a dataset that mixes depths."""
    n, sums, sumsq = 0, [0] * channels, [0] * channels
    for layout, (pixels, s, q) in acc["intensity"].items():
        factor = scale_factor(int(layout.split("/")[1]), bit_depth)
        n += pixels
        for c in range(channels):
            # A factor of 1 keeps Python ints exact (one depth: the usual case).
            sums[c] += s[c] if factor == 1 else s[c] * float(factor)
            sumsq[c] += q[c] if factor == 1 else q[c] * float(factor) ** 2
    mean, std = [], []
    for c in range(channels):
        if n:
            # Exact integer numerator where the sums are exact: no catastrophic cancellation
            # over millions of pixels.
            var = (sumsq[c] * n - sums[c] ** 2) / (n * n)
            mean.append(sums[c] / n)
            std.append(math.sqrt(max(var, 0.0)))
    return mean, std


def summarize(acc: dict) -> dict:
    """Turns an accumulator into the manifest's JSON-ready statistics."""
    bands = bool(acc["bands"])
    if bands:  # rasters: every band is an input channel of its own
        channels = max(acc["bands"])
    else:  # gray-only datasets train on one channel; anything with colour trains on RGB
        channels = 1 if set(acc["channels"]) <= {1} else 3
    depths = set(acc["bit_depths"])
    bit_depth = 32 if 32 in depths else 16 if depths == {16} else 8
    problems = layout_problems(acc)
    mean, std = ([], []) if problems else _moments(acc, channels, bit_depth)
    labelled = sum(acc["class_pixels"])
    return {
        "records": dict(acc["records"]),
        "record_bytes": dict(acc["bytes"]),
        "image_height": _min_median_max(acc["heights"]),
        "image_width": _min_median_max(acc["widths"]),
        "channels": channels,
        "bands": bands,  # a raster of bands: channels kept as they are, never converted
        "channels_found": {str(k): v for k, v in sorted(acc["channels"].items())},
        "layout_problems": problems,  # non-empty: the ingest fails (finalize)
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
