"""tf.data streams over the ingest shards, for training and evaluation.

    python -c "from segmodel.input_pipeline import make_dataset; from segmodel.config import DataConfig; from segmodel.manifest import load_manifest; m = load_manifest('out/data'); print(next(iter(make_dataset('out/data', m, 'val', DataConfig(), training=False)))[0].shape)"

Shards listed in the manifest → parallel interleave → parse with the shared schema → decode →
normalise with the manifest's mean/std → (training) shuffle, joint augmentation to patches,
batch → prefetch. Evaluation streams whole images one at a time (native resolution; the model
pads internally). Memory is bounded by the shuffle buffer and prefetch, never by the dataset.
"""

from __future__ import annotations

import tensorflow as tf

from segmodel import record_schema
from segmodel.augment import augment
from segmodel.config import DataConfig
from segmodel.contract import ModelContract
from segmodel.manifest import shard_paths
from segmodel.preprocessing import normalize

AUTOTUNE = tf.data.AUTOTUNE


def decode_and_normalize(serialized, channels: int, bit_depth: int, mean, std, bands=False):
    """Serialized record → (the model's input [H, W, C] float32, mask [H, W] int32), through
    the one model-input path (segmodel/preprocessing.py)."""
    image, mask = record_schema.decode_example(
        record_schema.parse_example(serialized), channels, bit_depth, bands
    )
    return normalize(image, mean, std), mask


def _no_autotuning() -> tf.data.Options:
    """Options for evaluation streams: tf.data's autotuning off.

    Keras drops the validation iterator before every `evaluate()` of `fit()`, and in our
    5-minute runs that deletion stalled, with idle cores, for up to 20 s in later epochs while
    autotuning was on: epochs of 39 s whose 49 steps took 19.5 s; faulthandler put the main
    thread in Keras' `EpochIterator.reset`. The budget planner then planned about half the
    steps. With autotuning off the stall is gone (a 4-minute run: 9 epochs, none over 26 s).
    One whole image per batch has nothing to tune.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def records(data_dir: str, manifest: dict, split: str, *, shuffle_files: bool, seed: int):
    """The split's serialized records, interleaved across shards."""
    paths = shard_paths(data_dir, manifest, split)
    if not paths:
        raise ValueError(f"split {split!r} has no shards in {data_dir}")
    compression = "GZIP" if manifest.get("compression") == "gzip" else ""
    files = tf.data.Dataset.from_tensor_slices(paths)
    if shuffle_files:
        files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    superseded = {
        f"{data_dir.rstrip('/')}/{shard}": keys
        for shard, keys in (manifest.get("superseded") or {}).items()
        if f"{data_dir.rstrip('/')}/{shard}" in paths
    }
    if not superseded:
        return files.interleave(
            lambda path: tf.data.TFRecordDataset(path, compression_type=compression),
            cycle_length=min(len(paths), 8),
            num_parallel_calls=AUTOTUNE,
            deterministic=True,
        )
    # Records that a later --append replaced (pipelines/ingest/batches.py): "shard path|key".
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            [f"{path}|{key}" for path, keys in superseded.items() for key in keys],
            tf.ones([sum(len(keys) for keys in superseded.values())], tf.int32),
        ),
        default_value=0,
    )

    def live_records(path):
        def live(serialized):
            key = tf.io.parse_single_example(
                serialized, {record_schema.IMAGE_SOURCE_ID: tf.io.FixedLenFeature((), tf.string)}
            )[record_schema.IMAGE_SOURCE_ID]
            return table.lookup(tf.strings.join([path, key], "|")) == 0

        return tf.data.TFRecordDataset(path, compression_type=compression).filter(live)

    return files.interleave(
        live_records,
        cycle_length=min(len(paths), 8),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )


def make_dataset(
    data_dir: str,
    manifest: dict,
    split: str,
    config: DataConfig,
    *,
    training: bool,
    seed: int = 0,
    max_images: int = 0,
) -> tf.data.Dataset:
    """Training: infinite batches of (image [B, P, P, C], mask [B, P, P]).
    Evaluation: one whole image per batch, (image [1, H, W, C], mask [1, H, W]), one pass.
    """
    inputs = ModelContract.from_manifest(manifest).inputs
    channels, bit_depth, bands = inputs.channels, inputs.bit_depth, inputs.bands
    mean, std = list(inputs.mean), list(inputs.std)
    ignore_label = manifest["ignore_label"]
    ds = records(data_dir, manifest, split, shuffle_files=training, seed=seed)
    if max_images:
        ds = ds.take(max_images)
    ds = ds.map(
        lambda r: decode_and_normalize(r, channels, bit_depth, mean, std, bands),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )
    if config.cache_decoded:
        ds = ds.cache()
    if not training:
        return ds.batch(1).prefetch(2).with_options(_no_autotuning())
    ds = ds.repeat().shuffle(config.shuffle_buffer, seed=seed)
    ds = ds.enumerate().map(
        lambda i, pair: augment(
            pair[0], pair[1], tf.stack([tf.cast(seed, tf.int64), i]), config, ignore_label
        ),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )
    return ds.batch(config.batch_size, drop_remainder=True).prefetch(AUTOTUNE)


def corrupt_shards(data_dir: str, manifest: dict) -> str:
    """Names the shards of data_dir that cannot be read to the end (TensorFlow's DataLossError
    does not say which file)."""
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
