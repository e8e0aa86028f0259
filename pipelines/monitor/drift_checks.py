"""The drift checks: a run's statistics against a baseline's, each check with its threshold and
its sampling noise (pure: no Beam, no files; the command is pipelines/monitor/drift.py).

    segscale drift --run out/pred       # runs these checks

The checks and their default thresholds (flags change them):
  class_shift      total variation distance between the predicted class pixel fractions and the
                   baseline's, 0..1 (half the summed absolute differences)           > 0.10
  confidence_drop  baseline mean top-class probability minus the run's              > 0.03
  intensity_shift  largest per-channel shift of the mean, in baseline standard
                   deviations                                                        > 0.5
  contrast_change  largest per-channel ratio of standard deviations (either way)     > 1.35
  size_outside     share of images whose height or width lies outside the
                   baseline's range (± one 9 % size bin)                             > 0.10
  new_kinds        share of images with a channel count or bit depth the baseline
                   never had                                                         > 0
class_shift, confidence_drop and intensity_shift must also exceed their sampling noise (three
standard errors of the difference, from the per-image spread on both sides; for class_shift a
conservative bound, summed over classes). With fewer than 5 images the class, confidence,
intensity and contrast checks are reported but not judged; a run with --tta is not judged on
confidence against a baseline without it (averaging views lowers the top-class probability). How they were chosen:
docs/monitoring.md (clean nightly batches stay well under them; the
shifts a person would want to hear about cross them).
"""

from __future__ import annotations

import math

import numpy as np

from segmodel.prediction_stats import size_bin

NOISE_Z = 3.0  # standard errors a shift must exceed: ~0.3 % false alarms per check and night

THRESHOLDS = {
    "class_shift": 0.10,
    "confidence_drop": 0.03,
    "intensity_shift": 0.5,
    "contrast_change": 1.35,
    "size_outside": 0.10,
    "new_kinds": 0.0,
}

EXPLAIN = {
    "class_shift": "predicted class mix differs from the baseline's",
    "confidence_drop": "the model is less sure than on the baseline",
    "intensity_shift": "images are brighter or darker than the baseline's",
    "contrast_change": "image contrast differs from the baseline's",
    "size_outside": "images of sizes the baseline never had",
    "new_kinds": "images with a channel count or bit depth the baseline never had",
}


def manifest_baseline(metadata: dict) -> dict:
    """The training data's profile, from an export's metadata.json (which holds the manifest)."""
    manifest = metadata.get("manifest")
    if not manifest:
        raise ValueError(
            "the model's metadata.json holds no training manifest (exported before it was "
            "recorded); compare with a run instead: --baseline previous"
        )
    stats = manifest["stats"]
    channels = metadata["channels"]
    reference = metadata.get("reference") or {}
    return {
        "name": f"training data of model {metadata['model_version']}",
        "images": sum(manifest["stats"]["records"].values()),
        # Predicted on the validation split when the export recorded it (the model's own bias
        # then cancels out), else the labels' frequencies.
        "class_fractions": reference.get("class_fractions") or stats["class_frequencies"],
        "confidence": reference.get("confidence"),
        "tta": "none",  # the export's reference pass
        "channels_found": sorted(stats.get("channels_found", {str(channels): 1})),
        "bit_depths": sorted(stats.get("bit_depths", {"8": 1})),
        "height": {"min": stats["image_height"]["min"], "max": stats["image_height"]["max"]},
        "width": {"min": stats["image_width"]["min"], "max": stats["image_width"]["max"]},
        "mean": [0.0] * channels,
        "std": [1.0] * channels,
        "image_mean_histogram": (reference.get("input") or {}).get("image_mean_histogram"),
        # Per-image spreads (for the sampling noise), known when the export recorded them.
        "spread_images": reference.get("images"),
        "class_spread": (reference.get("class_fractions_per_image") or {}).get("std"),
        "image_mean_spread": ((reference.get("input") or {}).get("image_mean") or {}).get("std"),
        "confidence_spread": ((reference.get("confidence") or {}).get("per_image") or {}).get(
            "std"
        ),
    }


def run_baseline(record: dict) -> dict:
    stats = record["stats"]
    if not stats.get("images"):
        raise ValueError(
            f"run {record['run_id']} segmented no images (all skipped or rejected); "
            "choose another baseline"
        )
    return profile(stats, f"run {record['run_id']}", record.get("tta"))


def profile(stats: dict, name: str, tta: str = "none") -> dict:
    """A run's statistics in the baseline's shape."""
    source = stats["input"]
    return {
        "name": name,
        "tta": tta or "none",
        "images": stats["images"],
        "class_fractions": stats["class_fractions"],
        "confidence": stats["confidence"],
        "channels_found": sorted(source["channels_found"]),
        "bit_depths": sorted(source["bit_depths"]),
        "height": source["height"],
        "width": source["width"],
        "mean": source["mean"],
        "std": source["std"],
        "image_mean_histogram": source["image_mean_histogram"],
        "size_bins": source.get("size_bins", {}),
        "channels_counts": source["channels_found"],
        "bit_depth_counts": source["bit_depths"],
        "spread_images": stats["images"],
        "class_spread": (stats.get("class_fractions_per_image") or {}).get("std"),
        "image_mean_spread": (source.get("image_mean") or {}).get("std"),
        "confidence_spread": (stats["confidence"].get("per_image") or {}).get("std"),
    }


def _outside_share(run: dict, baseline: dict) -> float:
    """Share of the run's images whose height or width bin lies outside the baseline's range
    widened by one bin on each side."""
    lows = {axis: size_bin(baseline[axis]["min"]) - 1 for axis in ("height", "width")}
    highs = {axis: size_bin(baseline[axis]["max"]) + 1 for axis in ("height", "width")}
    outside = 0
    for key, count in run["size_bins"].items():
        h, w = (int(v) for v in key.split(","))
        if not (lows["height"] <= h <= highs["height"] and lows["width"] <= w <= highs["width"]):
            outside += count
    return outside / max(run["images"], 1)


def standard_errors(run: dict, baseline: dict, key: str) -> list[float] | None:
    """Per-component standard error of the difference of two means over images, from the
    per-image spreads; None when the run's spread is unknown. A baseline without a known
    spread (old exports) adds no noise of its own."""
    spread = run.get(key)
    if not spread:
        return None
    n_run = max(run.get("spread_images") or 1, 1)
    n_base = max(baseline.get("spread_images") or 1, 1)
    base = baseline.get(key)
    # The run's spread as a sample estimate (n - 1), and never below the baseline's: under "no
    # drift" both sides share one spread, and a night of 1-3 images cannot estimate its own
    # (one image has none), which would turn ordinary nights into alarms.
    sample = [s * math.sqrt(n_run / (n_run - 1)) if n_run > 1 else 0.0 for s in spread]
    if base:
        run_side = [max(s, b) for s, b in zip(sample, base, strict=True)]
        return [
            math.sqrt(r * r / n_run + b * b / n_base) for r, b in zip(run_side, base, strict=True)
        ]
    return [s / math.sqrt(n_run) for s in sample]


MIN_IMAGES = 5  # below this, the distribution checks report but do not alarm


def compare(run: dict, baseline: dict, thresholds: dict | None = None) -> dict:
    """The checks of the module docstring: {check: {value, threshold, noise, drift, detail}}.

    A shift counts as drift when it crosses its threshold and, for the class mix, confidence
    and intensity (which vary from image to image), is also larger than sampling noise explains:
    three standard errors of the difference of the two sets' means ("noise"). With 15
    images a night, a batch of large objects is not an alarm; with 500 the same shift is."""
    limits = {**THRESHOLDS, **(thresholds or {})}
    checks = {}

    too_few = f"only {run['images']} images" if run["images"] < MIN_IMAGES else None
    run_tta, base_tta = run.get("tta") or "none", baseline.get("tta") or "none"
    tta_differs = f"run with --tta {run_tta}, baseline {base_tta}" if run_tta != base_tta else None

    def check(name, value, detail, noise=None, not_judged=None):
        over = value is not None and value > limits[name]
        if not_judged:
            detail += f" (not judged: {not_judged})"
        checks[name] = {
            "value": None if value is None else round(float(value), 4),
            "threshold": limits[name],
            "noise": None if noise is None else round(float(noise), 4),
            "drift": bool(not not_judged and over and (noise is None or value > noise)),
            "detail": detail,
        }

    p, q = run["class_fractions"], baseline["class_fractions"]
    errors = standard_errors(run, baseline, "class_spread")
    check(
        "class_shift",
        0.5 * sum(abs(a - b) for a, b in zip(p, q, strict=True)),
        "fractions " + _pairs(p, q),
        None if errors is None else 0.5 * NOISE_Z * sum(errors),
        too_few,
    )
    base_conf = (baseline.get("confidence") or {}).get("mean")
    run_conf = run["confidence"]["mean"]
    errors = standard_errors(run, baseline, "confidence_spread")
    check(
        "confidence_drop",
        None if base_conf is None else base_conf - run_conf,
        f"mean confidence {run_conf:.3f} vs {base_conf:.3f}"
        if base_conf is not None
        else "no baseline confidence (export the model again to record one)",
        None if errors is None or base_conf is None else NOISE_Z * errors[0],
        too_few or tta_differs,  # averaging over views lowers the top-class probability
    )
    shifts = [
        abs(m - bm) / max(bs, 1e-6)
        for m, bm, bs in zip(run["mean"], baseline["mean"], baseline["std"], strict=True)
    ]
    worst = int(np.argmax(shifts))
    errors = standard_errors(run, baseline, "image_mean_spread")
    check(
        "intensity_shift",
        shifts[worst],
        "per channel mean " + _pairs(run["mean"], baseline["mean"]),
        None if errors is None else NOISE_Z * errors[worst] / max(baseline["std"][worst], 1e-6),
        too_few,
    )
    ratios = [
        max(s / max(bs, 1e-6), bs / max(s, 1e-6))
        for s, bs in zip(run["std"], baseline["std"], strict=True)
    ]
    check(
        "contrast_change",
        max(ratios),
        "per channel std " + _pairs(run["std"], baseline["std"]),
        not_judged=too_few,
    )
    check(
        "size_outside",
        _outside_share(run, baseline),
        f"sizes {run['height']['min']}-{run['height']['max']} x "
        f"{run['width']['min']}-{run['width']['max']} vs "
        f"{baseline['height']['min']}-{baseline['height']['max']} x "
        f"{baseline['width']['min']}-{baseline['width']['max']}",
    )
    new = sum(
        n for k, n in run["channels_counts"].items() if k not in baseline["channels_found"]
    ) + sum(n for k, n in run["bit_depth_counts"].items() if k not in baseline["bit_depths"])
    check(
        "new_kinds",
        min(new / max(run["images"], 1), 1.0),
        f"channels {sorted(run['channels_counts'])} vs {baseline['channels_found']}, "
        f"bit depths {sorted(run['bit_depth_counts'])} vs {baseline['bit_depths']}",
    )
    return checks


def _pairs(run_values, base_values) -> str:
    return ", ".join(f"{a:.3f} vs {b:.3f}" for a, b in zip(run_values, base_values, strict=True))


def report(record: dict, baseline: dict, checks: dict) -> dict:
    drifted = [name for name, c in checks.items() if c["drift"]]
    stats = record["stats"]
    return {
        "run_id": record["run_id"],
        "model_version": record.get("model_version"),
        "images": stats["images"],
        "baseline": baseline["name"],
        "baseline_images": baseline["images"],
        "drift": bool(drifted),
        "drifted": drifted,
        "checks": checks,
        "note": (
            f"only {stats['images']} images segmented in this run: shifts are noisy"
            if stats["images"] < 20
            else ""
        ),
    }


def summary_lines(result: dict) -> list[str]:
    """The console lines of a drift result, also of a run that segmented nothing new (a
    quiet night, or a rerun that kept every mask): there is nothing to compare then."""
    if result.get("nothing_new"):
        return [f"No drift: {result['note']}"]
    head = (
        f"DRIFT in run {result['run_id']}: {', '.join(result['drifted'])}"
        if result["drift"]
        else f"No drift in run {result['run_id']}"
    )
    lines = [f"{head} ({result['images']} images vs {result['baseline']})"]
    for name, c in result["checks"].items():
        value = "n/a" if c["value"] is None else f"{c['value']:.3f}"
        if c["noise"] is not None:
            value += f" ±{c['noise']:.3f}"
        flag = "DRIFT" if c["drift"] else "ok"
        lines.append(
            f"  {flag:<5} {name:<16} {value:>7} (threshold {c['threshold']}): {c['detail']}"
        )
        if c["drift"]:
            lines.append(f"        {EXPLAIN[name]}")
    if result["note"]:
        lines.append(f"  note: {result['note']}")
    return lines
