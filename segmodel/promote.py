"""Promotion: a candidate model replaces the current one only when it is not worse on a gold set.

    segscale promote --candidate out/model-v2 --current models/current --data_dir gold/data

Both models are evaluated through segmodel.evaluate's own path (whole images at native
resolution, the same confusion matrix), on the same split of a fixed gold dataset. The
difference candidate − current of the mean IoU (and of each class's IoU) gets a 95 % paired
bootstrap interval over images: the same resampled images score both models, so what the images
have in common cancels. Decision: promote unless the whole interval of the mean-IoU difference
lies below zero, i.e. unless the candidate is worse beyond the noise of this gold set. Then the
candidate's export is copied into the --current folder, whole (staged, then swapped), which is
where `segscale infer --model_dir` and nightly.sh read the current model. Every decision,
promoted or refused, is a line of CURRENT/history.jsonl.

Refused before anything is evaluated: a candidate with another class list or input contract
(classes, channels, bit depth). Exit codes: 0 promoted, 1 refused (worse), 2 bad input.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import warnings

import numpy as np

from segmodel import commands, files

HISTORY_NAME = "history.jsonl"
EXIT_REFUSED = 1


def check_contract(candidate: dict, current: dict) -> None:
    """The candidate must predict the current model's classes from inputs made the same way
    (each model brings its own normalisation): segmodel/contract.py."""
    from segmodel.contract import ModelContract

    differs = ModelContract.from_metadata(candidate).compatible(
        ModelContract.from_metadata(current), normalization=False
    )
    if differs:
        raise ValueError(
            "the candidate does not take the same inputs or give the same classes as the "
            "current model: " + "; ".join(differs)
        )


def check_gold(metadata: dict, manifest: dict, data_dir: str) -> None:
    """The gold dataset must label the models' classes."""
    names, theirs = metadata.get("class_names"), manifest.get("class_names")
    if manifest["num_classes"] != metadata["num_classes"] or (names and theirs and names != theirs):
        raise ValueError(
            f"--data_dir {data_dir} labels {manifest['num_classes']} classes {theirs}; the "
            f"models predict {metadata['num_classes']} {names}"
        )


def _ious(cm: np.ndarray) -> np.ndarray:
    """Per-class IoU of a [..., K, K] confusion matrix; NaN for a class absent from both."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    union = cm.sum(-1) + cm.sum(-2) - tp
    return np.where(union > 0, tp / np.maximum(union, 1), np.nan)


def paired_bootstrap(cand: np.ndarray, cur: np.ndarray, samples: int, seed: int) -> dict:
    """cand, cur: per-image confusion matrices [N, K, K] of the same images. Returns the
    differences (candidate − current) of mean IoU and per-class IoU, each with a 95 %
    interval from `samples` resamplings of the images."""
    n = len(cand)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=samples).astype(np.float64)  # [S, N]
    boot_cand = _ious(np.tensordot(weights, cand.astype(np.float64), axes=1))  # [S, K]
    boot_cur = _ious(np.tensordot(weights, cur.astype(np.float64), axes=1))
    with warnings.catch_warnings():  # an all-NaN row: a resample in which no class is present
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_diff = np.nanmean(boot_cand, -1) - np.nanmean(boot_cur, -1)
    class_diff = boot_cand - boot_cur
    point_cand, point_cur = _ious(cand.sum(0)), _ious(cur.sum(0))

    def interval(values):
        values = values[~np.isnan(values)]
        if not len(values):
            return [None, None]
        return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]

    return {
        "mean_iou": {
            "candidate": float(np.nanmean(point_cand)),
            "current": float(np.nanmean(point_cur)),
            "difference": float(np.nanmean(point_cand) - np.nanmean(point_cur)),
            "interval": interval(mean_diff),
        },
        "per_class": [
            {
                "candidate": None if np.isnan(a) else float(a),
                "current": None if np.isnan(b) else float(b),
                "difference": None if np.isnan(a - b) else float(a - b),
                "interval": interval(class_diff[:, k]),
            }
            for k, (a, b) in enumerate(zip(point_cand, point_cur, strict=True))
        ],
    }


def promote(candidate: str, current: str, data_dir: str, split="test", samples=2000, seed=0):
    """Evaluates both, decides, and promotes when the candidate is not worse beyond the noise.
    Returns the decision record (also appended to CURRENT/history.jsonl)."""
    from segmodel.evaluate import evaluate
    from segmodel.manifest import load_manifest
    from segmodel.saving import METADATA_NAME, load_metadata

    cand_meta = load_metadata(candidate)
    if not files.is_remote(current):
        files.recover_folder(current)  # a promotion killed mid-swap: the old model back
    if not files.exists(files.join(current, METADATA_NAME)):  # the first model: nothing to beat
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "decision": "promoted",
            "candidate": {"folder": candidate, "model_version": cand_meta["model_version"]},
            "current": None,
            "reason": f"{current} held no model yet",
        }
        _install(candidate, current, _history(current) + [record])
        return record
    cur_meta = load_metadata(current)
    check_contract(cand_meta, cur_meta)
    check_gold(cur_meta, load_manifest(data_dir), data_dir)
    per_image = {"candidate": [], "current": []}
    for name, folder, metadata in (
        ("candidate", candidate, cand_meta),
        ("current", current, cur_meta),
    ):  # each model sees the gold images as bulk inference would give them to it
        evaluate(
            folder,
            data_dir,
            split,
            max_overlays=0,
            per_image=per_image[name],
            model_inputs=metadata,
        )
    comparison = paired_bootstrap(
        np.stack(per_image["candidate"]), np.stack(per_image["current"]), samples, seed
    )
    low, high = comparison["mean_iou"]["interval"]
    promoted = high is not None and high >= 0
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "decision": "promoted" if promoted else "refused",
        "candidate": {"folder": candidate, "model_version": cand_meta["model_version"]},
        "current": {"folder": current, "model_version": cur_meta["model_version"]},
        "gold": {"data_dir": data_dir, "split": split, "images": len(per_image["current"])},
        "class_names": cur_meta.get("class_names"),
        "bootstrap": {"samples": samples, "seed": seed},
        **comparison,
        "reason": (
            f"mean IoU difference {comparison['mean_iou']['difference']:+.4f}, 95 % interval "
            f"[{low:+.4f}, {high:+.4f}]"
            + (
                ": not worse beyond the noise"
                if promoted
                else ": worse beyond the noise of this gold set"
            )
        ),
    }
    history = _history(current) + [record]
    if promoted:
        _install(candidate, current, history)
    else:
        files.write_atomically(files.join(current, HISTORY_NAME), _lines(history))
    return record


def _history(folder: str) -> list[dict]:
    path = files.join(folder, HISTORY_NAME)
    if not files.exists(folder) or not files.exists(path):
        return []
    return [json.loads(line) for line in files.read_text(path).splitlines() if line.strip()]


def _lines(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def _install(candidate: str, current: str, history: list[dict]) -> None:
    """The candidate's export becomes CURRENT's content, whole: copied into a staging folder
    beside it with the history, then swapped in (local folders)."""
    if files.is_remote(current):
        raise ValueError(f"--current {current}: promotion writes a local folder")
    staging = f"{current.rstrip('/')}.promoting"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(candidate, staging, ignore=shutil.ignore_patterns(HISTORY_NAME))
    files.write_atomically(os.path.join(staging, HISTORY_NAME), _lines(history))
    files.replace_folder(staging, current)


def describe(record: dict) -> list[str]:
    """The console lines: both mean IoUs, per-class differences with intervals, the decision."""
    m = record["mean_iou"]
    lines = [
        f"gold {record['gold']['data_dir']} [{record['gold']['split']}], "
        f"{record['gold']['images']} images",
        f"  mean IoU  candidate {m['candidate']:.4f}  current {m['current']:.4f}  "
        f"difference {m['difference']:+.4f}  95% [{m['interval'][0]:+.4f}, {m['interval'][1]:+.4f}]",
    ]
    names = record.get("class_names") or [f"class_{i}" for i in range(len(record["per_class"]))]
    for name, c in zip(names, record["per_class"], strict=True):
        if c["difference"] is None:
            lines.append(f"  {name:<12} absent from the gold split")
            continue
        low, high = c["interval"]
        lines.append(
            f"  {name:<12} {c['candidate']:.4f} vs {c['current']:.4f}  {c['difference']:+.4f}  "
            f"95% [{low:+.4f}, {high:+.4f}]"
        )
    return lines


def main(argv=None) -> int:
    args = commands.promote_parser().parse_args(argv)
    try:
        record = promote(
            args.candidate, args.current, args.data_dir, args.split, args.samples, args.seed
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if record["current"] is not None:
        print("\n".join(describe(record)))
    if record["decision"] == "promoted":
        print(
            f"Promoted {record['candidate']['model_version']} to {args.current}: {record['reason']}"
        )
        return 0
    print(f"refused: {record['reason']}", file=sys.stderr)
    return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
