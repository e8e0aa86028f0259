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

import argparse
import json
import math
import os
import shutil
import sys
import time

import keras
import tensorflow as tf

from segmodel import config as config_lib
from segmodel.input_pipeline import make_dataset
from segmodel.losses import SegmentationLoss, class_weights_from_manifest
from segmodel.manifest import load_manifest
from segmodel.metrics import SegmentationMetric
from segmodel.unet import build_unet

MONITOR = "val_mean_iou"


def _atomic_json(path: str, data) -> None:
    temp = f"{path}.tmp"
    with open(temp, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(temp, path)


def _atomic_save(model: keras.Model, path: str) -> None:
    temp = f"{path[: -len('.keras')]}.tmp.keras"
    model.save(temp)
    os.replace(temp, path)


def _link_atomically(source: str, target: str) -> None:
    """target becomes the same file as source (hard link; a copy where links are refused)."""
    temp = f"{target}.tmp"
    if os.path.exists(temp):
        os.remove(temp)
    try:
        os.link(source, temp)
    except OSError:
        shutil.copyfile(source, temp)
    os.replace(temp, target)


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
        _atomic_save(self.model, os.path.join(self.workdir, checkpoint))
        if score is not None and (self.state["best"] is None or score > self.state["best"]):
            _atomic_save(self.model, os.path.join(self.workdir, "best.keras"))
            self.state.update(best=score, best_epoch=epoch + 1)
        self.state["history"].append({"epoch": epoch + 1, **logs})
        self.state.update(
            epochs_done=epoch + 1,
            checkpoint=checkpoint,
            optimizer_iterations=int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)),
        )
        _atomic_json(os.path.join(self.workdir, "state.json"), self.state)
        _link_atomically(
            os.path.join(self.workdir, checkpoint), os.path.join(self.workdir, "last.keras")
        )
        for name in os.listdir(self.workdir):  # older checkpoints, and orphans of a killed run
            if name.startswith("epoch-") and name.endswith(".keras") and name != checkpoint:
                os.remove(os.path.join(self.workdir, name))
        self._write_csv()

    def _write_csv(self):
        rows = self.state["history"]
        keys = sorted({k for row in rows for k in row} - {"epoch"})
        lines = [",".join(["epoch", *keys])]
        lines += [",".join([str(r["epoch"])] + [f"{r.get(k, '')}" for k in keys]) for r in rows]
        temp = os.path.join(self.workdir, "history.csv.tmp")
        with open(temp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(temp, os.path.join(self.workdir, "history.csv"))


class TimeBudget(keras.callbacks.Callback):
    """Stops training after the epoch during which `minutes` of wall-clock time ran out."""

    def __init__(self, minutes: float):
        super().__init__()
        self.deadline = time.time() + 60 * minutes

    def on_epoch_end(self, epoch, logs=None):
        if time.time() >= self.deadline:
            print(f"Time budget reached after epoch {epoch + 1}; stopping.", flush=True)
            self.model.stop_training = True


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


def learning_rate_schedule(cfg: config_lib.Config, steps_per_epoch: int):
    """Cosine decay over the whole run after a linear warm-up. A function of the optimizer step
    only, so a resumed run (even with more epochs) continues the curve where it left off."""
    t = cfg.train
    total = max(1, t.epochs * steps_per_epoch)
    warmup = min(int(t.warmup_epochs * steps_per_epoch), total - 1)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=t.learning_rate * 0.01 if warmup else t.learning_rate,
        decay_steps=max(1, total - warmup),
        alpha=0.01,
        warmup_target=t.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def compile_model(model, cfg: config_lib.Config, manifest: dict, steps_per_epoch: int):
    num_classes, ignore = manifest["num_classes"], manifest["ignore_label"]
    t = cfg.train
    schedule = learning_rate_schedule(cfg, steps_per_epoch)
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=t.weight_decay),
        loss=SegmentationLoss(
            t.loss, num_classes, ignore, class_weights_from_manifest(manifest, t.class_weights)
        ),
        metrics=[
            SegmentationMetric("mean_iou", num_classes, ignore),
            SegmentationMetric("pixel_accuracy", num_classes, ignore),
        ],
        jit_compile=t.xla,
    )
    return model


def train(data_dir: str, workdir: str, preset: str = "default", overrides=(), verbose=None) -> dict:
    """Trains (or resumes) a run; returns its final state.json content."""
    os.makedirs(workdir, exist_ok=True)
    manifest = load_manifest(data_dir)
    state_path = os.path.join(workdir, "state.json")
    last_path = os.path.join(workdir, "last.keras")
    resuming = os.path.exists(state_path)
    if resuming:
        with open(os.path.join(workdir, "config.json")) as f:
            cfg = config_lib.override(config_lib.from_dict(json.load(f)), list(overrides))
        with open(state_path) as f:
            state = json.load(f)
        last_path = os.path.join(workdir, state.get("checkpoint", "last.keras"))
        if not os.path.exists(last_path):
            raise ValueError(f"{state_path} names {last_path}, which is missing; cannot resume")
    else:
        cfg = config_lib.resolve(preset, list(overrides))
        state = {"epochs_done": 0, "best": None, "best_epoch": None, "history": [],
                 "data_dir": data_dir, "monitor": MONITOR}  # fmt: skip
    _atomic_json(os.path.join(workdir, "config.json"), cfg.to_dict())

    keras.utils.set_random_seed(cfg.train.seed + state["epochs_done"])
    if cfg.train.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    train_records = manifest["splits"].get("train", {}).get("records", 0)
    if not train_records:
        raise ValueError(f"{data_dir}: the manifest has no training records")
    steps = cfg.train.steps_per_epoch or math.ceil(train_records / cfg.data.batch_size)
    val_records = manifest["splits"].get("val", {}).get("records", 0)
    monitor = MONITOR if val_records else "mean_iou"
    state["monitor"] = monitor

    with _strategy().scope():
        if resuming:
            model = keras.models.load_model(last_path)
            # --set train.epochs=N on resume stretches the schedule instead of leaving the
            # learning rate at the floor of the old one.
            model.optimizer.learning_rate = learning_rate_schedule(cfg, steps)
            print(
                f"Resuming {workdir} after epoch {state['epochs_done']} "
                f"(optimizer step {int(model.optimizer.iterations.numpy())})",
                flush=True,
            )
        else:
            model = build_unet(cfg.model, manifest["num_classes"], manifest["stats"]["channels"])
            compile_model(model, cfg, manifest, steps)
    if state["epochs_done"] >= cfg.train.epochs:
        print(f"{workdir} already trained for {cfg.train.epochs} epochs; nothing to do.")
        return state

    train_ds = make_dataset(
        data_dir, manifest, "train", cfg.data, training=True,
        seed=cfg.train.seed + state["epochs_done"],
    )  # fmt: skip
    val_ds = (
        make_dataset(
            data_dir, manifest, "val", cfg.data, training=False, max_images=cfg.train.val_max_images
        )  # fmt: skip
        if val_records
        else None
    )
    val_steps = min(val_records, cfg.train.val_max_images or val_records)
    callbacks = [RunState(workdir, monitor, state)]
    if cfg.train.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode="max", patience=cfg.train.early_stopping_patience
            )
        )
    if cfg.train.max_minutes:
        callbacks.append(TimeBudget(cfg.train.max_minutes))
    callbacks.append(keras.callbacks.TensorBoard(os.path.join(workdir, "logs"), profile_batch=0))
    start = time.time()
    try:
        model.fit(
            train_ds,
            epochs=cfg.train.epochs,
            initial_epoch=state["epochs_done"],
            steps_per_epoch=steps,
            validation_data=val_ds,
            validation_steps=val_steps if val_ds is not None else None,
            callbacks=callbacks,
            verbose=verbose if verbose is not None else (1 if sys.stdout.isatty() else 2),
        )
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
    parser = argparse.ArgumentParser(
        prog="python -m segmodel.train",
        description=__doc__.split("\n\n")[0],
        epilog="Example: python -m segmodel.train --data_dir out/data --workdir out/run "
        "--preset smoke --set train.epochs=3 --set data.batch_size=8",
    )
    parser.add_argument("--data_dir", required=True, help="Ingest output (manifest.json + shards).")
    parser.add_argument("--workdir", required=True, help="Run folder; an existing run resumes.")
    parser.add_argument(
        "--preset", default="default", choices=sorted(config_lib.PRESETS),
        help="Named config (ignored on resume: the run's saved config is used).",
    )  # fmt: skip
    parser.add_argument(
        "--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
        help="Override a config field, e.g. train.epochs=50 (repeatable; applies on resume too).",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        train(args.data_dir, args.workdir, args.preset, args.set)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
