"""One model-input path: the same file gives the same model input and the same mask whether it
reaches the model through the training shards (ingest + tf.data), the exported SavedModel's
`serve` signature or Beam bulk inference (Pillow + numpy)."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from pipelines.image_io import encode_png, read_image
from pipelines.ingest.pair_encoding import RecordSpec, encode_pair
from pipelines.ingest.pairing import Pair
from segmodel import config, record_schema, unet
from segmodel.export import serving_function
from segmodel.preprocessing import decode_tf, model_input_np, model_input_tf, normalize

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (24, 20, 3), dtype=np.uint8)
GRAY = RNG.integers(0, 256, (24, 20), dtype=np.uint8)
MASK = encode_png(np.zeros((24, 20), np.uint8))


def _save(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def _palette() -> tuple[bytes, np.ndarray]:
    """A palette PNG and the RGB pixels it stands for."""
    image = Image.fromarray(RGB).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return _save(image), np.asarray(image.convert("RGB"))


PALETTE, PALETTE_RGB = _palette()
RGBA = np.dstack([RGB, RNG.integers(0, 256, (24, 20), dtype=np.uint8)])
GRAY_JPEG = _save(Image.fromarray(GRAY), "JPEG", quality=90)
RGB_JPEG = _save(Image.fromarray(RGB), "JPEG", quality=90)

# name -> (file bytes, the 8-bit pixels it should be equivalent to, gray?)
FILES = {
    "gray8_png": (_save(Image.fromarray(GRAY)), GRAY, True),
    "gray16_png": (_save(Image.fromarray(GRAY.astype(np.uint16) * 257)), GRAY, True),
    "gray16_tiff": (_save(Image.fromarray(GRAY.astype(np.uint16) * 257), "TIFF"), GRAY, True),
    "gray_alpha_png": (_save(Image.fromarray(GRAY).convert("LA")), GRAY, True),
    "gray_jpeg": (GRAY_JPEG, np.asarray(Image.open(io.BytesIO(GRAY_JPEG))), True),
    "rgb_png": (_save(Image.fromarray(RGB)), RGB, False),
    "rgba_png": (_save(Image.fromarray(RGBA)), RGB, False),
    "palette_png": (PALETTE, PALETTE_RGB, False),
    "rgb_jpeg": (RGB_JPEG, np.asarray(Image.open(io.BytesIO(RGB_JPEG))), False),
}
SERVABLE = {name for name in FILES if "tiff" not in name}  # the SavedModel takes PNG/JPEG


def _training_input(data: bytes, channels, bit_depth, mean, std) -> np.ndarray:
    """The ingest record for the file, decoded the way tf.data does for training and evaluation."""
    pair = Pair("x", "x.img", "x.png", "train", 0)
    record, _ = encode_pair(pair, data, MASK, RecordSpec(2, "index", 255))
    parsed = record_schema.parse_example(tf.constant(record))
    image, _ = record_schema.decode_example(parsed, channels, bit_depth)
    return normalize(image, mean, std).numpy()


def _serving_input(data: bytes, channels, bit_depth, mean, std) -> np.ndarray:
    image, bits = decode_tf(tf.constant(data))
    return model_input_tf(image, bits, channels, bit_depth, mean, std).numpy()


def _beam_input(data: bytes, channels, bit_depth, mean, std) -> np.ndarray:
    return model_input_np(read_image(data).array, channels, bit_depth, mean, std)


@pytest.mark.parametrize("bit_depth", [8, 16])
@pytest.mark.parametrize("channels", [1, 3])
def test_every_path_gives_the_same_input_and_mask(channels, bit_depth):
    mean, std = ([40.0] * channels, [30.0] * channels)
    if bit_depth == 16:
        mean, std = [m * 257 for m in mean], [s * 257 for s in std]
    model = unet.build_unet(config.smoke().model, 3, channels)
    serve = serving_function(model, channels, bit_depth, mean, std)
    for name, (data, pixels, _) in FILES.items():
        args = (channels, bit_depth, mean, std)
        train_x = _training_input(data, *args)
        beam_x = _beam_input(data, *args)
        assert train_x.shape == (24, 20, channels), name
        np.testing.assert_allclose(beam_x, train_x, atol=1e-6, err_msg=name)
        # The file's equivalent 8-bit pixels give that same input (16-bit twin, alpha, palette).
        np.testing.assert_allclose(
            model_input_np(pixels, channels, bit_depth, mean, std),
            train_x,
            atol=1e-6 if bit_depth == 8 else 1e-4,
            err_msg=name,
        )
        masks = [
            np.asarray(unet.class_probabilities(model(x[None]))).argmax(-1)
            for x in (train_x, beam_x)
        ]
        if name in SERVABLE:
            np.testing.assert_allclose(
                _serving_input(data, *args), train_x, atol=1e-6, err_msg=name
            )
            masks.append(serve(tf.constant([data]))["classes"].numpy())
        for other in masks[1:]:
            np.testing.assert_array_equal(other, masks[0], err_msg=name)
