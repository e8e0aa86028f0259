"""What training optimises and reports: optimiser, loss and metrics, in Keras alone.

    from segmodel.objective import compile_model
    compile_model(build_unet(cfg.model, 4, 1), cfg, manifest)

Kept free of TensorFlow (like `unet`, `losses` and `metrics`), so the same compiled model runs
on any Keras backend: bench/accelerator_steps.py measures training steps on a GPU with JAX.
"""

from __future__ import annotations

import keras

from segmodel.config import Config
from segmodel.losses import SegmentationLoss, class_weights_from_manifest
from segmodel.metrics import SegmentationMetric


def compile_model(model: keras.Model, cfg: Config, manifest: dict) -> keras.Model:
    """Compiles `model` for `cfg.train`; classes and class weights come from the manifest."""
    num_classes, ignore = manifest["num_classes"], manifest["ignore_label"]
    t = cfg.train
    # The learning rate is set before every step by train.Schedule.
    model.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate=t.learning_rate, weight_decay=t.weight_decay
        ),
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
