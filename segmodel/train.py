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

from segmodel import commands, files
from segmodel import config as config_lib
from segmodel.input_pipeline import make_dataset
from segmodel.manifest import load_manifest
from segmodel.objective import compile_model
from segmodel.plan import cpu_has_bf16
from segmodel.unet import build_unet

MONITOR = "val_mean_iou"
MAX_EPOCHS = 100_000


def _save_model(model: keras.Model, path: str) -> None:
    with files.atomic_path(path) as temp:
        model.save(temp)


class RunState(keras.callbacks.Callback):
    """Per epoch: a numbered checkpoint, best.keras when the monitored score improves, then
    state.json — the commit point, naming the checkpoint that matches it — then last.keras
    (a hard link to that checkpoint) and history.csv.

    A kill at any moment leaves state.json and the checkpoint it names consistent: resume
    loads exactly the model and optimizer step that state.json describes.
    """

    def __init__(self, workdir: str, monitor: str, state: dict):
        super().__init__()
        self.workdir, self.monitor, self.state = workdir, monitor, state

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        logs["learning_rate"] = float(
            keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        )
        score = logs.get(self.monitor)
        checkpoint = f"epoch-{epoch + 1:04d}.keras"
        _save_model(self.model, os.path.join(self.workdir, checkpoint))
        if score is not None and (self.state["best"] is None or score > self.state["best"]):
            _save_model(self.model, os.path.join(self.workdir, "best.keras"))
            self.state.update(best=score, best_epoch=epoch + 1)
        self.state["history"].append({"epoch": epoch + 1, **logs})
        self.state.update(
            epochs_done=epoch + 1,
            checkpoint=checkpoint,
            optimizer_iterations=int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)),
        )
        files.write_atomically(
            os.path.join(self.workdir, "state.json"), json.dumps(self.state, indent=2)
        )
        files.link_atomically(
            os.path.join(self.workdir, checkpoint), os.path.join(self.workdir, "last.keras")
        )
        for name in os.listdir(self.workdir):  # older checkpoints, and orphans of a killed run
            old = name.startswith("epoch-") and name.endswith(".keras") and name != checkpoint
            if old or files.is_temporary(name):
                os.remove(os.path.join(self.workdir, name))
        self._write_csv()

    def _write_csv(self):
        rows = self.state["history"]
        keys = sorted({k for row in rows for k in row} - {"epoch"})
        lines = [",".join(["epoch", *keys])]
        lines += [",".join([str(r["epoch"])] + [f"{r.get(k, '')}" for k in keys]) for r in rows]
        files.write_atomically(os.path.join(self.workdir, "history.csv"), "\n".join(lines) + "\n")


def learning_rate_at(step: int, total_steps: int, warmup_steps: int, peak: float) -> float:
    """Linear warm-up from 1 % of `peak`, then cosine decay to 1 % of it at `total_steps`.

    Formula: warm-up s < W: peak·(0.01 + 0.99·s/W); then peak·(0.01 + 0.99·½(1 + cos(π·t))),
    t = (s − W)/(T − W) clipped to [0, 1].
    """
    if warmup_steps and step < warmup_steps:
        return peak * (0.01 + 0.99 * step / warmup_steps)
    t = min(1.0, max(0.0, (step - warmup_steps) / max(1, total_steps - warmup_steps)))
    return peak * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * t)))


class Schedule(keras.callbacks.Callback):
    """Sets the learning rate before every step from the optimizer step and the planned total.

    A Python-side schedule instead of a Keras LearningRateSchedule object because the total is
    not known at compile time: with a time budget it follows from the measured step time
    (BudgetPlanner), and resuming with more epochs or minutes stretches it. The curve is a
    function of the optimizer step only, so a resumed run continues it where it left off.
    """

    def __init__(self, cfg: config_lib.Config, state: dict, steps_per_epoch: int):
        super().__init__()
        self.cfg, self.state, self.steps_per_epoch = cfg, state, steps_per_epoch
        self.warmup = int(cfg.train.warmup_epochs * steps_per_epoch)

    def on_train_begin(self, logs=None):
        self.step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_batch_begin(self, batch, logs=None):
        # Until the budget planner has measured the first epoch, only the warm-up is in use.
        total = (self.state["planned_epochs"] or MAX_EPOCHS) * self.steps_per_epoch
        self.model.optimizer.learning_rate = learning_rate_at(
            self.step, total, min(self.warmup, total - 1), self.cfg.train.learning_rate
        )
        self.step += 1


def _median(values: list[float]) -> float:
    """The lower median: one slow outlier among two measurements does not set the plan."""
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


class BudgetPlanner(keras.callbacks.Callback):
    """Fits the number of epochs to `train.max_minutes` from measured times, and stops there.

    After every epoch: the time an epoch takes (median wall time between epoch ends, so steps,
    validation and checkpoints all count; after the first epoch, which traces the graphs: median
    step time x steps + validation time) fixes the planned total as the epochs done plus as
    many more as fit in what is left of the budget. The learning-rate schedule
    (Schedule) reads the plan, so the decay ends with the budget instead of being cut off.
    With a fixed number of epochs (train.epochs > 0) the budget only stops the run after the
    epoch that crosses it. Training time is accumulated in state.json across resumes.
    """

    def __init__(self, cfg: config_lib.Config, state: dict, steps_per_epoch: int):
        super().__init__()
        self.budget = 60 * cfg.train.max_minutes
        self.fixed = cfg.train.epochs > 0
        self.state, self.steps_per_epoch = state, steps_per_epoch
        self.step_times, self.val_times, self.epoch_times = [], [], []  # this process's

    def on_train_begin(self, logs=None):
        # Wall clock from here: tracing, checkpoints and validation all count against the budget.
        self.start = self.previous_end = time.perf_counter()
        self.base = self.state.get("train_seconds", 0.0)

    def on_epoch_begin(self, epoch, logs=None):
        self.last = time.perf_counter()
        self.first_step = True

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if not self.first_step:  # the first step of each epoch waits for the input pipeline
            self.step_times = [*self.step_times[-999:], now - self.last]
        self.first_step = False
        self.last = now

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.state["train_seconds"] = self.base + now - self.start
        if self.previous_end != self.start:  # not this process's first epoch (tracing)
            self.epoch_times.append(now - self.previous_end)
        self.previous_end = now
        if not self.budget:
            return
        left = self.budget - self.state["train_seconds"]
        if not self.fixed:
            # Medians over the run so far: tracing (first steps, new validation image sizes)
            # and stray slow steps are noise that must not make the plan jump.
            self.val_times.append(now - self.last)
            step_seconds = _median(self.step_times or [now - self.last])
            val_seconds = _median(self.val_times)
            epoch_seconds = (
                _median(self.epoch_times)  # measured: steps, validation, checkpoints
                if self.epoch_times
                else step_seconds * self.steps_per_epoch + val_seconds
            )
            more = max(0, math.floor(left / epoch_seconds))
            planned = epoch + 1 + more
            if planned != self.state.get("planned_epochs"):
                print(
                    f"Budget {self.budget / 60:g} min: {step_seconds:.2f} s/step, "
                    f"{val_seconds:.1f} s validation, {epoch_seconds:.0f} s/epoch -> {planned} "
                    f"epochs of {self.steps_per_epoch} steps ({planned * self.steps_per_epoch} "
                    "steps); the learning rate decays over them",
                    flush=True,
                )
            self.state["planned_epochs"] = planned
        if epoch + 1 >= self.state["planned_epochs"] or left <= 0:
            if left <= 0 and self.fixed:
                print(f"Time budget reached after epoch {epoch + 1}; stopping.", flush=True)
            self.model.stop_training = True


class StepEarlyStopping(keras.callbacks.Callback):
    """Stops when the monitored score has not improved for `patience` optimizer steps.

    Never before `min_steps`, and never while BatchNorm's moving averages are younger than five
    horizons (1/(1 − momentum) steps each): until then validation judges statistics that have
    not settled, not the model (the small-data failure this replaces stopped at step 90 with
    momentum 0.99, a horizon of 100 steps).
    """

    def __init__(self, monitor: str, patience: int, min_steps: int, cfg: config_lib.Config):
        super().__init__()
        self.monitor, self.patience = monitor, patience
        self.min_steps = min_steps
        if cfg.model.norm == "batch":
            self.min_steps = max(min_steps, math.ceil(5 / (1 - cfg.model.norm_momentum)))
        self.best, self.best_step = None, 0

    def on_epoch_end(self, epoch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        score = (logs or {}).get(self.monitor)
        if score is None:
            return
        if self.best is None or score > self.best:
            self.best, self.best_step = score, step
        elif step >= self.min_steps and step - self.best_step >= self.patience:
            print(
                f"Early stop after epoch {epoch + 1}: no better {self.monitor} for "
                f"{step - self.best_step} steps (best {self.best:.4f} at step {self.best_step})",
                flush=True,
            )
            self.model.stop_training = True


class EpochLine(keras.callbacks.Callback):
    """One progress line per epoch: epoch / planned, losses and scores, learning rate, ETA."""

    def __init__(self, state: dict):
        super().__init__()
        self.state = state

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        planned = self.state.get("planned_epochs") or "?"
        scores = "  ".join(f"{k} {float(v):.4f}" for k, v in logs.items() if k != "learning_rate")
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        eta = ""
        if isinstance(planned, int):
            per_epoch = self.state.get("train_seconds", 0.0) / (epoch + 1)
            eta = f"  eta {max(0, planned - epoch - 1) * per_epoch:.0f}s"
        print(f"epoch {epoch + 1}/{planned}  {scores}  lr {lr:.2e}{eta}", flush=True)


def _corrupt_shards(data_dir: str, manifest: dict) -> str:
    """Names the shards of data_dir that cannot be read to the end."""
    from segmodel.manifest import shard_paths

    bad = []
    compression = "GZIP" if manifest.get("compression") == "gzip" else ""
    for split in manifest["splits"]:
        for path in shard_paths(data_dir, manifest, split):
            try:
                for _ in tf.data.TFRecordDataset(path, compression_type=compression):
                    pass
            except tf.errors.DataLossError:
                bad.append(path)
    return ", ".join(bad) or f"a shard in {data_dir}"


def _strategy():
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _device() -> str:
    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


def _start_or_resume(data_dir, workdir, preset, overrides, manifest):
    """(config, state, plan or None, checkpoint to resume from or None)."""
    state_path = os.path.join(workdir, "state.json")
    if not os.path.exists(state_path):
        device = _device()
        bf16 = device == "cpu" and cpu_has_bf16()
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
        }
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


def train(data_dir: str, workdir: str, preset: str = "default", overrides=(), verbose=None) -> dict:
    """Trains (or resumes) a run; returns its final state.json content.

    A new run resolves `preset` (planned from the manifest for `default` and `gpu`), prints
    the plan and saves it as plan.json. A folder with state.json resumes with its saved config
    (plus `overrides`).
    """
    check_readable_by_tensorflow(data_dir)
    os.makedirs(workdir, exist_ok=True)
    manifest = load_manifest(data_dir)
    cfg, state, planned, checkpoint = _start_or_resume(
        data_dir, workdir, preset, overrides, manifest
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
            f"{_corrupt_shards(data_dir, manifest)}: truncated or corrupt; re-run ingest to "
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
        train(args.data_dir, args.workdir, args.preset, args.set)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
