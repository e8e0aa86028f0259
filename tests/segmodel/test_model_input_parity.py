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
from segmodel.contract import InputContract
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


def _exif_rotated_jpeg() -> tuple[bytes, np.ndarray]:
    """A phone photo: stored sideways, EXIF orientation 6 ("turn 90° clockwise to display");
    what a viewer shows, by Pillow's own exif_transpose (an independent path)."""
    from PIL import ImageOps

    stored = Image.fromarray(np.ascontiguousarray(np.rot90(RGB, 1)))  # 20 x 24 as stored
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _save(stored, "JPEG", quality=95, exif=exif.tobytes())
    shown = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    return data, np.asarray(shown)


def _tiff(array: np.ndarray, **kw) -> bytes:
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **kw)
    return buffer.getvalue()


ROTATED_JPEG, ROTATED_PIXELS = _exif_rotated_jpeg()
FILES["rgb16_png"] = (encode_png(RGB.astype(np.uint16) * 257), RGB, False)
FILES["rgb16_tiff"] = (_tiff(RGB.astype(np.uint16) * 257, photometric="rgb"), RGB, False)
FILES["exif_rotated_jpeg"] = (ROTATED_JPEG, ROTATED_PIXELS, False)
# the SavedModel takes PNG/JPEG as stored: no TIFF, and TensorFlow ignores EXIF orientation
SERVABLE = {name for name in FILES if "tiff" not in name and "exif" not in name}


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
    serve = serving_function(model, InputContract(channels, bit_depth, False, mean, std))
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


def test_16_bit_colour_keeps_its_16_bits_in_the_shards():
    twelve_bit = RNG.integers(0, 4096, (24, 20, 3), dtype=np.uint16)  # camera data, 0..4095
    for data in (encode_png(twelve_bit), _tiff(twelve_bit, photometric="rgb")):
        decoded = read_image(data)
        assert (decoded.bit_depth, decoded.channels) == (16, 3)
        np.testing.assert_array_equal(decoded.array, twelve_bit)
        pair = Pair("x", "x.img", "x.png", "train", 0)
        record, _ = encode_pair(pair, data, MASK, RecordSpec(2, "index", 255))
        image, _ = record_schema.decode_example(record_schema.parse_example(tf.constant(record)))
        np.testing.assert_array_equal(image.numpy(), twelve_bit.astype(np.float32))


@pytest.mark.parametrize(
    "name,array,kw",
    [
        ("4-band uint16 (R, G, B, NIR)", RNG.integers(0, 4096, (24, 20, 4), dtype=np.uint16), {}),
        ("8-band uint8", RNG.integers(0, 256, (24, 20, 8), dtype=np.uint8), {}),
        ("13-band uint16, planar", RNG.integers(0, 9999, (13, 24, 20), dtype=np.uint16), {}),
        ("6-band float32", RNG.normal(0.2, 0.1, (24, 20, 6)).astype(np.float32), {}),
        ("1-band float32", RNG.normal(0, 1, (24, 20)).astype(np.float32), {}),
    ],
)
def test_rasters_of_bands_reach_the_model_as_they_are(name, array, kw):
    planar = array.shape[0] == 13
    layout = "separate" if planar else "contig" if array.ndim == 3 else None
    data = _tiff(array, photometric="minisblack", planarconfig=layout)
    truth = np.moveaxis(array, 0, -1) if planar else array
    truth3 = truth if truth.ndim == 3 else truth[..., None]
    bands = truth3.shape[-1]
    decoded = read_image(data)
    assert decoded.bands and decoded.channels == bands, name
    np.testing.assert_array_equal(decoded.array.reshape(truth3.shape), truth3)
    bit_depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(truth.dtype, 32)
    mean = truth3.reshape(-1, bands).mean(0).tolist()
    std = (truth3.reshape(-1, bands).std(0) + 1).tolist()
    # the shards: a raw record of the same pixels, decoded by TensorFlow
    pair = Pair("x", "x.tif", "x.png", "train", 0)
    record, stats = encode_pair(pair, data, MASK, RecordSpec(2, "index", 255))
    assert stats.bands and len(stats.pixel_sum) == bands
    parsed = record_schema.parse_example(tf.constant(record))
    stored, _ = record_schema.decode_example(parsed)
    np.testing.assert_array_equal(stored.numpy(), truth3.astype(np.float32))
    image, _ = record_schema.decode_example(parsed, bands, bit_depth, bands=True)
    train_x = normalize(image, mean, std).numpy()
    beam_x = model_input_np(decoded.array, bands, bit_depth, mean, std, bands=True)
    by_hand = (truth3.astype(np.float32) - np.float32(mean)) / np.float32(std)
    np.testing.assert_allclose(train_x, by_hand, atol=1e-5)
    np.testing.assert_allclose(beam_x, by_hand, atol=1e-5)
    # a file of other bands is refused by name, never cut or padded
    with pytest.raises(ValueError, match=f"has {bands} bands, the model takes {bands + 1}"):
        model_input_np(decoded.array, bands + 1, bit_depth, mean + [0], std + [1], bands=True)


def test_a_4_channel_tiff_is_rgba_only_when_it_says_so():
    rgba = _tiff(RGBA, photometric="rgb", extrasamples=["unassalpha"])
    rgbn = _tiff(RGBA, photometric="rgb", extrasamples=["unspecified"])
    assert not read_image(rgba).bands and read_image(rgba).channels == 4
    assert read_image(rgbn).bands and read_image(rgbn).channels == 4
