"""The "seed tutorial" U-Net, re-implemented as the baseline our default preset must beat.

    .venv/bin/python bench/seed_baseline.py --data_dir out/data --minutes 10

For benchmarking only. One down/up level, 64 filters, no normalisation layers; binary
cross-entropy on one-hot masks (ignored pixels weigh zero); Adam 1e-3; every image resized to
160x160 (bilinear; masks nearest); batch 8; 15 epochs over the train split; no augmentation.
Images are decoded and normalised by our own input path, so only the model and its recipe differ.
Evaluation is on the test split at native resolution: predict at 160x160, resize the per-class
sigmoid outputs back to H x W (bilinear), argmax, one confusion matrix over non-ignored pixels.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import keras
import numpy as np
import tensorflow as tf

from segmodel.input_pipeline import decode_and_normalize, records
from segmodel.manifest import load_manifest
from segmodel.metrics import confusion_matrix, summarize
from segmodel.preprocessing import bit_depth_from_manifest, normalization_from_manifest

SIZE = 160  # the tutorial's fixed input side
BATCH_SIZE = 8


def build_model(channels: int, num_classes: int) -> keras.Model:
    """conv64 x2 -> pool -> conv128 x2 -> transpose-conv64 -> concat skip -> conv64 x2 -> 1x1."""

    def conv(x, filters, name):
        for i in (1, 2):
            x = keras.layers.Conv2D(
                filters, 3, padding="same", activation="relu", name=f"{name}_{i}"
            )(x)
        return x

    inputs = keras.Input((SIZE, SIZE, channels), name="image")
    skip = conv(inputs, 64, "down")
    x = keras.layers.MaxPooling2D(2, name="pool")(skip)
    x = conv(x, 128, "bottom")
    x = keras.layers.Conv2DTranspose(64, 2, strides=2, padding="same", name="up")(x)
    x = keras.layers.Concatenate(name="skip")([x, skip])
    x = conv(x, 64, "up_conv")
    outputs = keras.layers.Conv2D(num_classes, 1, activation="sigmoid", name="head")(x)
    return keras.Model(inputs, outputs, name="seed_unet")


class _TimeLimit(keras.callbacks.Callback):
    """Stops training after the batch that passes the wall-clock limit; counts the batches."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.steps_done = seconds, 0

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.steps_done += 1
        if time.perf_counter() - self.start > self.seconds:
            self.model.stop_training = True


def train_and_evaluate(data_dir: str, minutes: float, epochs: int = 15, seed: int = 0) -> dict:
    """Trains the seed U-Net on `data_dir`'s train split, evaluates it on the test split.

    Args:
      data_dir: ingest output (shards + manifest.json).
      minutes: wall-clock limit on training; checked after every batch.
      epochs: passes over the train split, if the time limit allows.
      seed: seeds weights and shuffling.

    Returns:
      `segmodel.metrics.summarize()` of the test confusion matrix, plus `epochs_done` (whole
      passes completed), `steps_done` and `train_seconds`.
    """
    keras.utils.set_random_seed(seed)
    manifest = load_manifest(data_dir)
    channels, num_classes = manifest["stats"]["channels"], manifest["num_classes"]
    ignore = manifest["ignore_label"]
    mean, std = normalization_from_manifest(manifest)
    bit_depth = bit_depth_from_manifest(manifest)

    def decoded(split):
        ds = records(data_dir, manifest, split, shuffle_files=False, seed=seed)
        return ds.map(lambda r: decode_and_normalize(r, channels, bit_depth, mean, std))

    def to_example(image, mask):
        image = tf.image.resize(image, (SIZE, SIZE), method="bilinear")
        mask = tf.image.resize(mask[..., None], (SIZE, SIZE), method="nearest")[..., 0]
        # tf.one_hot gives an all-zero row for the ignore label; its weight is zero anyway.
        weight = tf.cast(tf.not_equal(mask, ignore), tf.float32)
        return image, tf.one_hot(mask, num_classes), weight

    count = manifest["splits"]["train"]["records"]
    # A known length lets Keras size each epoch (and fails loudly if the manifest disagrees).
    train = decoded("train").apply(tf.data.experimental.assert_cardinality(count))
    train = train.map(to_example, num_parallel_calls=tf.data.AUTOTUNE).cache()
    train = train.shuffle(count, seed=seed).batch(BATCH_SIZE).prefetch(tf.data.AUTOTUNE)

    model = build_model(channels, num_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    limit = _TimeLimit(minutes * 60)
    start = time.perf_counter()
    # shuffle=False: the dataset reshuffles itself each epoch; Keras cannot shuffle a tf.data one.
    model.fit(train, epochs=epochs, callbacks=[limit], shuffle=False, verbose=0)
    train_seconds = time.perf_counter() - start

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, channels], tf.float32),
            tf.TensorSpec([None, None], tf.int32),
        ]
    )
    def image_counts(image, mask):
        probs = model(tf.image.resize(image[None], (SIZE, SIZE), method="bilinear"))
        probs = tf.image.resize(probs, tf.shape(image)[:2], method="bilinear")
        return confusion_matrix(mask, tf.argmax(probs[0], axis=-1), num_classes, ignore)

    cm = np.zeros((num_classes, num_classes), np.int64)  # exact over the whole split
    for image, mask in decoded("test"):
        cm += image_counts(image, mask).numpy()
    result = summarize(cm, manifest.get("class_names"))
    # One epoch is one pass over the train records, the last batch partial.
    epochs_done = limit.steps_done // math.ceil(count / BATCH_SIZE)
    return {
        **result,
        "epochs_done": epochs_done,
        "steps_done": limit.steps_done,
        "train_seconds": round(train_seconds, 2),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", required=True, help="Ingest output with manifest.json.")
    parser.add_argument("--minutes", type=float, default=10.0, help="Training time limit.")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = train_and_evaluate(args.data_dir, args.minutes, args.epochs, args.seed)
    result.pop("confusion_matrix")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
