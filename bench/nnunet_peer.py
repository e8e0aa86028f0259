"""nnU-Net v2 (2D) as a peer in the small-data benchmark: its own package, commands and trainer.

    .venv/bin/python bench/small_data_bench.py --minutes 10 --nnunet --skip_default --skip_seed

Never a dependency of the product: the first use creates a virtual environment of its own
(`--nnunet_venv`, default ~/.cache/segscale/nnunet-venv) with `nnunetv2==NNUNET_VERSION` from
PyPI (PyTorch with it; about 2 GB, 2-3 minutes). For each dataset of bench/small_datasets.py:

  1. convert: the same train/val/test pairs as nnU-Net's 2D raw format (imagesTr with the
     train and val cases, imagesTs with the test ones, `_0000.png` images, dataset.json);
     our split as its fold 0 (`splits_final.json`), so it trains and validates on exactly what
     ours does;
  2. `nnUNetv2_plan_and_preprocess -c 2d`: its own planning (patch and batch size, network,
     normalisation);
  3. `nnUNetv2_train DATASET 2d 0 -tr nnUNetTrainer_SegscaleBudget -device cpu`: nnU-Net's
     trainer with its own recipe (SGD, poly schedule, deep supervision, its augmentation),
     where only the length is fitted to the wall-clock budget. Its 1,000 epochs of 250
     iterations would take days on this CPU; its own shorter variants (nnUNetTrainer_5epochs
     ...) fix the epochs, not the time. This one (TRAINER below) starts with epochs of
     50 training and 10 validation iterations (its 5:1) and, after each epoch, sets the number
     and length of the epochs left to fill what the budget holds at the last epoch's pace, so
     the poly schedule still ends at zero at the budget. Budget = the minutes, counted from
     the trainer's start; its final validation on the val cases comes after, as in nnU-Net;
  4. `nnUNetv2_predict` on the test images with its defaults (final checkpoint, mirroring
     test-time augmentation);
  5. the masks scored by our evaluate's metric (segmodel.metrics: one confusion matrix over
     all test pixels, per-class IoU, mean over classes present) against the test masks.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time

NNUNET_VERSION = "2.8.1"
DEFAULT_VENV = os.path.join(os.path.expanduser("~"), ".cache", "segscale", "nnunet-venv")

# Written into the venv's nnunetv2/training/nnUNetTrainer/ folder: nnU-Net finds trainers by
# name only inside its own package (its documented way to add one).
TRAINER = '''"""Written by segscale's bench/nnunet_peer.py: nnUNetTrainer fitted to a wall-clock budget."""
import os
import time

import torch

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class nnUNetTrainer_SegscaleBudget(nnUNetTrainer):
    def __init__(self, plans, configuration, fold, dataset_json, device=torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.budget_s = float(os.environ["SEGSCALE_BUDGET_S"])
        self.started = time.time()
        self.num_iterations_per_epoch = 50
        self.num_val_iterations_per_epoch = 10
        self.num_epochs = 1000  # replaced after the first epoch by what the budget holds

    def run_training(self):
        # nnUNetTrainer.run_training's loop, with the schedule fitted after every epoch: the
        # epochs left are what the remaining budget holds at the last epoch's pace, and their
        # length is stretched or shrunk (its 5:1 train:val kept) so that they fill it.
        self.on_train_start()
        epoch = self.current_epoch
        while epoch < self.num_epochs:
            began = time.time()
            self.on_epoch_start()
            self.on_train_epoch_start()
            outputs = [self.train_step(next(self.dataloader_train))
                       for _ in range(self.num_iterations_per_epoch)]
            self.on_train_epoch_end(outputs)
            with torch.no_grad():
                self.on_validation_epoch_start()
                outputs = [self.validation_step(next(self.dataloader_val))
                           for _ in range(self.num_val_iterations_per_epoch)]
                self.on_validation_epoch_end(outputs)
            self.on_epoch_end()
            epoch += 1
            per_iteration = (time.time() - began) / self.num_iterations_per_epoch
            left = self.budget_s - (time.time() - self.started)
            epochs_left = round(left / (50 * per_iteration))
            if epochs_left > 0:
                self.num_iterations_per_epoch = int(left / per_iteration / epochs_left)
                self.num_val_iterations_per_epoch = max(1, self.num_iterations_per_epoch // 5)
            self.num_epochs = epoch + epochs_left
            self.lr_scheduler.max_steps = self.num_epochs
            self.print_to_log_file(
                f"budget: {left:.0f} s left, {per_iteration:.2f} s an iteration: "
                f"{epochs_left} more epochs of {self.num_iterations_per_epoch} iterations")
        self.on_train_end()

'''


def ensure_venv(venv: str = DEFAULT_VENV) -> str:
    """The venv's bin folder, with nnunetv2 installed and our trainer in place."""
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(os.path.join(venv, "bin", "nnUNetv2_train")):
        print(f"creating {venv} with nnunetv2=={NNUNET_VERSION} (PyTorch with it)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run(
            [python, "-m", "pip", "install", "-q", f"nnunetv2=={NNUNET_VERSION}"], check=True
        )
    package = subprocess.run(
        [python, "-c", "import nnunetv2, os; print(os.path.dirname(nnunetv2.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with open(os.path.join(package, "training", "nnUNetTrainer", "segscale_budget.py"), "w") as f:
        f.write(TRAINER)
    return os.path.join(venv, "bin")


def convert(spec: dict, raw: str, dataset: str) -> dict:
    """Our builder's folders (images/<split>/<name>.png, masks alike) → nnU-Net raw format.
    Returns {split: [case names]} and the test masks' paths by case."""
    from PIL import Image

    folder = os.path.join(raw, dataset)
    shutil.rmtree(folder, ignore_errors=True)
    cases: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    truth = {}
    channels = None
    for split in cases:
        for path in sorted(glob.glob(os.path.join(spec["images_dir"], split, "*.png"))):
            name = os.path.splitext(os.path.basename(path))[0]
            case = f"{split}_{name}"
            mask = os.path.join(spec["masks_dir"], split, f"{name}.png")
            images, labels = ("imagesTs", None) if split == "test" else ("imagesTr", "labelsTr")
            os.makedirs(os.path.join(folder, images), exist_ok=True)
            shutil.copy(path, os.path.join(folder, images, f"{case}_0000.png"))
            if labels:
                os.makedirs(os.path.join(folder, labels), exist_ok=True)
                shutil.copy(mask, os.path.join(folder, labels, f"{case}.png"))
            else:
                truth[case] = mask
            cases[split].append(case)
            if channels is None:
                with Image.open(path) as image:
                    channels = len(image.getbands())
    names = spec["class_names"]
    channel_names = {"0": "gray"} if channels == 1 else {str(i): c for i, c in enumerate("RGB")}
    with open(os.path.join(folder, "dataset.json"), "w") as f:
        json.dump(
            {
                "channel_names": channel_names,
                "labels": {name: i for i, name in enumerate(names)},
                "numTraining": len(cases["train"]) + len(cases["val"]),
                "file_ending": ".png",
            },
            f,
            indent=2,
        )
    return {"cases": cases, "truth": truth}


def score(pred_dir: str, truth: dict, num_classes: int, class_names: list[str]) -> dict:
    """Our evaluate's metric over nnU-Net's test masks."""
    import numpy as np
    from keras import ops
    from PIL import Image

    from segmodel.metrics import confusion_matrix, summarize

    cm = np.zeros((num_classes, num_classes), np.int64)
    for case, mask_path in sorted(truth.items()):
        pred = np.asarray(Image.open(os.path.join(pred_dir, f"{case}.png")))
        true = np.asarray(Image.open(mask_path))
        if pred.shape != true.shape:
            raise ValueError(f"{case}: nnU-Net mask {pred.shape} vs truth {true.shape}")
        cm += ops.convert_to_numpy(confusion_matrix(true, pred, num_classes, 255))
    return summarize(cm, class_names)


def run(name: str, spec: dict, minutes: float, work: str, dataset_id: int, venv: str) -> dict:
    """Converts, plans, trains for `minutes`, predicts and scores one dataset; returns the row."""
    bin_dir = ensure_venv(venv)
    root = os.path.join(work, name, "nnunet")
    env = dict(
        os.environ,
        nnUNet_raw=os.path.join(root, "raw"),
        nnUNet_preprocessed=os.path.join(root, "preprocessed"),
        nnUNet_results=os.path.join(root, f"results-{minutes:g}min"),
        SEGSCALE_BUDGET_S=str(minutes * 60),
    )
    dataset = f"Dataset{dataset_id:03d}_{name}"
    converted = convert(spec, env["nnUNet_raw"], dataset)
    pred = os.path.join(root, f"pred-{minutes:g}min")
    # A rerun starts clean: no earlier checkpoint, log or mask of this budget is read again.
    for earlier in (os.path.join(env["nnUNet_results"], dataset), pred):
        shutil.rmtree(earlier, ignore_errors=True)
    log_path = os.path.join(root, f"log-{minutes:g}min.txt")

    def step(*args):
        print(f"nnU-Net: {' '.join(args)} (output: {log_path})", flush=True)
        with open(log_path, "a") as log:
            subprocess.run(
                [os.path.join(bin_dir, args[0]), *args[1:]],
                env=env,
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    start = time.time()
    step(
        "nnUNetv2_plan_and_preprocess",
        "-d",
        str(dataset_id),
        "-c",
        "2d",
        "-np",
        "2",
        "--verify_dataset_integrity",
    )
    prepared = time.time()
    cases = converted["cases"]
    with open(os.path.join(env["nnUNet_preprocessed"], dataset, "splits_final.json"), "w") as f:
        json.dump([{"train": cases["train"], "val": cases["val"]}], f)
    trainer = "nnUNetTrainer_SegscaleBudget"
    step("nnUNetv2_train", str(dataset_id), "2d", "0", "-tr", trainer, "-device", "cpu")
    trained = time.time()
    step(
        "nnUNetv2_predict",
        "-i",
        os.path.join(env["nnUNet_raw"], dataset, "imagesTs"),
        "-o",
        pred,
        "-d",
        str(dataset_id),
        "-c",
        "2d",
        "-f",
        "0",
        "-tr",
        trainer,
        "-device",
        "cpu",
    )
    predicted = time.time()
    metrics = score(pred, converted["truth"], spec["num_classes"], spec["class_names"])
    folder = os.path.join(env["nnUNet_results"], dataset, f"{trainer}__nnUNetPlans__2d", "fold_0")
    with open(os.path.join(env["nnUNet_preprocessed"], dataset, "nnUNetPlans.json")) as f:
        plan = json.load(f)["configurations"]["2d"]
    epochs = _epochs_done(folder)
    return {
        "mean_iou": metrics["mean_iou"],
        "per_class_iou": metrics["per_class_iou"],
        "epochs": epochs,
        "seconds": trained - prepared,
        "prepare_seconds": prepared - start,
        "predict_seconds": predicted - trained,
        "patch_size": plan["patch_size"],
        "batch_size": plan["batch_size"],
    }


def _epochs_done(folder: str) -> int:
    """Epochs from the trainer's log (its 'Epoch N' lines)."""
    done = -1
    for log in glob.glob(os.path.join(folder, "training_log_*.txt")):
        with open(log) as f:
            for line in f:
                found = re.search(r": Epoch (\d+)$", line.strip())
                if found:
                    done = max(done, int(found.group(1)))
    return done + 1
