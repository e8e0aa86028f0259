"""Fine-tuning from an exported model: `segscale train --init_from MODEL_DIR`.

    segscale train --data_dir out/data --workdir out/run-v2 --init_from out/model

The next model of the loop (review queue → corrected masks → `ingest --append` → fine-tune →
`segscale promote`) starts from the current one instead of from scratch:
- the architecture and the training recipe come from the parent's metadata (its saved config),
  not from a fresh plan: the weights must fit, and the plan that made them is known good;
- the dataset must keep the parent's contract: the same classes, channels and normalisation
  (a dataset grown with `ingest --append` keeps its statistics, so this holds), otherwise the
  weights would see inputs on another scale;
- its own schedule: a short time budget, a short warm-up and a lower peak learning rate than
  from scratch, so the first steps do not throw away what the parent learnt (FINETUNE below);
  `--set train.X=...` still overrides each;
- state.json (and so the export's metadata) records the parent model version and the dataset
  version it was tuned on. A killed fine-tune resumes like any run: from its own checkpoint.
"""

from __future__ import annotations

from segmodel import config as config_lib

# Fine-tuning defaults, relative to the parent's recipe (a fraction of its peak learning rate,
# a fraction of an epoch of warm-up, and a short budget of its own).
FINETUNE = {
    "learning_rate_scale": 0.3,
    "warmup_epochs": 0.25,
    "max_minutes": 5.0,
}


def parent_of(model_dir: str) -> dict:
    from segmodel.saving import load_metadata

    metadata = load_metadata(model_dir)
    if "config" not in metadata:
        raise ValueError(f"--init_from {model_dir}: its metadata.json has no training config")
    return metadata


def check_contract(metadata: dict, manifest: dict, model_dir: str, data_dir: str) -> None:
    """ValueError when the dataset does not fit the parent model (classes, inputs, input
    normalisation): segmodel/contract.py."""
    from segmodel.contract import ModelContract

    problems = ModelContract.from_metadata(metadata).compatible(
        ModelContract.from_manifest(manifest)
    )
    if problems:
        raise ValueError(
            f"--init_from {model_dir} does not fit --data_dir {data_dir}: "
            + "; ".join(problems)
            + " (a dataset grown with ingest --append keeps the parent's statistics)"
        )


def finetune_config(metadata: dict, overrides: list[str]) -> config_lib.Config:
    """The parent's config with the fine-tuning schedule, then `overrides` (--set)."""
    parent = config_lib.from_dict(metadata["config"])
    schedule = [
        "train.epochs=0",
        f"train.max_minutes={FINETUNE['max_minutes']}",
        f"train.learning_rate={parent.train.learning_rate * FINETUNE['learning_rate_scale']}",
        f"train.warmup_epochs={FINETUNE['warmup_epochs']}",
    ]
    return config_lib.override(parent, schedule + list(overrides))


def lineage(metadata: dict, model_dir: str, manifest: dict) -> dict:
    """What state.json (and the export's metadata) records of the parent."""
    return {
        "model_dir": model_dir,
        "model_version": metadata["model_version"],
        "dataset_version": manifest.get("version", 1),
    }


def initial_model(cfg, manifest: dict, model_dir: str):
    """The U-Net of `cfg`, built under the current dtype policy, holding the parent's weights
    (the export is float32; a mixed-precision fine-tune builds its own layers and takes the
    weights, which are float32 variables either way)."""
    from segmodel.saving import load_model
    from segmodel.unet import build_unet

    parent = load_model(model_dir)
    model = build_unet(cfg.model, manifest["num_classes"], manifest["stats"]["channels"])
    model.set_weights(parent.get_weights())
    return model
