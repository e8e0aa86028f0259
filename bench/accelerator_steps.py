"""Training steps per second of the planned U-Net, float32 against mixed precision, on any backend.

    KERAS_BACKEND=jax python bench/accelerator_steps.py --output steps.json   # on a GPU machine
    .venv/bin/python bench/accelerator_steps.py --seconds 5 --policies float32  # TF, here

The model, loss, metrics and optimiser are the product's own (`segmodel.plan`,
`segmodel.unet`, `segmodel.objective`), built from the plan for a few dataset shapes with the
device the plan is asked for, and trained with `train_on_batch` on one random numpy batch: what
is timed is the optimiser step plus the batch's copy to the device and the logs' return, the
ceiling that the input stream has to feed. Baseline: the first policy listed (float32 by
default) in the same run; every row prints its ratio to it. The training CLI
itself runs on TensorFlow; this bench exists so that the arithmetic can be measured on an
accelerator machine whose image has JAX but no TensorFlow (`keras.ops` only in these modules).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from segmodel.objective import compile_model  # noqa: E402
from segmodel.plan import plan  # noqa: E402
from segmodel.unet import build_unet  # noqa: E402

# name -> (median side, channels, classes): shapes users bring.
SHAPES = {
    "gray512": (512, 1, 4),
    "rgb256": (256, 3, 4),
    "gray224": (224, 1, 3),
}


def manifest_for(side: int, channels: int, classes: int) -> dict:
    """The fields of a manifest that the plan and the compiled loss read."""
    return {
        "num_classes": classes,
        "ignore_label": 255,
        "splits": {"train": {"records": 1000}, "val": {"records": 100}},
        "stats": {
            "image_height": {"median": side},
            "image_width": {"median": side},
            "channels": channels,
            "class_frequencies": [1.0 / classes] * classes,
        },
    }


def measure(shape: str, device: str, policy: str, seconds: float, warmup: int, xla: bool) -> dict:
    side, channels, classes = SHAPES[shape]
    manifest = manifest_for(side, channels, classes)
    cfg = plan(manifest, device).config
    # train.xla is off in the plan: on TensorFlow `fit` still runs a graph, but on JAX
    # jit_compile=False means op-by-op execution (measured: ~1.4 steps/s on an H200).
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, xla=xla))
    patch, batch = cfg.data.patch_size, cfg.data.batch_size
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = compile_model(build_unet(cfg.model, classes, channels), cfg, manifest)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(batch, patch, patch, channels)).astype("float32")
        y = rng.integers(0, classes, size=(batch, patch, patch)).astype("int32")
        started = time.perf_counter()
        for _ in range(warmup):  # the first step compiles
            model.train_on_batch(x, y, return_dict=True)
        compile_s = time.perf_counter() - started
        steps, started = 0, time.perf_counter()
        while True:
            logs = model.train_on_batch(x, y, return_dict=True)  # floats: waits for the step
            steps += 1
            elapsed = time.perf_counter() - started
            if elapsed >= seconds and steps >= 5:
                break
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return {
        "shape": shape,
        "device_plan": device,
        "policy": policy,
        "xla": xla,
        "patch": patch,
        "batch": batch,
        "depth": cfg.model.depth,
        "base_filters": cfg.model.base_filters,
        "params": model.count_params(),
        "warmup_s": round(compile_s, 2),
        "steps": steps,
        "steps_per_s": steps / elapsed,
        "images_per_s": steps * batch / elapsed,
        "loss_finite": bool(np.isfinite(logs["loss"])),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--shapes",
        default="gray512:gpu,rgb256:gpu,gray224:cpu",
        help="comma-separated SHAPE:PLAN_DEVICE, SHAPE one of " + ", ".join(SHAPES),
    )
    parser.add_argument("--policies", default="float32,mixed_float16,mixed_bfloat16")
    parser.add_argument("--seconds", type=float, default=8.0, help="timed seconds per row")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation)")
    parser.add_argument(
        "--xla",
        choices=("auto", "on", "off"),
        default="auto",
        help="jit_compile for the model: auto = on for JAX, as trained on TF",
    )
    parser.add_argument("--output", help="also write the rows as JSON here")
    args = parser.parse_args(argv)

    xla = args.xla == "on" or (args.xla == "auto" and keras.backend.backend() == "jax")
    print(f"backend {keras.backend.backend()}, keras {keras.__version__}, xla {xla}", flush=True)
    rows = []
    for item in args.shapes.split(","):
        shape, device = item.split(":")
        base = None
        for policy in args.policies.split(","):
            row = measure(shape, device, policy, args.seconds, args.warmup, xla)
            base = base or row["steps_per_s"]
            row["ratio_to_first_policy"] = row["steps_per_s"] / base
            rows.append(row)
            print(
                f"{shape:8s} {device}-plan {row['patch']}²×{row['batch']} depth {row['depth']} "
                f"f{row['base_filters']} {policy:15s} {row['steps_per_s']:7.2f} steps/s "
                f"{row['images_per_s']:8.1f} img/s  ratio {row['ratio_to_first_policy']:.2f}  "
                f"(warm-up {row['warmup_s']} s, loss finite: {row['loss_finite']})",
                flush=True,
            )
            if args.output:
                with open(args.output, "w") as f:
                    json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
