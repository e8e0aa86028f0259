"""Train a U-Net from the ingest shards, with automatic resume.

    python -m segmodel.train --data_dir out/data --workdir out/run --preset default
    python -m segmodel.train --data_dir out/data --workdir out/run --set train.epochs=40  # resume, extend

The run folder holds `config.json` (the resolved config), `last.keras` (model and optimizer
state after the latest epoch), `best.keras` (best validation mean IoU), `state.json` (epochs
done, optimizer step, best score, history), `history.csv` and TensorBoard logs in `logs/`.
Checkpoints and state are written atomically at each epoch end, so a run killed at any moment
resumes from its last completed epoch, optimizer state included: run the same command again.
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and {"-h", "--help"} & set(sys.argv[1:]):
    # --help before TensorFlow loads (seconds): the flags live in segmodel/commands.py.
    from segmodel.commands import train_parser

    train_parser().print_help()
    sys.exit(0)

import dataclasses
import json
import math
import os
import sys
import time

import keras
import tensorflow as tf

from segmodel import commands, files, finetune
from segmodel import config as config_lib
from segmodel.input_pipeline import corrupt_shards, make_dataset
from segmodel.manifest import check_trainable, load_manifest
from segmodel.objective import compile_model
from segmodel.plan import cpu_has_bf16
from segmodel.train_callbacks import (
    MAX_EPOCHS,
    MONITOR,
    BudgetPlanner,
    EpochLine,
    RunState,
    Schedule,
    StepEarlyStopping,
)
from segmodel.unet import build_unet


def _strategy():
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _device() -> str:
    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


def _start_or_resume(data_dir, workdir, preset, overrides, manifest, init_from=None):
    """(config, state, plan or None, checkpoint to resume from or None)."""
    state_path = os.path.join(workdir, "state.json")
    if not os.path.exists(state_path):
        device = _device()
        bf16 = device == "cpu" and cpu_has_bf16()
        if init_from:  # the parent's recipe with the fine-tuning schedule (segmodel/finetune.py)
            parent = finetune.parent_of(init_from)
            finetune.check_contract(parent, manifest, init_from, data_dir)
            cfg, planned = finetune.finetune_config(parent, list(overrides)), None
        else:
            cfg, planned = config_lib.resolve(preset, list(overrides), manifest, device, bf16)
        state = {
            "epochs_done": 0,
            "best": None,
            "best_epoch": None,
            "history": [],
            "data_dir": data_dir,
            "monitor": MONITOR,
            "planned_epochs": None,
            "train_seconds": 0.0,
            "dataset_version": manifest.get("version", 1),
        }
        if init_from:
            state["init_from"] = finetune.lineage(parent, init_from, manifest)
        if cfg.train.epochs:
            state["planned_epochs"] = cfg.train.epochs
        elif not cfg.train.max_minutes:
            raise ValueError("train.epochs=0 plans the run from train.max_minutes: set one of them")
        return cfg, state, planned, None
    with open(os.path.join(workdir, "config.json")) as f:
        saved = config_lib.from_dict(json.load(f))
    cfg = config_lib.override(saved, list(overrides))
    with open(state_path) as f:
        state = json.load(f)
    checkpoint = os.path.join(workdir, state.get("checkpoint", "last.keras"))
    if not os.path.exists(checkpoint):
        raise ValueError(f"{state_path} names {checkpoint}, which is missing; cannot resume")
    done = state["epochs_done"]
    if cfg.train.epochs:
        state["planned_epochs"] = cfg.train.epochs  # more epochs on resume stretch the schedule
    elif cfg.train.max_minutes != saved.train.max_minutes and done:
        # A new budget: as many more epochs as fit at the pace measured so far.
        per_epoch = state.get("train_seconds", 0.0) / done
        left = 60 * cfg.train.max_minutes - state.get("train_seconds", 0.0)
        state["planned_epochs"] = done + max(0, math.floor(left / max(per_epoch, 1e-6)))
    return cfg, state, None, checkpoint


# What tf.data reads shards from in TensorFlow 2.21 as installed here: local paths and gs://
# (hdfs:// with a Hadoop client). s3:// needs tensorflow-io, which has no release for it.
TENSORFLOW_SCHEMES = ("gs://", "hdfs://")


def check_readable_by_tensorflow(data_dir: str) -> None:
    if files.is_remote(data_dir) and not data_dir.startswith(TENSORFLOW_SCHEMES):
        raise ValueError(
            f"--data_dir {data_dir}: TensorFlow reads training shards from local folders and "
            "gs:// (and hdfs://), not this scheme. Copy the dataset folder first, e.g. "
            f"`aws s3 sync {data_dir} data/` (or any S3 client), then --data_dir data/"
        )


def train(
    data_dir: str,
    workdir: str,
    preset: str = "default",
    overrides=(),
    verbose=None,
    init_from: str | None = None,
    allow_failed_dataset: bool = False,
) -> dict:
    """Trains (or resumes) a run; returns its final state.json content.

    A new run resolves `preset` (planned from the manifest for `default` and `gpu`), prints
    the plan and saves it as plan.json; with `init_from` (an export folder) it fine-tunes that
    model instead (segmodel/finetune.py). A folder with state.json resumes with its saved
    config (plus `overrides`).
    """
    check_readable_by_tensorflow(data_dir)
    os.makedirs(workdir, exist_ok=True)
    manifest = load_manifest(data_dir)
    check_trainable(manifest, data_dir, allow_failed_dataset)
    cfg, state, planned, checkpoint = _start_or_resume(
        data_dir, workdir, preset, overrides, manifest, init_from
    )
    files.write_atomically(
        os.path.join(workdir, "config.json"), json.dumps(cfg.to_dict(), indent=2)
    )
    if planned is not None:  # as planned, with the --set overrides on top
        reasons = dict(planned.reasons)
        if overrides:
            reasons["overrides"] = "--set " + " --set ".join(overrides) + " (on top of the plan)"
        planned = dataclasses.replace(planned, config=cfg, reasons=reasons)
        print(planned.describe(), flush=True)
        files.write_atomically(
            os.path.join(workdir, "plan.json"), json.dumps(planned.to_dict(), indent=2)
        )
    if state["planned_epochs"] and state["epochs_done"] >= state["planned_epochs"]:
        print(f"{workdir} already trained for {state['epochs_done']} epochs; nothing to do.")
        return state

    train_records = manifest["splits"].get("train", {}).get("records", 0)
    if not train_records:
        raise ValueError(f"{data_dir}: the manifest has no training records")
    steps = cfg.train.steps_per_epoch or math.ceil(train_records / cfg.data.batch_size)
    val_records = manifest["splits"].get("val", {}).get("records", 0)
    monitor = MONITOR if val_records else "mean_iou"
    state["monitor"] = monitor
    keras.utils.set_random_seed(cfg.train.seed + state["epochs_done"])
    if cfg.train.mixed_dtype not in ("float16", "bfloat16"):
        raise ValueError(
            f"train.mixed_dtype must be float16 or bfloat16, got {cfg.train.mixed_dtype!r}"
        )
    policy = keras.mixed_precision.global_policy()
    if cfg.train.mixed_precision:
        keras.mixed_precision.set_global_policy(f"mixed_{cfg.train.mixed_dtype}")
    try:
        return _fit(data_dir, workdir, cfg, state, manifest, checkpoint, steps, verbose)
    finally:
        keras.mixed_precision.set_global_policy(policy)  # a process-wide switch: restore it


def _fit(data_dir, workdir, cfg, state, manifest, checkpoint, steps, verbose) -> dict:
    val_records = manifest["splits"].get("val", {}).get("records", 0)
    monitor = state["monitor"]  # set by train(): val_mean_iou when there is a val split
    with _strategy().scope():
        if checkpoint:
            model = keras.models.load_model(checkpoint)
            print(
                f"Resuming {workdir} after epoch {state['epochs_done']} "
                f"(optimizer step {int(model.optimizer.iterations.numpy())})",
                flush=True,
            )
        elif state.get("init_from"):
            model = finetune.initial_model(cfg, manifest, state["init_from"]["model_dir"])
            compile_model(model, cfg, manifest)
            print(
                f"Fine-tuning model {state['init_from']['model_version']} on dataset version "
                f"{state['dataset_version']}",
                flush=True,
            )
        else:
            model = build_unet(cfg.model, manifest["num_classes"], manifest["stats"]["channels"])
            compile_model(model, cfg, manifest)

    train_ds = make_dataset(
        data_dir,
        manifest,
        "train",
        cfg.data,
        training=True,
        seed=cfg.train.seed + state["epochs_done"],
    )
    val_ds = None
    if val_records:
        # Whole images at native resolution, one at a time, through the same confusion matrix
        # as segmodel.evaluate: the score that picks best.keras is the test metric's twin.
        val_ds = make_dataset(
            data_dir, manifest, "val", cfg.data, training=False, max_images=cfg.train.val_max_images
        )
    val_steps = min(val_records, cfg.train.val_max_images or val_records)
    # Order matters: the planner fixes the epoch count before the state is saved and printed.
    callbacks = [
        Schedule(cfg, state, steps),
        BudgetPlanner(cfg, state, steps),
        RunState(workdir, monitor, state),
        EpochLine(state),
    ]
    if cfg.train.early_stopping_steps:
        callbacks.append(
            StepEarlyStopping(
                monitor, cfg.train.early_stopping_steps, cfg.train.early_stopping_min_steps, cfg
            )
        )
    callbacks.append(keras.callbacks.TensorBoard(os.path.join(workdir, "logs"), profile_batch=0))
    start = time.time()
    try:
        model.fit(
            train_ds,
            # With a budget the planner stops the run; the bound only keeps Keras' loop finite.
            epochs=state["planned_epochs"] if cfg.train.epochs else MAX_EPOCHS,
            initial_epoch=state["epochs_done"],
            steps_per_epoch=steps,
            validation_data=val_ds,
            validation_steps=val_steps if val_ds is not None else None,
            callbacks=callbacks,
            shuffle=False,  # the stream shuffles itself; Keras would warn that it cannot
            verbose=verbose if verbose is not None else 0,
        )
    except tf.errors.InvalidArgumentError as e:
        if "PNG" not in str(e) and "JPEG" not in str(e):
            raise
        # Ingest checks PNGs outside its statistics sample by their checksums only; one with a
        # broken compressed stream and correct checksums (a faulty encoder) fails here.
        raise ValueError(
            f"an image in the shards of {data_dir} cannot be decoded ({str(e).splitlines()[0]}); "
            "re-run ingest with --stats_sample 0: it decodes every image and rejects such files "
            f"by name. Training resumes from epoch {state['epochs_done']}."
        ) from None
    except tf.errors.DataLossError:
        # TensorFlow's message does not say which file; find it, then stop with one clear line.
        raise ValueError(
            f"{corrupt_shards(data_dir, manifest)}: truncated or corrupt; re-run ingest to "
            f"rewrite the shards. Training resumes from epoch {state['epochs_done']}."
        ) from None
    print(
        f"Trained to epoch {state['epochs_done']} in {time.time() - start:.0f}s; best {monitor} "
        f"{state['best']:.4f} at epoch {state['best_epoch']}. Run folder: {workdir}"
        if state["best"] is not None
        else f"Trained to epoch {state['epochs_done']}. Run folder: {workdir}",
        flush=True,
    )
    return state


def main(argv=None) -> int:
    args = commands.train_parser().parse_args(argv)
    try:
        train(
            args.data_dir,
            args.workdir,
            args.preset,
            args.set,
            init_from=args.init_from,
            allow_failed_dataset=args.allow_failed_dataset,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
