"""The loop end to end, as cron runs it (runners/schedule/nightly.sh with RETRAIN=1): segment,
review queue, a person's corrections appended to the training data, a fine-tune from the
current model, and a promotion decision recorded in the current model's folder."""

import json
import shutil

import pytest
from builders import nightly

from pipelines.monitor import ledger


@pytest.mark.slow
def test_the_nightly_loop_learns_from_corrections(
    tmp_path, synthetic_dir, ingested_dir, exported_model
):
    current = tmp_path / "models" / "current"
    shutil.copytree(exported_model, current)
    train_data = tmp_path / "train"
    shutil.copytree(ingested_dir, train_data)  # the dataset the current model was trained on
    incoming, out = tmp_path / "incoming", tmp_path / "pred"
    shutil.copytree(synthetic_dir / "images", incoming)
    night = nightly(
        current,
        incoming,
        out,
        REVIEW_TOP="4",
        RETRAIN="1",
        TRAIN_DATA=str(train_data),
        GOLD_DATA=str(ingested_dir),
        TRAIN_FLAGS="--set train.epochs=1 --set train.steps_per_epoch=2",
    )

    first = night()
    assert "no corrected review batch" in first.stdout
    (run,) = ledger.read_runs(str(out))
    queue = out / "review" / run["run_id"]
    # The person: the true masks over the predicted ones, then "corrected".
    corrected = 0
    for mask in (queue / "masks").rglob("*.png"):
        relative = mask.relative_to(queue / "masks")
        shutil.copyfile(synthetic_dir / "masks" / relative, mask)
        corrected += 1
    assert corrected == 4
    (queue / "corrected").write_text("")
    version_before = json.loads((current / "metadata.json").read_text())["model_version"]

    second = night()
    manifest = json.loads((train_data / "manifest.json").read_text())
    assert manifest["version"] == 2
    batch = manifest["batches"][1]
    assert batch["images_dir"] == str(queue / "images") and batch["counts"]["accepted"] == 4
    assert batch["superseded"] == 4  # the same images were in the training data
    assert (queue / "appended").exists()
    history = [json.loads(line) for line in (current / "history.jsonl").read_text().splitlines()]
    assert len(history) == 1 and history[0]["decision"] in ("promoted", "refused")
    assert history[0]["current"]["model_version"] == version_before
    (model,) = (out / "retrain").glob("model-*")
    metadata = json.loads((model / "metadata.json").read_text())
    assert metadata["parent"]["model_version"] == version_before
    assert metadata["dataset_version"] == 2
    installed = json.loads((current / "metadata.json").read_text())["model_version"]
    expected = metadata["model_version"] if history[0]["decision"] == "promoted" else version_before
    assert installed == expected, second.stdout

    third = night()  # nothing corrected since: nothing appended or trained
    assert "no corrected review batch" in third.stdout
    assert (out / "retrain" / "decided_version").read_text().strip() == "2"
    assert json.loads((train_data / "manifest.json").read_text())["version"] == 2
