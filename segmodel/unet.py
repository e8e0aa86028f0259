"""A configurable, fully convolutional U-Net in Keras 3 (keras.layers / keras.ops only).

    python -c "from segmodel import unet, config; unet.build_unet(config.ModelConfig(), 4, 3).summary()"

Any input size works: the input is padded up to a multiple of 2**depth inside the model and the
output cropped back, so callers never pad. Multi-class models end in a softmax over classes;
binary models (num_classes=2) in one sigmoid channel. The head is float32 so mixed precision is
safe. Saved and reloaded as `.keras`; the two custom layers are registered.
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
            x = keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"up{level}_resize")(x)
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
