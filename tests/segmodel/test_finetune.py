"""segmodel/finetune.py through `segscale train --init_from`: the fine-tune starts from the
parent's weights, keeps its contract, records its lineage and resumes like any run."""

import json

import numpy as np
import pytest

from segmodel import export, finetune, train
from segmodel.manifest import load_manifest
from segmodel.saving import load_model

pytestmark = pytest.mark.slow  # needs the session's trained and exported model


def test_the_fine_tune_starts_from_the_parents_weights(exported_model, ingested_dir):
    manifest = load_manifest(str(ingested_dir))
    metadata = finetune.parent_of(str(exported_model))
    cfg = finetune.finetune_config(metadata, [])
    parent_cfg = metadata["config"]
    assert cfg.to_dict()["model"] == parent_cfg["model"]  # the parent's architecture
    assert json.loads(json.dumps(cfg.to_dict()["data"])) == parent_cfg["data"]
    assert cfg.train.learning_rate == pytest.approx(
        parent_cfg["train"]["learning_rate"] * finetune.FINETUNE["learning_rate_scale"]
    )
    assert cfg.train.max_minutes == finetune.FINETUNE["max_minutes"] and cfg.train.epochs == 0
    model = finetune.initial_model(cfg, manifest, str(exported_model))
    parent = load_model(str(exported_model))
    x = np.random.default_rng(0).normal(size=(2, 32, 32, manifest["stats"]["channels"]))
    np.testing.assert_allclose(
        np.asarray(model(x, training=False)), np.asarray(parent(x, training=False)), atol=1e-5
    )


def test_init_from_trains_records_lineage_and_exports_it(exported_model, ingested_dir, tmp_path):
    workdir = tmp_path / "run-v2"
    argv = [
        f"--data_dir={ingested_dir}",
        f"--workdir={workdir}",
        f"--init_from={exported_model}",
        "--set=train.epochs=1",
        "--set=train.steps_per_epoch=2",
    ]
    assert train.main(argv) == 0
    state = json.loads((workdir / "state.json").read_text())
    parent = json.loads((exported_model / "metadata.json").read_text())
    assert state["init_from"]["model_version"] == parent["model_version"]
    assert state["dataset_version"] == 1 and state["epochs_done"] == 1
    config = json.loads((workdir / "config.json").read_text())
    assert config["model"] == parent["config"]["model"]
    # a rerun resumes from its own checkpoint (nothing left to do here), not from the parent
    assert train.main([*argv[:3], "--set=train.epochs=2", "--set=train.steps_per_epoch=2"]) == 0
    assert json.loads((workdir / "state.json").read_text())["epochs_done"] == 2
    metadata = export.export(str(workdir), str(tmp_path / "model-v2"))
    assert metadata["parent"]["model_version"] == parent["model_version"]
    assert metadata["dataset_version"] == 1


def test_a_dataset_that_does_not_fit_the_parent_is_refused(exported_model, ingested_dir, capsys):
    metadata = finetune.parent_of(str(exported_model))
    manifest = load_manifest(str(ingested_dir))
    shifted = {**manifest, "stats": {**manifest["stats"], "mean": [0.9, 0.9, 0.9]}}
    with pytest.raises(ValueError, match="normalisation"):
        finetune.check_contract(metadata, shifted, "m", "d")
    with pytest.raises(ValueError, match="3 classes vs 4"):
        finetune.check_contract(metadata, {**manifest, "num_classes": 4}, "m", "d")
