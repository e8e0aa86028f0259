"""The Keras callbacks of a training run: what happens at each step and epoch end.

    segscale train --data_dir out/data --workdir out/run   # prints one EpochLine per epoch

RunState writes the checkpoint, best.keras, state.json (the commit point) and history.csv
atomically at each epoch end; Schedule sets the learning rate before every step (warm-up, then
cosine decay to the planned end); BudgetPlanner turns a time budget into a number of epochs from
measured step and validation times; StepEarlyStopping stops on a plateau counted in steps;
EpochLine is the console line. segmodel/train.py wires them to model.fit.
"""

from __future__ import annotations

import json
import math
import os
import time

import keras

from segmodel import config as config_lib
from segmodel import files

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
