"""segmodel/promote.py: the paired bootstrap, the contract check, and `segscale promote`
refusing a worse candidate and promoting a better one, with the history recorded."""

import json
import shutil

import numpy as np
import pytest

from segmodel import export, promote, train


def _cms(ious_per_image, n=40, k=2, seed=0):
    """Per-image confusion matrices whose pooled IoU is about `ious_per_image`."""
    rng = np.random.default_rng(seed)
    cms = []
    for _ in range(n):
        cm = np.zeros((k, k), np.int64)
        for c in range(k):
            hit = rng.binomial(100, ious_per_image)
            cm[c, c] = hit
            cm[c, (c + 1) % k] = 100 - hit
        cms.append(cm)
    return np.stack(cms)


def test_the_bootstrap_interval_separates_a_real_gap_and_not_noise():
    better, worse = _cms(0.9, seed=1), _cms(0.6, seed=2)
    gap = promote.paired_bootstrap(worse, better, 500, 0)["mean_iou"]
    assert gap["difference"] < -0.2 and gap["interval"][1] < 0  # clearly worse
    same = promote.paired_bootstrap(_cms(0.8, seed=3), _cms(0.8, seed=4), 500, 0)["mean_iou"]
    assert same["interval"][0] < 0 < same["interval"][1]  # noise: the interval spans zero
    # Independent check of the point estimate: IoU from the pooled matrix by hand.
    pooled = better.sum(0)
    by_hand = np.mean(
        [pooled[c, c] / (pooled[c].sum() + pooled[:, c].sum() - pooled[c, c]) for c in range(2)]
    )
    assert promote.paired_bootstrap(better, better, 10, 0)["mean_iou"][
        "candidate"
    ] == pytest.approx(by_hand)


def test_another_class_list_or_input_is_refused():
    norm = {"mean": [0.0] * 3, "std": [1.0] * 3}
    base = {"num_classes": 3, "class_names": ["a", "b", "c"], "channels": 3, "bit_depth": 8}
    base["normalization"] = norm
    promote.check_contract(dict(base), dict(base))
    for change in ({"class_names": ["a", "b", "x"]}, {"channels": 1}, {"bit_depth": 16}):
        with pytest.raises(ValueError, match="does not take the same inputs"):
            promote.check_contract({**base, **change}, base)


@pytest.mark.slow
def test_promote_refuses_a_worse_candidate_and_promotes_a_better_one(
    exported_model, ingested_dir, tmp_path, capsys
):
    # A worse model: the same recipe, barely trained (one step at a tiny learning rate).
    run = tmp_path / "untrained"
    overrides = ["train.epochs=1", "train.steps_per_epoch=1", "train.learning_rate=0.00001"]
    train.train(str(ingested_dir), str(run), "smoke", overrides, verbose=0)
    export.export(str(run), str(tmp_path / "worse"))
    current = tmp_path / "current"
    argv = ["--current", str(current), "--data_dir", str(ingested_dir), "--split", "test"]
    # the first promotion: nothing to beat yet
    assert promote.main(["--candidate", str(tmp_path / "worse"), *argv]) == 0
    # a better candidate replaces it
    assert promote.main(["--candidate", str(exported_model), *argv]) == 0
    out = capsys.readouterr().out
    assert "mean IoU  candidate" in out and "Promoted" in out
    installed = json.loads((current / "metadata.json").read_text())
    assert (
        installed["model_version"]
        == json.loads((exported_model / "metadata.json").read_text())["model_version"]
    )
    # the worse one is refused, with one line saying why, and the current model stays
    assert promote.main(["--candidate", str(tmp_path / "worse"), *argv]) == promote.EXIT_REFUSED
    assert "refused: mean IoU difference" in capsys.readouterr().err
    assert json.loads((current / "metadata.json").read_text()) == installed
    history = [json.loads(line) for line in (current / "history.jsonl").read_text().splitlines()]
    assert [h["decision"] for h in history] == ["promoted", "promoted", "refused"]
    assert history[-1]["mean_iou"]["interval"][1] < 0
    assert not (tmp_path / "current.promoting").exists()
    shutil.rmtree(current)
