"""The training plan: a configuration derived from the dataset's fingerprint in manifest.json.

    python -m segmodel.plan --data_dir out/data            # prints the plan and why

Like nnU-Net's experiment planning, the defaults follow the data instead of being fixed: a
fixed 128² / batch-16 / one-pass-per-epoch recipe that suits 800 images collapses on 150
(10 optimizer steps an epoch, BatchNorm statistics that never settle, early stopping after
90 steps). The plan fixes what must not depend on the dataset's size (an epoch is a fixed
number of optimizer steps; the run is a time budget in minutes, its schedule fitted to the
measured step time by `segmodel.train`) and derives the rest from the manifest:

- patch: the median image side, rounded up to a multiple of 2**depth, so small images train
  whole (capped per device: large images train on crops, evaluate whole);
- depth: poolings until the bottleneck is about 8-16 px on the patch (2..4 on CPU, 2..5 on GPU);
- batch: a fixed number of pixels per step (so step time is about the same whatever the size),
  at least 4 images, never more than the training set;
- normalisation: BatchNorm with momentum 0.9, whose moving averages span ~10 steps, so they
  have settled long before the first validation (Keras' default 0.99 spans 100 steps: on 150
  images the old default validated unsettled statistics and early stopping ended the run at
  step 90). Measured against GroupNorm and BatchNorm 0.99 in docs/benchmarks.md;
- class weights: inverse square root of the class frequencies when one class is rarer than
  1/50 of the most common (Dice alone under-trains such a class);
- cache the decoded records in memory when they fit in 2 GiB;
- precision: mixed bfloat16 on CPUs with bf16 units (~1.5x the steps at the same scores),
  float32 on other CPUs, mixed float16 on GPUs (export always writes float32).

Every field stays overridable with `--set section.field=value`; the plan and its reasons are
printed at the start of training and saved as `plan.json` in the run folder.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys

from segmodel.config import Config, DataConfig, ModelConfig, TrainConfig

# Per device: largest patch side, deepest U-Net, base filters, pixels per batch, steps per epoch.
_DEVICE = {
    # 16 x 128² = 4 x 256² pixels a step: on 2 cores a 16-filter step then takes ~0.6 s, and
    # smaller batches cost more time per image (bench/train_bench.py: batch 12 saw 30 % fewer
    # images in the same 10 minutes than batch 16, and scored 0.90 instead of 0.97).
    "cpu": dict(max_patch=256, max_depth=4, base_filters=16, batch_pixels=16 * 128**2, steps=50),
    "gpu": dict(max_patch=512, max_depth=5, base_filters=32, batch_pixels=8 * 384**2, steps=250),
}
DEVICES = sorted(_DEVICE)
MIN_BATCH, MAX_BATCH = 4, 32
RARE_CLASS_RATIO = 50  # most common / rarest class frequency above which classes are weighted
CACHE_LIMIT_BYTES = 2 << 30  # decoded float32 records of train + val held in memory
DEFAULT_MINUTES = 10.0
BN_MOMENTUM = 0.9


@dataclasses.dataclass(frozen=True)
class Plan:
    config: Config
    reasons: dict[str, str]  # field -> why, for the printout and plan.json

    def to_dict(self) -> dict:
        return {"config": self.config.to_dict(), "reasons": self.reasons}

    def describe(self) -> str:
        c = self.config
        lines = [
            f"Plan: {c.model.depth}-level U-Net, {c.model.base_filters} base filters, "
            f"{c.model.norm} norm; {c.data.patch_size}² patches, batch {c.data.batch_size}; "
            f"epochs of {c.train.steps_per_epoch} steps"
            + (
                f", as many as fit in {c.train.max_minutes:g} min"
                if not c.train.epochs
                else f", {c.train.epochs} epochs"
            )
        ]
        lines += [f"  {key}: {why}" for key, why in self.reasons.items()]
        return "\n".join(lines)


def _depth_for(side: float, max_depth: int) -> int:
    """Poolings until the bottleneck is 8..16 px: log2(side / 8), within 2..max_depth."""
    return int(min(max_depth, max(2, math.floor(math.log2(max(side, 32) / 8)))))


def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU has bfloat16 arithmetic units (x86 AVX512_BF16 or AMX-BF16, as Linux
    lists them); elsewhere, or when unknown, False. TensorFlow's oneDNN kernels use them for
    mixed_bfloat16; on other CPUs bfloat16 is emulated and slower than float32."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def plan(
    manifest: dict, device: str = "cpu", minutes: float = DEFAULT_MINUTES, cpu_bf16: bool = False
) -> Plan:
    """The training configuration for the dataset `manifest` describes.

    Args:
      manifest: the ingest's manifest.json content.
      device: "cpu" or "gpu" (sizes and per-step work differ).
      minutes: the time budget the schedule is fitted to.
      cpu_bf16: the CPU has bfloat16 units (`cpu_has_bf16()`): train in mixed bfloat16.
    """
    if device not in _DEVICE:
        raise ValueError(f"device must be one of {sorted(_DEVICE)}, got {device!r}")
    d = _DEVICE[device]
    stats = manifest["stats"]
    height, width = stats["image_height"]["median"], stats["image_width"]["median"]
    side = max(height, width, 1)
    train_records = manifest["splits"].get("train", {}).get("records", 0)
    val_records = manifest["splits"].get("val", {}).get("records", 0)
    reasons = {}

    depth = _depth_for(min(side, d["max_patch"]), d["max_depth"])
    multiple = 2**depth
    patch = int(math.ceil(min(side, d["max_patch"]) / multiple) * multiple)
    if side <= d["max_patch"]:
        reasons["patch_size"] = (
            f"{patch}: median image {height:g}x{width:g} fits, so images train whole "
            f"(rounded up to a multiple of {multiple})"
        )
    else:
        reasons["patch_size"] = (
            f"{patch}: median image {height:g}x{width:g} is larger than the {device} cap "
            f"{d['max_patch']}; training crops, evaluation and inference use whole images"
        )
    reasons["depth"] = f"{depth}: bottleneck of {patch // multiple} px on a {patch}² patch"

    batch = round(d["batch_pixels"] / patch**2)
    batch = max(MIN_BATCH, min(MAX_BATCH, batch, max(train_records, 1)))
    reasons["batch_size"] = (
        f"{batch}: about {d['batch_pixels'] / 1e6:.1f} M pixels a step "
        f"(at least {MIN_BATCH}, at most the {train_records} training images)"
    )
    reasons["steps_per_epoch"] = (
        f"{d['steps']}: an epoch is a fixed number of steps whatever the dataset's size "
        f"({train_records} training images here), so validation, checkpoints and the schedule "
        "behave the same on 100 images and on 100,000"
    )
    reasons["epochs"] = (
        "as many as fit in train.max_minutes, from the measured step and validation time; "
        "the learning rate decays to its floor at the end of the budget"
    )

    pixels = stats.get("class_pixels") or []
    absent = [k for k, n in enumerate(pixels) if n == 0]
    if absent and sum(pixels):
        names = manifest.get("class_names") or []
        named = ", ".join(f"{k} ({names[k]})" if k < len(names) else str(k) for k in absent)
        raise ValueError(
            f"class {named} has no labelled pixel in the dataset: a model cannot learn a class "
            "it never sees; check --num_classes, the masks' values and --mask_mode"
        )
    freq = [f for f in stats.get("class_frequencies", []) if f > 0]
    weights = "none"
    if len(freq) >= 2 and max(freq) / min(freq) > RARE_CLASS_RATIO:
        weights = "inverse_sqrt"
        reasons["class_weights"] = (
            f"inverse_sqrt: the rarest class is {max(freq) / min(freq):.0f}x rarer than the "
            f"most common (> {RARE_CLASS_RATIO})"
        )
    else:
        reasons["class_weights"] = f"none: no class is more than {RARE_CLASS_RATIO}x rarer"

    decoded = (train_records + val_records) * height * width * stats["channels"] * 4
    cache = decoded <= CACHE_LIMIT_BYTES
    reasons["cache_decoded"] = (
        f"{str(cache).lower()}: decoded train+val ≈ {decoded / 2**20:.0f} MiB "
        f"(limit {CACHE_LIMIT_BYTES >> 20} MiB)"
    )
    reasons["norm"] = (
        f"batch, momentum {BN_MOMENTUM}: moving averages over ~{round(1 / (1 - BN_MOMENTUM))} "
        f"steps settle within the first epoch (Keras' 0.99 needs ~500 steps); better than "
        "GroupNorm on the small-data benchmark at the same budget"
    )

    if device == "gpu":
        mixed, mixed_dtype = True, "float16"
        reasons["precision"] = (
            "mixed float16: 1.8x the float32 steps on an H200 at 256² x 18 (Keras on JAX, "
            "bench/accelerator_steps.py; not timed for TensorFlow training)"
        )
    elif cpu_bf16:
        mixed, mixed_dtype = True, "bfloat16"
        reasons["precision"] = (
            "mixed bfloat16: this CPU has bfloat16 units; on 2 such cores a step took 0.38 s "
            "instead of 0.54 s at the same quality (docs/benchmarks.md); exported models "
            "compute in float32"
        )
    else:
        mixed, mixed_dtype = False, "float16"
        reasons["precision"] = "float32: this CPU has no bfloat16 units"

    config = Config(
        model=ModelConfig(
            depth=depth,
            base_filters=d["base_filters"],
            norm="batch",
            norm_momentum=BN_MOMENTUM,
            dropout=0.0,
        ),
        data=DataConfig(
            patch_size=patch,
            batch_size=batch,
            shuffle_buffer=max(16, min(train_records, 512)),
            cache_decoded=cache,
        ),
        train=TrainConfig(
            epochs=0,
            steps_per_epoch=d["steps"],
            max_minutes=minutes,
            class_weights=weights,
            mixed_precision=mixed,
            mixed_dtype=mixed_dtype,
            val_max_images=200,
        ),
    )
    return Plan(config, reasons)


def main(argv=None) -> int:
    from segmodel.commands import plan_parser

    args = plan_parser().parse_args(argv)
    from segmodel.manifest import ManifestError, load_manifest

    try:
        bf16 = args.device == "cpu" and cpu_has_bf16()
        result = plan(load_manifest(args.data_dir), args.device, args.minutes, cpu_bf16=bf16)
    except ManifestError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
