"""Joint augmentation of an image and its mask, deterministic from a per-example seed.

    python -c "from segmodel.augment import augment"

Random scale, then random crop (padding first when the image is smaller than the patch: image
with 0, i.e. the mean after normalisation, mask with the ignore label), flips and 90° rotations
on both; brightness and contrast on the image only. Masks are only ever resized with nearest
neighbour, so no invented classes appear at edges. Stateless random ops: the same seed gives the
same result eagerly and inside tf.data (tests/segmodel/test_augment.py checks both).
"""

from __future__ import annotations

import tensorflow as tf

from segmodel.config import DataConfig


def _uniform(seed, minval=0.0, maxval=1.0, shape=()):
    return tf.random.stateless_uniform(shape, seed=seed, minval=minval, maxval=maxval)


def random_scale(image, mask, seed, scale_range):
    lo, hi = scale_range
    if lo == hi == 1.0:
        return image, mask
    scale = _uniform(seed, lo, hi)
    size = tf.cast(tf.round(tf.cast(tf.shape(image)[:2], tf.float32) * scale), tf.int32)
    size = tf.maximum(size, 1)
    image = tf.image.resize(image, size, method="bilinear")
    mask = tf.image.resize(mask[..., None], size, method="nearest")[..., 0]
    return image, mask


def random_crop(image, mask, seed, patch_size: int, ignore_label: int):
    """Pads (bottom/right) to at least patch_size, then crops patch_size² at a random place."""
    shape = tf.shape(image)
    pad_h = tf.maximum(patch_size - shape[0], 0)
    pad_w = tf.maximum(patch_size - shape[1], 0)
    image = tf.pad(image, [[0, pad_h], [0, pad_w], [0, 0]])
    mask = tf.pad(mask, [[0, pad_h], [0, pad_w]], constant_values=ignore_label)
    shape = tf.shape(image)
    offsets = tf.random.stateless_uniform(
        [2], seed=seed, minval=0, maxval=2**30, dtype=tf.int32
    ) % (shape[:2] - patch_size + 1)
    image = image[offsets[0] : offsets[0] + patch_size, offsets[1] : offsets[1] + patch_size]
    mask = mask[offsets[0] : offsets[0] + patch_size, offsets[1] : offsets[1] + patch_size]
    image.set_shape([patch_size, patch_size, None])
    mask.set_shape([patch_size, patch_size])
    return image, mask


def augment(image, mask, seed, config: DataConfig, ignore_label: int):
    """Augments one normalised image [H, W, C] float32 and mask [H, W] int32.

    Args:
      seed: int32 [2] stateless seed; one per example.
    Returns:
      (image [P, P, C], mask [P, P]) with P = config.patch_size.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=7)
    image, mask = random_scale(image, mask, seeds[0], config.scale_range)
    image, mask = random_crop(image, mask, seeds[1], config.patch_size, ignore_label)
    if config.flips:
        flip_lr = _uniform(seeds[2]) < 0.5
        image = tf.where(flip_lr, image[:, ::-1], image)
        mask = tf.where(flip_lr, mask[:, ::-1], mask)
        flip_ud = _uniform(seeds[3]) < 0.5
        image = tf.where(flip_ud, image[::-1], image)
        mask = tf.where(flip_ud, mask[::-1], mask)
    if config.rotate90:
        k = tf.random.stateless_uniform([], seed=seeds[4], minval=0, maxval=4, dtype=tf.int32)
        image = tf.image.rot90(image, k)
        mask = tf.image.rot90(mask[..., None], k)[..., 0]
    if config.contrast:
        factor = _uniform(seeds[5], 1.0 - config.contrast, 1.0 + config.contrast)
        mean = tf.reduce_mean(image, axis=[0, 1], keepdims=True)
        image = (image - mean) * factor + mean
    if config.brightness:
        image = image + _uniform(seeds[6], -config.brightness, config.brightness)
    return image, mask
