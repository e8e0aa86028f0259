"""bench/nnunet_peer.py: the conversion to nnU-Net's raw format, the scoring with our metric,
and the budget trainer's source (nnU-Net itself is never installed by the tests)."""

from __future__ import annotations

import ast
import json
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "bench"))
import nnunet_peer  # noqa: E402


def _folders(root, mode: str) -> dict:
    rng = np.random.default_rng(0)
    for split, count in (("train", 3), ("val", 1), ("test", 2)):
        for i in range(count):
            shape = (12, 10, 3) if mode == "RGB" else (12, 10)
            dtype = np.uint16 if mode == "I;16" else np.uint8
            image = rng.integers(0, 200, shape).astype(dtype)
            mask = rng.integers(0, 3, (12, 10)).astype(np.uint8)
            for kind, array in (("images", image), ("masks", mask)):
                os.makedirs(root / kind / split, exist_ok=True)
                Image.fromarray(array).save(root / kind / split / f"s{i}.png")
    return {
        "images_dir": str(root / "images"),
        "masks_dir": str(root / "masks"),
        "num_classes": 3,
        "class_names": ["background", "a", "b"],
    }


def test_convert_puts_train_and_val_in_imagesTr_and_test_in_imagesTs(tmp_path):  # noqa: N802
    spec = _folders(tmp_path / "src", "I;16")
    converted = nnunet_peer.convert(spec, str(tmp_path / "raw"), "Dataset501_x")
    folder = tmp_path / "raw" / "Dataset501_x"
    assert converted["cases"] == {
        "train": ["train_s0", "train_s1", "train_s2"],
        "val": ["val_s0"],
        "test": ["test_s0", "test_s1"],
    }
    assert sorted(os.listdir(folder / "imagesTr")) == sorted(
        f"{c}_0000.png" for c in ["train_s0", "train_s1", "train_s2", "val_s0"]
    )
    assert sorted(os.listdir(folder / "labelsTr")) == [
        "train_s0.png",
        "train_s1.png",
        "train_s2.png",
        "val_s0.png",
    ]
    assert sorted(os.listdir(folder / "imagesTs")) == ["test_s0_0000.png", "test_s1_0000.png"]
    # the 16-bit pixels are copied, not re-encoded
    original = np.asarray(Image.open(tmp_path / "src" / "images" / "train" / "s1.png"))
    copied = np.asarray(Image.open(folder / "imagesTr" / "train_s1_0000.png"))
    np.testing.assert_array_equal(original, copied)
    dataset = json.loads((folder / "dataset.json").read_text())
    assert dataset == {
        "channel_names": {"0": "gray"},
        "labels": {"background": 0, "a": 1, "b": 2},
        "numTraining": 4,
        "file_ending": ".png",
    }
    assert converted["truth"]["test_s1"].endswith(os.path.join("masks", "test", "s1.png"))


def test_rgb_images_are_three_channels_of_one_file(tmp_path):
    spec = _folders(tmp_path / "src", "RGB")
    nnunet_peer.convert(spec, str(tmp_path / "raw"), "Dataset501_x")
    dataset = json.loads((tmp_path / "raw" / "Dataset501_x" / "dataset.json").read_text())
    assert dataset["channel_names"] == {"0": "R", "1": "G", "2": "B"}


def test_score_is_our_metric_on_the_masks(tmp_path):
    truth = np.array([[0, 0, 1, 1], [2, 2, 1, 0]], np.uint8)
    pred = np.array([[0, 1, 1, 1], [2, 0, 1, 0]], np.uint8)
    Image.fromarray(truth).save(tmp_path / "truth.png")
    os.makedirs(tmp_path / "pred")
    Image.fromarray(pred).save(tmp_path / "pred" / "case.png")
    metrics = nnunet_peer.score(
        str(tmp_path / "pred"), {"case": str(tmp_path / "truth.png")}, 3, ["bg", "a", "b"]
    )
    # by hand: class 0 tp 2, union 4; class 1 tp 3, union 4; class 2 tp 1, union 2
    assert metrics["per_class_iou"] == {"bg": 0.5, "a": 0.75, "b": 0.5}
    assert abs(metrics["mean_iou"] - (0.5 + 0.75 + 0.5) / 3) < 1e-12


def test_the_budget_trainer_is_valid_python_with_nnunets_names():
    tree = ast.parse(nnunet_peer.TRAINER)
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    assert classes == ["nnUNetTrainer_SegscaleBudget"]
    assert "SEGSCALE_BUDGET_S" in nnunet_peer.TRAINER
