"""Segmentation losses in keras.ops, all ignoring pixels labelled `ignore_label`.

    python -c "from segmodel.losses import SegmentationLoss; print(SegmentationLoss('ce_dice', 3))"

y_true: int [B, H, W] class indices (or the ignore label). y_pred: the model's probabilities
[B, H, W, C], or [B, H, W, 1] for a binary sigmoid model.

Formulas, over valid pixels i (label ≠ ignore), class weights w (1 when not given):
  ce:    Σ_i w_{y_i} · −log p_i(y_i) / Σ_i w_{y_i}
  focal: Σ_i w_{y_i} · −(1 − p_i(y_i))^γ · log p_i(y_i) / Σ_i w_{y_i}
  dice:  1 − mean_c (2 Σ_i p_i(c)·[y_i=c] + ε) / (Σ_i p_i(c) + Σ_i [y_i=c] + ε)
  ce_dice: ce + dice
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from segmodel.unet import class_probabilities

LOSSES = ("ce", "dice", "focal", "ce_dice")
_EPS = 1e-7


def class_weights_from_manifest(manifest: dict, mode: str) -> list[float] | None:
    """Per-class weights from the manifest's pixel counts.

    inverse_sqrt: w_c ∝ 1/sqrt(frequency_c), scaled so the pixel-weighted mean is 1; classes
    with no pixels get weight 1.
    """
    if mode == "none":
        return None
    if mode != "inverse_sqrt":
        raise ValueError(f"train.class_weights must be 'none' or 'inverse_sqrt', got {mode!r}")
    freq = np.asarray(manifest["stats"]["class_frequencies"], np.float64)
    weights = np.where(freq > 0, 1.0 / np.sqrt(np.maximum(freq, 1e-12)), 1.0)
    weights /= float((weights * freq).sum()) if freq.sum() else 1.0
    return [float(w) for w in weights]


@keras.saving.register_keras_serializable(package="segmodel")
class SegmentationLoss(keras.losses.Loss):
    """Cross-entropy, soft Dice, focal or cross-entropy + Dice, with an ignore label."""

    def __init__(
        self,
        kind: str = "ce_dice",
        num_classes: int = 2,
        ignore_label: int = 255,
        class_weights: list[float] | None = None,
        gamma: float = 2.0,
        name: str | None = None,
        **kwargs,
    ):
        if kind not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")
        super().__init__(name=name or f"{kind}_loss", **kwargs)
        self.kind = kind
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.class_weights = list(class_weights) if class_weights is not None else None
        self.gamma = gamma

    def call(self, y_true, y_pred):
        probs = ops.clip(class_probabilities(ops.cast(y_pred, "float32")), _EPS, 1.0)
        y_true = ops.cast(y_true, "int32")
        valid = ops.cast(ops.not_equal(y_true, self.ignore_label), "float32")
        labels = ops.where(ops.not_equal(y_true, self.ignore_label), y_true, 0)
        onehot = ops.one_hot(labels, self.num_classes) * valid[..., None]
        total = 0.0
        if self.kind in ("ce", "focal", "ce_dice"):
            p_true = ops.sum(probs * onehot, axis=-1) + (1.0 - valid)  # 1 where ignored
            per_pixel = -ops.log(p_true)
            if self.kind == "focal":
                per_pixel = per_pixel * ops.power(1.0 - p_true, self.gamma)
            if self.class_weights is not None:
                weight = ops.sum(onehot * ops.convert_to_tensor(self.class_weights, "float32"), -1)
            else:
                weight = valid
            total = total + ops.sum(per_pixel * weight) / ops.maximum(ops.sum(weight), 1.0)
        if self.kind in ("dice", "ce_dice"):
            masked = probs * valid[..., None]
            axes = tuple(range(len(probs.shape) - 1))
            intersection = ops.sum(masked * onehot, axis=axes)
            denominator = ops.sum(masked, axis=axes) + ops.sum(onehot, axis=axes)
            dice = (2.0 * intersection + 1.0) / (denominator + 1.0)
            total = total + 1.0 - ops.mean(dice)
        return total

    def get_config(self):
        return {
            **super().get_config(),
            "kind": self.kind,
            "num_classes": self.num_classes,
            "ignore_label": self.ignore_label,
            "class_weights": self.class_weights,
            "gamma": self.gamma,
        }
