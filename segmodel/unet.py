"""A configurable, fully convolutional U-Net in Keras 3 (keras.layers / keras.ops only).

    python -c "from segmodel import unet, config; unet.build_unet(config.ModelConfig(), 4, 3).summary()"

Any input size works: the input is padded up to a multiple of 2**depth inside the model and the
output cropped back, so callers never pad. Multi-class models end in a softmax over classes;
binary models (num_classes=2) in one sigmoid channel. The head is float32 so mixed precision is
safe. Saved and reloaded as `.keras`; the custom layers are registered.
"""

from __future__ import annotations

import keras
from keras import ops

from segmodel.config import ModelConfig


@keras.saving.register_keras_serializable(package="segmodel")
class PadToMultiple(keras.layers.Layer):
    """Pads height and width at the bottom/right up to a multiple of `multiple` (zeros)."""

    def __init__(self, multiple: int, **kwargs):
        super().__init__(**kwargs)
        self.multiple = multiple

    def call(self, inputs):
        shape = ops.shape(inputs)
        pad_h = (-shape[1]) % self.multiple
        pad_w = (-shape[2]) % self.multiple
        return ops.pad(inputs, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None, None, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple}


@keras.saving.register_keras_serializable(package="segmodel")
class CropToReference(keras.layers.Layer):
    """Crops the first input to the height and width of the second."""

    def call(self, inputs):
        x, reference = inputs
        shape = ops.shape(reference)
        return x[:, : shape[1], : shape[2], :]

    def compute_output_shape(self, input_shapes):
        x_shape, ref_shape = input_shapes
        return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[3])


@keras.saving.register_keras_serializable(package="segmodel")
class BilinearUpsample2x(keras.layers.Layer):
    """Doubles height and width by bilinear interpolation (half-pixel centres, edges clamped),
    the values of `tf.image.resize(x, 2 * size, "bilinear")`.

    Workaround: Keras 3.15's `UpSampling2D(interpolation="bilinear")` checks `size[0] <= 0` in
    Python, which fails inside a TensorFlow graph whenever height and width are unknown, as
    they are for whole images of any size (model.fit, tf.function); the check came with
    keras-team/keras#22079, where the regression is reported. For a factor of 2 every
    output pixel is 3/4 of its source pixel plus 1/4 of the neighbour on its side, so the
    layer needs only slices, sums and a reshape, which trace with unknown sizes on any backend.
    """

    def call(self, inputs):
        x = self._double(inputs, axis=1)
        return self._double(x, axis=2)

    @staticmethod
    def _double(x, axis: int):
        first = x[:, :1] if axis == 1 else x[:, :, :1]
        last = x[:, -1:] if axis == 1 else x[:, :, -1:]
        head = x[:, :-1] if axis == 1 else x[:, :, :-1]
        tail = x[:, 1:] if axis == 1 else x[:, :, 1:]
        before = ops.concatenate([first, head], axis=axis)  # x[i - 1], clamped
        after = ops.concatenate([tail, last], axis=axis)  # x[i + 1], clamped
        even = x * 0.75 + before * 0.25
        odd = x * 0.75 + after * 0.25
        pairs = ops.stack([even, odd], axis=axis + 1)  # [..., n, 2, ...]
        shape = ops.shape(x)
        size = [shape[0], shape[1], shape[2], shape[3]]
        size[axis] = size[axis] * 2
        return ops.reshape(pairs, size)

    def compute_output_shape(self, input_shape):
        def double(n):
            return None if n is None else 2 * n

        return (input_shape[0], double(input_shape[1]), double(input_shape[2]), input_shape[3])


def _norm(config: ModelConfig, filters: int, name: str):
    if config.norm == "group":  # never more groups than channels (narrow smoke models)
        groups = min(config.groups, filters)
        return keras.layers.GroupNormalization(groups=groups, name=name)
    if config.norm == "batch":
        return keras.layers.BatchNormalization(momentum=config.norm_momentum, name=name)
    raise ValueError(f"model.norm must be 'batch' or 'group', got {config.norm!r}")


def _conv_block(x, filters: int, config: ModelConfig, name: str):
    """Two 3x3 conv-norm-ReLU; with a 1x1 projected shortcut when residual."""
    shortcut = x
    for i in (1, 2):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(
            x
        )
        x = _norm(config, filters, f"{name}_norm{i}")(x)
        if i == 1 or not config.residual:
            x = keras.layers.Activation("relu", name=f"{name}_relu{i}")(x)
    if config.residual:
        shortcut = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_proj")(shortcut)
        x = keras.layers.Add(name=f"{name}_add")([x, shortcut])
        x = keras.layers.Activation("relu", name=f"{name}_relu2")(x)
    return x


def output_channels(num_classes: int) -> int:
    return 1 if num_classes == 2 else num_classes


def build_unet(config: ModelConfig, num_classes: int, channels: int) -> keras.Model:
    """Builds the U-Net: [B, H, W, channels] float → [B, H, W, C] probabilities.

    C is num_classes (softmax), or 1 (sigmoid, the probability of class 1) when num_classes=2.
    """
    if num_classes < 2:
        raise ValueError("num_classes must be >= 2")
    if config.upsample not in ("transpose", "resize"):
        raise ValueError(f"model.upsample must be 'transpose' or 'resize', got {config.upsample!r}")
    inputs = keras.Input(shape=(None, None, channels), name="image")
    x = PadToMultiple(2**config.depth, name="pad")(inputs)
    skips = []
    for level in range(config.depth):
        x = _conv_block(x, config.base_filters * 2**level, config, f"down{level}")
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = _conv_block(x, config.base_filters * 2**config.depth, config, "bottleneck")
    if config.dropout:
        x = keras.layers.Dropout(config.dropout, name="bottleneck_dropout")(x)
    for level in reversed(range(config.depth)):
        filters = config.base_filters * 2**level
        if config.upsample == "transpose":
            x = keras.layers.Conv2DTranspose(filters, 2, strides=2, name=f"up{level}_transpose")(x)
        else:
            x = BilinearUpsample2x(name=f"up{level}_resize")(x)
            x = keras.layers.Conv2D(filters, 3, padding="same", name=f"up{level}_conv")(x)
        x = keras.layers.Concatenate(name=f"up{level}_concat")([x, skips[level]])
        x = _conv_block(x, filters, config, f"up{level}")
    activation = "sigmoid" if num_classes == 2 else "softmax"
    x = keras.layers.Conv2D(
        output_channels(num_classes), 1, activation=activation, dtype="float32", name="head"
    )(x)
    outputs = CropToReference(name="crop", dtype="float32")([x, inputs])
    return keras.Model(inputs, outputs, name="unet")


def class_probabilities(y_pred):
    """[..., C] class probabilities from the model output (expands the binary sigmoid)."""
    if y_pred.shape[-1] == 1:
        return ops.concatenate([1.0 - y_pred, y_pred], axis=-1)
    return y_pred
