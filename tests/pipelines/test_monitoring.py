"""Run ledger, drift, review queue and test-time augmentation (issue 13)."""

import csv
import json
import os
import shutil

import numpy as np
import pytest
from builders import nightly
from PIL import Image

from pipelines.infer import pipeline as infer
from pipelines.ingest import pipeline as ingest
from pipelines.monitor import drift, drift_checks, ledger, review, runs
from segmodel import sample_data
from segmodel.prediction_stats import RunStats, image_stats

INPROCESS = ["--profile", "inprocess"]


# --- the ledger -------------------------------------------------------------------------------


def test_ledger_appends_replaces_same_run_and_survives_a_failed_write(tmp_path, monkeypatch):
    ledger.append_run(str(tmp_path), {"run_id": "a", "inputs": 1})
    ledger.append_run(str(tmp_path), {"run_id": "b", "inputs": 2})
    ledger.append_run(str(tmp_path), {"run_id": "b", "inputs": 3})  # a retried append
    assert [(r["run_id"], r["inputs"]) for r in ledger.read_runs(str(tmp_path))] == [
        ("a", 1),
        ("b", 3),
    ]
    before = (tmp_path / "runs.jsonl").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)  # the rename of a local append fails
    with pytest.raises(OSError, match="runs.jsonl"):
        ledger.append_run(str(tmp_path), {"run_id": "c", "inputs": 4})
    assert (tmp_path / "runs.jsonl").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["runs.jsonl"]  # no temporary left
    assert ledger.find_run(ledger.read_runs(str(tmp_path)), "previous", "x")["run_id"] == "a"
    with pytest.raises(ValueError, match="no run with id 'zz'"):
        ledger.find_run(ledger.read_runs(str(tmp_path)), "zz", str(tmp_path))
    monkeypatch.undo()
    with (tmp_path / "runs.jsonl").open("a") as f:
        f.write("{not json\n")  # a hand edit gone wrong: appending still works, keeps the line
    ledger.append_run(str(tmp_path), {"run_id": "d", "inputs": 5})
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    assert lines[2] == "{not json" and json.loads(lines[3])["run_id"] == "d"
    with pytest.raises(ValueError, match="line 3: not a JSON record"):
        ledger.read_runs(str(tmp_path))


def test_drift_checks_on_hand_made_profiles():
    base = {
        "name": "base",
        "images": 100,
        "class_fractions": [0.8, 0.2],
        "confidence": {"mean": 0.95},
        "channels_found": ["1"],
        "bit_depths": ["8"],
        "height": {"min": 100, "max": 120},
        "width": {"min": 100, "max": 120},
        "mean": [0.0],
        "std": [1.0],
    }
    run = {
        **base,
        "images": 10,
        "confidence": {"mean": 0.94},
        "size_bins": {"53,53": 10},  # 2**(53/8) ≈ 98.7 px: within one bin of 100
        "channels_counts": {"1": 10},
        "bit_depth_counts": {"8": 10},
    }
    quiet = drift_checks.compare(run, base)
    assert not any(c["drift"] for c in quiet.values()), quiet
    loud = drift_checks.compare(
        {
            **run,
            "class_fractions": [0.5, 0.5],
            "mean": [-0.8],
            "std": [2.0],
            "size_bins": {"72,72": 4, "53,53": 6},
            "channels_counts": {"1": 9, "3": 1},
        },
        base,
    )
    assert loud["class_shift"]["value"] == pytest.approx(0.3)
    assert loud["intensity_shift"]["value"] == pytest.approx(0.8)
    assert loud["contrast_change"]["value"] == pytest.approx(2.0)
    assert loud["size_outside"]["value"] == pytest.approx(0.4)
    assert loud["new_kinds"]["value"] == pytest.approx(0.1)
    assert [n for n, c in loud.items() if c["drift"]] == [
        "class_shift",
        "intensity_shift",
        "contrast_change",
        "size_outside",
        "new_kinds",
    ]


# --- three nights of a schedule ---------------------------------------------------------------


def _night(folder, night, count, seed, change=None):
    """`count` new images from the training data's generator into incoming/night<N>/."""
    scratch = folder.parent / f"gen{night}"
    sample_data.write_dataset(
        str(scratch), count, num_classes=3, size=(48, 48), vary_size=True, seed=seed, nested=False
    )
    target = folder / f"night{night}"
    target.mkdir(parents=True)
    for path in sorted((scratch / "images").iterdir()):
        image = np.asarray(Image.open(path))
        if change is not None:
            image = change(image)
        Image.fromarray(image).save(target / path.name)
    shutil.rmtree(scratch)


@pytest.mark.slow
def test_three_scheduled_nights_ledger_drift_and_review(tmp_path, exported_model, capsys):
    incoming, out = tmp_path / "incoming", tmp_path / "pred"

    def infer_night():
        return infer.run(
            [
                f"--model_dir={exported_model}",
                f"--input_pattern={incoming}/**",
                f"--output_dir={out}",
                "--skip_existing",
                *INPROCESS,
            ]
        )

    _night(incoming, 1, 16, seed=101)
    infer_night()
    assert drift.main(["--run", str(out)]) == 0, capsys.readouterr().out
    _night(incoming, 2, 16, seed=102)
    infer_night()
    assert drift.main(["--run", str(out)]) == 0, capsys.readouterr().out
    _night(incoming, 3, 16, seed=103, change=lambda image: 255 - image)  # inverted images
    infer_night()
    capsys.readouterr()
    assert drift.main(["--run", str(out)]) == drift.EXIT_DRIFT
    printed = capsys.readouterr().out
    assert "DRIFT" in printed and "intensity_shift" in printed
    assert drift.main(["--run", str(out), "--baseline", "previous"]) == drift.EXIT_DRIFT

    records = ledger.read_runs(str(out))
    assert [(r["segmented"], r["skipped"], r["inputs"]) for r in records] == [
        (16, 0, 16),
        (16, 16, 32),
        (16, 32, 48),
    ]
    assert len({r["run_id"] for r in records}) == 3
    assert all(r["stats"]["images"] == 16 for r in records)
    latest = records[-1]
    result = json.loads((out / "drift" / latest["run_id"] / "drift.json").read_text())
    assert result["drift"] and "intensity_shift" in result["drifted"]
    assert result["checks"]["intensity_shift"]["value"] > 1.0
    page = (out / "drift" / latest["run_id"] / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 3

    capsys.readouterr()
    assert runs.main([str(out)]) == 0
    assert capsys.readouterr().out.count("segmented") == 3

    # Review queue of the third night: the least sure images, ready for ingest.
    assert review.main(["--run", str(out), "--top", "5"]) == 0
    queue_dir = out / "review" / latest["run_id"]
    rows = list(csv.DictReader((queue_dir / "queue.csv").open()))
    assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4, 5]
    scores = [float(r["score_uncertain_fraction"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    night3 = [
        json.loads(line)
        for f in out.glob("predictions-*.jsonl")
        for line in f.read_text().splitlines()
    ]
    night3 = [r for r in night3 if not r["skipped"]]
    assert all(r["path"].startswith("night3/") for r in night3)
    assert scores[0] == pytest.approx(max(r["uncertain_fraction"] for r in night3), abs=1e-6)
    assert all(r["image"].startswith("night3/") for r in rows)
    assert (queue_dir / "index.html").read_text().count("data:image/png;base64,") == 15
    summary = ingest.run(
        [
            f"--images_dir={queue_dir / 'images'}",
            f"--masks_dir={queue_dir / 'masks'}",
            f"--output_dir={tmp_path / 'round2'}",
            "--num_classes=3",
            *INPROCESS,
        ]
    )
    assert summary["counts"]["accepted"] == 5, summary

    # A person corrects a mask; the queue written again (a retried task) keeps the correction.
    corrected = queue_dir / rows[0]["review_mask"]
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(corrected)
    before = corrected.read_bytes()
    assert review.main(["--run", str(out), "--top", "5"]) == 0
    assert corrected.read_bytes() == before
    assert "kept 10 files already there" in capsys.readouterr().out


@pytest.mark.slow
def test_nightly_script_exit_codes_quiet_drift_and_nothing_new(tmp_path, exported_model):
    """runners/schedule/nightly.sh as cron runs it: 0 on a clean night, 3 on a shifted one (the
    review queue written all the same), 0 on a night with nothing new."""
    incoming, out = tmp_path / "incoming", tmp_path / "pred"
    night = nightly(exported_model, incoming, out, REVIEW_TOP="3")

    _night(incoming, 1, 16, seed=101)
    first = night()
    assert first.returncode == 0 and "No drift" in first.stdout, first.stdout
    _night(incoming, 2, 16, seed=103, change=lambda image: image // 4)  # much darker
    second = night()
    assert second.returncode == 3 and "DRIFT" in second.stdout, second.stdout
    third = night()
    assert third.returncode == 0 and "nothing to compare" in third.stdout, third.stdout
    runs_ = ledger.read_runs(str(out))
    assert [r["segmented"] for r in runs_] == [16, 16, 0]
    for record in runs_[:2]:
        assert (
            len(list(csv.DictReader((out / "review" / record["run_id"] / "queue.csv").open()))) == 3
        )


@pytest.mark.slow
def test_a_run_with_nothing_new_through_every_monitor_call(tmp_path, exported_model, capsys):
    """A rerun that keeps every mask (--skip_existing) segments nothing: the demo's own
    monitoring call, its report section and the library calls say so instead of crashing."""
    from pipelines import demo_loop

    incoming, out = tmp_path / "incoming", tmp_path / "pred"
    _night(incoming, 1, 6, seed=101)
    for _ in range(2):
        infer.run(
            [
                f"--model_dir={exported_model}",
                f"--input_pattern={incoming}/**",
                f"--output_dir={out}",
                "--skip_existing",
                *INPROCESS,
            ]
        )
    assert [r["segmented"] for r in ledger.read_runs(str(out))] == [6, 0]
    capsys.readouterr()
    monitoring = demo_loop.monitor(str(out))  # the demo's step 7
    printed = capsys.readouterr().out
    assert "No drift: run" in printed and "segmented no new images" in printed
    assert monitoring["drift"]["nothing_new"] and monitoring["queued"] == []
    lines = drift_checks.summary_lines(monitoring["drift"])
    assert len(lines) == 1 and "nothing to compare" in lines[0]
    ((title, body),) = demo_loop.monitoring_sections(monitoring, str(tmp_path / "report"))
    assert "nothing to compare" in body and "drift report" not in body
    assert "review queue" in body
    assert demo_loop.drift_fact(monitoring["drift"]).startswith("nothing new to compare")
    assert drift.main(["--run", str(out)]) == 0
    assert "No drift: run" in capsys.readouterr().out


def _stats_of(rng, count, k=3, brightness=0.0):
    """RunStats summary of `count` images drawn from one distribution (class mix, confidence,
    intensity), for false-alarm checks without a model."""
    stats = RunStats()
    for _ in range(count):
        fractions = rng.dirichlet([8.0, 3.0, 1.0][:k])
        h = w = 32
        probs = np.full((h, w, k), 0.02, np.float32)
        probs[..., 0] = rng.uniform(0.85, 0.99)
        x = rng.normal(brightness + rng.normal(0, 0.3), 1.0, (h, w, 1)).astype(np.float32)
        stats.add(
            {
                "height": h,
                "width": w,
                "class_fractions": list(fractions),
                "mean_confidence": float(probs[..., 0].mean()),
                "skipped": False,
                **image_stats(probs, x, 1, 8),
            }
        )
    return stats.summary()


@pytest.mark.parametrize("min_images", [drift_checks.MIN_IMAGES, 1])
def test_small_nights_of_ordinary_images_do_not_alarm(min_images, monkeypatch):
    """Nights of 1-8 images from the baseline's own distribution stay quiet, also with every
    check judged (min_images 1): the noise margin uses the baseline's spread where a night is
    too small to estimate its own (without that, 15 of these 100 nights alarmed). A real shift
    on 8 images still alarms."""
    monkeypatch.setattr(drift_checks, "MIN_IMAGES", min_images)
    rng = np.random.default_rng(7)
    baseline = drift_checks.profile(_stats_of(rng, 64), "reference")
    alarms = 0
    for count in (1, 2, 3, 5, 8) * 20:
        night = drift_checks.profile(_stats_of(rng, count), "night")
        alarms += any(c["drift"] for c in drift_checks.compare(night, baseline).values())
    assert alarms <= 2, alarms  # of 100 nights
    darker = drift_checks.profile(_stats_of(rng, 8, brightness=-1.5), "night")
    assert drift_checks.compare(darker, baseline)["intensity_shift"]["drift"]


def test_confidence_is_not_judged_across_tta_modes_and_few_images_are_reported_only():
    rng = np.random.default_rng(3)
    baseline = drift_checks.profile(_stats_of(rng, 64), "reference")
    night = drift_checks.profile(_stats_of(rng, 12), "night", tta="d4")
    night["confidence"] = {**night["confidence"], "mean": 0.5}  # far below the baseline
    checks = drift_checks.compare(night, baseline)
    assert not checks["confidence_drop"]["drift"]
    assert "not judged: run with --tta d4" in checks["confidence_drop"]["detail"]
    tiny = drift_checks.profile(_stats_of(rng, 2, brightness=-3.0), "night")
    checks = drift_checks.compare(tiny, baseline)
    assert checks["intensity_shift"]["value"] > 2 and not checks["intensity_shift"]["drift"]
    assert "only 2 images" in checks["intensity_shift"]["detail"]


def test_previous_baseline_skips_quiet_nights_and_the_model_must_match():
    runs_ = [
        {"run_id": "a", "stats": {"images": 4}},
        {"run_id": "b", "stats": {"images": 0}},
        {"run_id": "c", "stats": {"images": 3}},
    ]
    assert drift.previous_run(runs_, runs_[2], "out")["run_id"] == "a"
    with pytest.raises(ValueError, match="no run before a segmented"):
        drift.previous_run(runs_, runs_[0], "out")
    with pytest.raises(ValueError, match="used model v1, but m holds model v2"):
        drift.check_same_model({"model_version": "v2"}, {"run_id": "c", "model_version": "v1"}, "m")
