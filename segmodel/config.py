"""Experiment configuration: frozen dataclasses, named presets, `--set key=value` overrides.

    python -m segmodel.train --data_dir out/data --workdir out/run --preset smoke --set train.epochs=3

Presets: `default` is planned from the dataset (segmodel/plan.py: patch, depth, batch, class
weights from manifest.json; a time budget in minutes), for this machine's device; `gpu` is the
same plan for a GPU; `smoke()` is the seconds-long fixed variant that drives the tests. The
dataclass defaults below are the fallbacks a plan starts from. The resolved config is saved as
`config.json` in the run folder and reloaded on resume.
"""

from __future__ import annotations

import dataclasses
import json
import typing


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    depth: int = 4  # 4 poolings: receptive field ~140 px, inputs padded to a multiple of 16
    base_filters: int = 16  # doubles per level: 16-32-64-128-256, ~1.9 M parameters
    norm: str = "batch"  # "batch" | "group" (group: no running statistics; see plan.py)
    groups: int = 8  # GroupNormalization groups, when norm="group"
    norm_momentum: float = 0.99  # BatchNorm moving-average momentum (horizon 1/(1-m) steps)
    dropout: float = 0.1  # in the bottleneck only
    upsample: str = "transpose"  # "transpose" | "resize" (resize+conv avoids checkerboards)
    residual: bool = False  # residual double-conv blocks


@dataclasses.dataclass(frozen=True)
class DataConfig:
    patch_size: int = 128  # training crops; evaluation uses whole images
    batch_size: int = 16
    shuffle_buffer: int = 512  # records, after decode; bounded memory
    scale_range: tuple[float, float] = (0.75, 1.25)  # random zoom before cropping
    flips: bool = True
    rotate90: bool = True
    brightness: float = 0.1  # in normalised units (std), image only
    contrast: float = 0.1  # ± fraction, image only
    cache_decoded: bool = False  # cache decoded records in memory (small datasets only)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30  # 0: as many as fit in max_minutes (the schedule is fitted to the budget)
    steps_per_epoch: int = 0  # 0: one pass over the training records
    learning_rate: float = 3e-3  # peak, after warm-up
    warmup_epochs: float = 1.0
    weight_decay: float = 1e-4  # AdamW
    loss: str = "ce_dice"  # "ce" | "dice" | "focal" | "ce_dice"
    class_weights: str = "none"  # "none" | "inverse_sqrt" (from the manifest's pixel counts)
    # Early stopping counts optimizer steps: stop after this many steps without a better val
    # mean IoU (0: never), not before early_stopping_min_steps, and never while BatchNorm's
    # moving averages are younger than 5 horizons (validation would judge unsettled statistics).
    early_stopping_steps: int = 0
    early_stopping_min_steps: int = 0
    mixed_precision: bool = False
    mixed_dtype: str = "float16"  # "float16" (GPUs) | "bfloat16" (CPUs with bf16 units, TPUs)
    xla: bool = False
    seed: int = 0
    val_max_images: int = 0  # 0: all validation images each epoch
    # Wall-clock budget. With epochs=0 the schedule is planned to end within it; with a fixed
    # number of epochs it only stops the run after the epoch that crosses it. 0: no budget.
    max_minutes: float = 0


@dataclasses.dataclass(frozen=True)
class Config:
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def smoke() -> Config:
    """Seconds, for tests: a 2-level U-Net with 4 filters on 32² patches."""
    return Config(
        model=ModelConfig(depth=2, base_filters=4, dropout=0.0),
        data=DataConfig(patch_size=32, batch_size=4, shuffle_buffer=16),
        train=TrainConfig(epochs=2, steps_per_epoch=3, warmup_epochs=0.5),
    )


# Planned presets need the manifest (segmodel/plan.py); fixed ones are functions of nothing.
PLANNED = {"default": None, "gpu": "gpu"}  # name -> device (None: this machine's)
PRESETS = {"smoke": smoke}
PRESET_NAMES = sorted([*PLANNED, *PRESETS])


def _convert(text: str, annotation):
    """Parses an override value to the field's type."""
    origin = typing.get_origin(annotation)
    if annotation in (bool, "bool"):
        if text.lower() in ("1", "true", "yes"):
            return True
        if text.lower() in ("0", "false", "no"):
            return False
        raise ValueError(f"expected true/false, got {text!r}")
    if annotation in (int, "int"):
        return int(text)
    if annotation in (float, "float"):
        return float(text)
    if origin is tuple or str(annotation).startswith("tuple"):
        return tuple(float(v) for v in text.strip("()").split(","))
    return text


def override(config: Config, assignments: list[str]) -> Config:
    """Applies `section.field=value` overrides.

    Raises:
      ValueError: naming the unknown key or the value that does not parse.
    """
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        section_name, _, field_name = key.strip().partition(".")
        if not sep or not field_name:
            raise ValueError(f"--set {assignment!r}: expected section.field=value")
        section = getattr(config, section_name, None)
        if not dataclasses.is_dataclass(section):
            raise ValueError(
                f"--set {assignment!r}: no section {section_name!r} (model, data, train)"
            )
        fields = {f.name: f for f in dataclasses.fields(section)}
        if field_name not in fields:
            raise ValueError(
                f"--set {assignment!r}: {section_name} has no field {field_name!r}; "
                f"fields: {sorted(fields)}"
            )
        hints = typing.get_type_hints(type(section))
        try:
            parsed = _convert(value.strip(), hints[field_name])
        except ValueError as e:
            raise ValueError(f"--set {assignment!r}: {e}") from None
        config = dataclasses.replace(
            config, **{section_name: dataclasses.replace(section, **{field_name: parsed})}
        )
    return config


def from_dict(data: dict) -> Config:
    """Rebuilds a Config saved with to_dict() (unknown keys are an error)."""
    return Config(
        model=ModelConfig(**data["model"]),
        data=DataConfig(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in data["data"].items()}
        ),
        train=TrainConfig(**data["train"]),
    )


def resolve(
    preset: str,
    assignments: list[str],
    manifest: dict | None = None,
    device="cpu",
    cpu_bf16: bool = False,
):
    """(Config, Plan or None): the preset (planned from `manifest` for planned presets) with the
    `--set` overrides applied on top. `cpu_bf16`: see segmodel.plan.cpu_has_bf16."""
    if preset in PLANNED:
        if manifest is None:
            raise ValueError(f"--preset {preset!r} is planned from a dataset: pass its manifest")
        from segmodel.plan import plan

        planned = plan(manifest, PLANNED[preset] or device, cpu_bf16=cpu_bf16)
        return override(planned.config, assignments), planned
    if preset not in PRESETS:
        raise ValueError(f"--preset {preset!r}: known presets {PRESET_NAMES}")
    return override(PRESETS[preset](), assignments), None
