"""Segmentation metrics from a streaming confusion matrix (correct across batches).

    python -c "from segmodel.metrics import summarize; import numpy as np; print(summarize(np.eye(2)))"

Formulas, from the confusion matrix M (rows: truth, columns: prediction; ignored pixels never
enter it):
  IoU_c = M_cc / (Σ_j M_cj + Σ_i M_ic − M_cc)        mean IoU = mean over classes present
  Dice_c = 2 M_cc / (Σ_j M_cj + Σ_i M_ic)             (in truth or prediction)
  pixel accuracy = Σ_c M_cc / Σ M
A pixel-accuracy-only report (the Keras tutorial's "accuracy") hides a model that predicts
background everywhere; mean IoU does not.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from segmodel.unet import class_probabilities


def confusion_matrix(y_true, class_pred, num_classes: int, ignore_label: int):
    """[C, C] counts (int32: exact up to 2**31 pixels a call) of (truth, prediction) over
    pixels not ignored. The one confusion matrix: the training metrics, evaluate and the
    benchmarks count with it."""
    y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    class_pred = ops.reshape(ops.cast(class_pred, "int32"), (-1,))
    valid = ops.logical_and(ops.not_equal(y_true, ignore_label), y_true < num_classes)
    index = ops.where(valid, y_true * num_classes + class_pred, 0)
    # segment_sum with a fixed number of segments, not bincount: JAX cannot trace a bincount.
    counts = ops.segment_sum(ops.cast(valid, "int32"), index, num_segments=num_classes**2)
    return ops.reshape(counts, (num_classes, num_classes))


def summarize(cm: np.ndarray, class_names: list[str] | None = None) -> dict:
    """All metrics from a confusion matrix, as plain floats (NaN-free: absent classes → null)."""
    cm = np.asarray(cm, np.float64)
    tp = np.diag(cm)
    truth, pred = cm.sum(1), cm.sum(0)
    union = truth + pred - tp
    present = union > 0
    iou = np.where(present, tp / np.maximum(union, 1), np.nan)
    dice = np.where(present, 2 * tp / np.maximum(truth + pred, 1), np.nan)
    names = class_names or [f"class_{i}" for i in range(len(cm))]
    as_list = lambda a: [None if np.isnan(v) else float(v) for v in a]  # noqa: E731
    return {
        "mean_iou": float(np.nanmean(iou)) if present.any() else 0.0,
        "mean_dice": float(np.nanmean(dice)) if present.any() else 0.0,
        "pixel_accuracy": float(tp.sum() / cm.sum()) if cm.sum() else 0.0,
        "per_class_iou": dict(zip(names, as_list(iou), strict=True)),
        "per_class_dice": dict(zip(names, as_list(dice), strict=True)),
        "class_pixels": dict(zip(names, [int(v) for v in truth], strict=True)),
        "confusion_matrix": cm.astype(np.int64).tolist(),
    }


@keras.saving.register_keras_serializable(package="segmodel")
class SegmentationMetric(keras.metrics.Metric):
    """Streaming mean IoU, pixel accuracy, mean Dice or one class's IoU, from model outputs."""

    KINDS = ("mean_iou", "pixel_accuracy", "mean_dice", "iou")

    def __init__(
        self, kind="mean_iou", num_classes=2, ignore_label=255, class_id=None, name=None, **kwargs
    ):
        if kind not in self.KINDS:
            raise ValueError(f"metric kind must be one of {self.KINDS}, got {kind!r}")
        super().__init__(name=name or (f"iou_{class_id}" if kind == "iou" else kind), **kwargs)
        self.kind, self.num_classes = kind, num_classes
        self.ignore_label, self.class_id = ignore_label, class_id
        # Exact pixel counts need float64; JAX has no 64-bit types unless enabled process-wide,
        # so there the counts are float32 (relative error ~1e-7 per batch added).
        dtype = "float32" if keras.backend.backend() == "jax" else "float64"
        self.cm = self.add_weight(
            shape=(num_classes, num_classes), initializer="zeros", name="cm", dtype=dtype
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        pred = ops.argmax(class_probabilities(y_pred), axis=-1)
        cm = confusion_matrix(y_true, pred, self.num_classes, self.ignore_label)
        self.cm.assign_add(ops.cast(cm, self.cm.dtype))

    def result(self):
        cm = ops.convert_to_tensor(self.cm)
        tp = ops.diagonal(cm)
        truth, pred = ops.sum(cm, axis=1), ops.sum(cm, axis=0)
        if self.kind == "pixel_accuracy":
            return ops.cast(ops.sum(tp) / ops.maximum(ops.sum(cm), 1.0), "float32")
        union = truth + pred - tp
        present = ops.cast(union > 0, cm.dtype)
        if self.kind == "mean_dice":
            score = 2 * tp / ops.maximum(truth + pred, 1.0)
        else:
            score = tp / ops.maximum(union, 1.0)
        if self.kind == "iou":
            return ops.cast(score[self.class_id], "float32")
        return ops.cast(ops.sum(score * present) / ops.maximum(ops.sum(present), 1.0), "float32")

    def reset_state(self):
        self.cm.assign(ops.zeros(self.cm.shape, self.cm.dtype))

    def get_config(self):
        return {
            **super().get_config(),
            "kind": self.kind,
            "num_classes": self.num_classes,
            "ignore_label": self.ignore_label,
            "class_id": self.class_id,
        }
