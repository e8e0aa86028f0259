"""What a bulk-inference run saw: per-image statistics and their run-wide summary.

    python -c "import numpy as np; from segmodel.prediction_stats import certainty; print(certainty(np.array([0.5, 0.75, 1.0]), 2))"

Each segmented image gets, next to its class fractions and mean confidence, the share of its
pixels the model is unsure about, a histogram of its pixel confidences, what kind of file it was
(channels, bit depth) and its intensity in the model's normalised units (training mean 0, std 1
per channel, so a shift reads directly in training standard deviations). `RunStats` folds those
records into one fixed-size summary (sums and histograms, never a list of images), which the
run ledger keeps and `segscale drift` compares. Pure numpy, no Beam.

Confidence: a pixel's confidence is its top class probability p. It is also put on a 0..1 scale
that means the same for 2 and for 10 classes, (p - 1/K) / (1 - 1/K); a pixel is *uncertain*
below 0.5 on that scale (p < 0.75 for two classes, p < 0.625 for four).
"""

from __future__ import annotations

import math

import numpy as np

CONFIDENCE_BINS = 20  # over top-class probability 0..1
UNCERTAIN_BELOW = 0.5  # on the class-count-independent scale above
INTENSITY_RANGE = (-5.0, 5.0)  # per-image mean, in training standard deviations
INTENSITY_BINS = 40
SIZE_BINS_PER_OCTAVE = 8  # image sides binned on a log scale: 9 % wide bins


def certainty(top_probability, num_classes: int):
    """A top-class probability on the scale that does not depend on the class count: 0 at
    chance (1 / classes, 1/2 for one class), 1 at certainty. Numbers or numpy arrays.

    Formula: (p - c) / (1 - c), c = 1 / max(classes, 2)."""
    chance = 1.0 / max(num_classes, 2)
    return (top_probability - chance) / (1.0 - chance)


def uncertain_threshold(num_classes: int) -> float:
    """Top-class probability below which a pixel counts as uncertain: certainty
    UNCERTAIN_BELOW."""
    chance = 1.0 / max(num_classes, 2)
    return chance + UNCERTAIN_BELOW * (1.0 - chance)


def size_bin(side: int) -> int:
    return int(math.floor(math.log2(max(side, 1)) * SIZE_BINS_PER_OCTAVE))


def size_bin_range(index: int) -> tuple[float, float]:
    """The sides [low, high) that fall in a size bin."""
    return 2 ** (index / SIZE_BINS_PER_OCTAVE), 2 ** ((index + 1) / SIZE_BINS_PER_OCTAVE)


def top_class(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classes [H, W] uint8, or uint16 past 256 classes; confidence [H, W]) of probabilities
    [H, W, K]: the same as (probs.argmax(-1), probs.max(-1)), ties to the lower class, in one
    pass over the K class planes. numpy's reductions over a short last axis are slow (about
    3.4 ms for both on a 256x256x4 image against 1.0 ms here), and bulk inference does this for
    every image on the worker's one thread, beside the model."""
    confidence = probs[..., 0].copy()
    classes = np.zeros(confidence.shape, np.uint8 if probs.shape[-1] <= 256 else np.uint16)
    for k in range(1, probs.shape[-1]):
        plane = probs[..., k]
        classes[plane > confidence] = k
        np.maximum(confidence, plane, out=confidence)
    return classes, confidence


def image_stats(
    probs: np.ndarray,
    model_input: np.ndarray,
    file_channels: int,
    file_bit_depth: int,
    confidence: np.ndarray | None = None,
) -> dict:
    """Record fields for one segmented image: probabilities [H, W, K], the normalised input
    [H, W, C] the model saw, and the channels and bit depth of the file it came from
    (`confidence`, probs.max(-1), when the caller has it from `top_class`)."""
    num_classes = probs.shape[-1]
    if confidence is None:
        confidence = top_class(probs)[1]
    bins = np.minimum((confidence * CONFIDENCE_BINS).astype(np.int32), CONFIDENCE_BINS - 1)
    histogram = np.bincount(bins.ravel(), minlength=CONFIDENCE_BINS)
    means, stds = channel_moments(model_input)
    return {
        "mean_confidence": round(float(confidence.mean()), 6),
        "uncertain_fraction": round(
            float((confidence < uncertain_threshold(num_classes)).mean()), 6
        ),
        "confidence_histogram": [int(c) for c in histogram],
        "file_channels": int(file_channels),
        "file_bit_depth": int(file_bit_depth),
        "input_mean": [round(v, 5) for v in means],
        "input_std": [round(v, 5) for v in stds],
    }


def channel_moments(image: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and (population) standard deviation of an image [H, W, C], in float64
    and in two passes like numpy's std; one channel plane at a time, which is ten times faster
    than reducing the [H*W, C] view over its first axis."""
    means, stds = [], []
    for c in range(image.shape[-1]):
        plane = image[..., c].astype(np.float64)
        mean = plane.mean()
        means.append(float(mean))
        stds.append(float(np.sqrt(np.square(plane - mean).mean())))
    return means, stds


def file_kind(array: np.ndarray) -> tuple[int, int]:
    """(channels, bit depth) of a decoded file's pixels."""
    channels = 1 if array.ndim == 2 else int(array.shape[-1])
    return channels, {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(array.dtype, 32)


class RunStats:
    """Running totals over the records of images segmented in a run (skipped ones carry no
    pixels' statistics and are only counted). Mergeable, so Beam can combine it in parallel."""

    def __init__(self):
        self.images = 0
        self.skipped = 0
        self.pixels = 0
        self.class_pixels: list[float] = []
        self.confidence_sum = 0.0
        self.confidence_histogram = [0] * CONFIDENCE_BINS
        self.uncertain_pixels = 0.0
        self.channels: dict[str, int] = {}
        self.bit_depths: dict[str, int] = {}
        self.sizes: dict[str, int] = {}  # "height bin,width bin" → images
        self.height = [None, None]  # min, max
        self.width = [None, None]
        self.input_sum: list[float] = []
        self.input_sumsq: list[float] = []
        self.image_means = [0] * INTENSITY_BINS
        # Per-image spreads, for the sampling noise of a comparison (`segscale drift`).
        self.image_fraction_sum: list[float] = []
        self.image_fraction_sumsq: list[float] = []
        self.image_mean_sum: list[float] = []
        self.image_mean_sumsq: list[float] = []
        self.image_confidence_sum: list[float] = []
        self.image_confidence_sumsq: list[float] = []

    def add(self, record: dict) -> RunStats:
        if record.get("skipped"):
            self.skipped += 1
            return self
        h, w = record["height"], record["width"]
        n = h * w
        self.images += 1
        self.pixels += n
        fractions = record["class_fractions"]
        self.class_pixels = _add(self.class_pixels, [f * n for f in fractions])
        self.confidence_sum += record["mean_confidence"] * n
        self.confidence_histogram = _add(self.confidence_histogram, record["confidence_histogram"])
        self.uncertain_pixels += record["uncertain_fraction"] * n
        _count(self.channels, str(record["file_channels"]))
        _count(self.bit_depths, str(record["file_bit_depth"]))
        _count(self.sizes, f"{size_bin(h)},{size_bin(w)}")
        self.height = _extend(self.height, h)
        self.width = _extend(self.width, w)
        means, stds = record["input_mean"], record["input_std"]
        self.input_sum = _add(self.input_sum, [m * n for m in means])
        self.input_sumsq = _add(
            self.input_sumsq, [(s * s + m * m) * n for m, s in zip(means, stds, strict=True)]
        )
        low, high = INTENSITY_RANGE
        position = (float(np.mean(means)) - low) / (high - low) * INTENSITY_BINS
        self.image_means[min(max(int(position), 0), INTENSITY_BINS - 1)] += 1
        self.image_fraction_sum = _add(self.image_fraction_sum, fractions)
        self.image_fraction_sumsq = _add(self.image_fraction_sumsq, [f * f for f in fractions])
        self.image_mean_sum = _add(self.image_mean_sum, means)
        self.image_mean_sumsq = _add(self.image_mean_sumsq, [m * m for m in means])
        confidence = record["mean_confidence"]
        self.image_confidence_sum = _add(self.image_confidence_sum, [confidence])
        self.image_confidence_sumsq = _add(self.image_confidence_sumsq, [confidence**2])
        return self

    def merge(self, other: RunStats) -> RunStats:
        self.images += other.images
        self.skipped += other.skipped
        self.pixels += other.pixels
        self.class_pixels = _add(self.class_pixels, other.class_pixels)
        self.confidence_sum += other.confidence_sum
        self.confidence_histogram = _add(self.confidence_histogram, other.confidence_histogram)
        self.uncertain_pixels += other.uncertain_pixels
        for mine, theirs in (
            (self.channels, other.channels),
            (self.bit_depths, other.bit_depths),
            (self.sizes, other.sizes),
        ):
            for key, value in theirs.items():
                _count(mine, key, value)
        for value in other.height:
            self.height = _extend(self.height, value)
        for value in other.width:
            self.width = _extend(self.width, value)
        self.input_sum = _add(self.input_sum, other.input_sum)
        self.input_sumsq = _add(self.input_sumsq, other.input_sumsq)
        self.image_means = _add(self.image_means, other.image_means)
        for name in (
            "image_fraction_sum",
            "image_fraction_sumsq",
            "image_mean_sum",
            "image_mean_sumsq",
            "image_confidence_sum",
            "image_confidence_sumsq",
        ):
            setattr(self, name, _add(getattr(self, name), getattr(other, name)))
        return self

    def summary(self) -> dict:
        """The JSON summary the ledger keeps (every field fixed-size but `sizes`, which holds
        one entry per distinct log-size bin)."""
        n = max(self.pixels, 1)
        mean = [s / n for s in self.input_sum]
        std = [
            math.sqrt(max(q / n - m * m, 0.0)) for q, m in zip(self.input_sumsq, mean, strict=True)
        ]
        return {
            "images": self.images,
            "skipped": self.skipped,
            "pixels": self.pixels,
            "class_fractions": [round(c / n, 6) for c in self.class_pixels],
            "class_fractions_per_image": _spread(
                self.image_fraction_sum, self.image_fraction_sumsq, self.images
            ),
            "confidence": {
                "mean": round(self.confidence_sum / n, 6) if self.pixels else None,
                "uncertain_fraction": round(self.uncertain_pixels / n, 6) if self.pixels else None,
                "histogram": [int(c) for c in self.confidence_histogram],
                "per_image": _spread(
                    self.image_confidence_sum, self.image_confidence_sumsq, self.images
                ),
            },
            "input": {
                "channels_found": dict(sorted(self.channels.items())),
                "bit_depths": dict(sorted(self.bit_depths.items())),
                "height": {"min": self.height[0], "max": self.height[1]},
                "width": {"min": self.width[0], "max": self.width[1]},
                "size_bins": dict(sorted(self.sizes.items())),
                "mean": [round(v, 5) for v in mean],
                "std": [round(v, 5) for v in std],
                "image_mean": _spread(self.image_mean_sum, self.image_mean_sumsq, self.images),
                "image_mean_histogram": {
                    "range": list(INTENSITY_RANGE),
                    "counts": [int(c) for c in self.image_means],
                },
            },
        }


def _spread(sums: list, sumsqs: list, count: int) -> dict:
    """Mean and standard deviation across images of a per-image quantity."""
    k = max(count, 1)
    means = [s / k for s in sums]
    stds = [math.sqrt(max(q / k - m * m, 0.0)) for q, m in zip(sumsqs, means, strict=True)]
    return {"mean": [round(v, 6) for v in means], "std": [round(v, 6) for v in stds]}


def _add(a: list, b: list) -> list:
    if not a:
        return list(b)
    if not b:
        return a
    return [x + y for x, y in zip(a, b, strict=True)]


def _count(counts: dict, key: str, by: int = 1) -> None:
    counts[key] = counts.get(key, 0) + by


def _extend(bounds: list, value) -> list:
    if value is None:
        return bounds
    low, high = bounds
    return [value if low is None else min(low, value), value if high is None else max(high, value)]
