"""What users' folders really hold (issue 33), through a real ingest run: phone photos turned
by EXIF, 16-bit colour, rasters of bands, lossy masks, mixed bit depths, and the dataset-level
gate. Each case is checked against pixels made here, not against our own decoder."""

import io
import json

import numpy as np
import pytest
import tensorflow as tf
from builders import encode, random_pair, write
from PIL import Image

from pipelines.ingest import pipeline as ingest
from segmodel import record_schema, train
from segmodel.manifest import ManifestError, load_manifest, shard_paths
from segmodel.plan import plan

INPROCESS = ["--profile", "inprocess"]


def _ingest(root, *extra, num_classes=3):
    return ingest.run(
        [
            f"--images_dir={root}/images",
            f"--masks_dir={root}/masks",
            f"--output_dir={root}/out",
            f"--num_classes={num_classes}",
            "--splits=train=1",
            "--stats_sample=0",
            *INPROCESS,
            *extra,
        ]
    )


def _records(out):
    """{key: (stored image as float32 [H, W, C], mask [H, W])} from the shards."""
    manifest = load_manifest(str(out))
    rows = {}
    for record in tf.data.TFRecordDataset(shard_paths(str(out), manifest, "train")):
        parsed = record_schema.parse_example(record)
        image, mask = record_schema.decode_example(parsed)
        rows[parsed[record_schema.IMAGE_SOURCE_ID].numpy().decode()] = (image.numpy(), mask.numpy())
    return rows


def _tiff(array, **kw) -> bytes:
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **kw)
    return buffer.getvalue()


def test_a_phone_photo_is_paired_and_stored_as_displayed(tmp_path):
    image, mask = random_pair(1, height=32, width=48)  # displayed: 32 high, 48 wide
    sideways = Image.fromarray(np.ascontiguousarray(np.rot90(image, 1)))  # stored: 48 x 32
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90° clockwise to display"
    write(str(tmp_path / "images/p.jpg"), encode(np.asarray(sideways), "JPEG", exif=exif.tobytes()))
    write(str(tmp_path / "masks/p.png"), encode(mask))  # drawn on what a viewer shows
    manifest = _ingest(tmp_path)
    assert manifest["counts"] == {"found": 1, "accepted": 1, "rejected": 0}
    stored, stored_mask = _records(tmp_path / "out")["p"]
    from PIL import ImageOps

    shown = ImageOps.exif_transpose(Image.open(tmp_path / "images/p.jpg"))  # Pillow's own
    np.testing.assert_array_equal(stored, np.asarray(shown).astype(np.float32))
    np.testing.assert_array_equal(stored_mask, mask)


def test_16_bit_colour_is_kept_16_bit_in_the_shards(tmp_path):
    rng = np.random.default_rng(2)
    camera = rng.integers(0, 4096, (20, 24, 3), dtype=np.uint16)  # 12-bit data in 16 bits
    from pipelines.image_io import encode_png

    _, mask = random_pair(2, height=20, width=24)
    write(str(tmp_path / "images/a.png"), encode_png(camera))
    write(str(tmp_path / "images/b.tif"), _tiff(camera, photometric="rgb"))
    for name in ("a", "b"):
        write(str(tmp_path / f"masks/{name}.png"), encode(mask))
    manifest = _ingest(tmp_path)
    assert manifest["stats"]["bit_depths"] == {"16": 2}
    for stored, _ in _records(tmp_path / "out").values():
        np.testing.assert_array_equal(stored, camera.astype(np.float32))
    means = camera.reshape(-1, 3).mean(0)
    np.testing.assert_allclose(manifest["stats"]["mean"], means, rtol=1e-9)


def test_a_mixed_8_and_16_bit_dataset_is_normalised_on_one_scale(tmp_path):
    """16-bit twins of 8-bit images (values x 257) give the statistics of the 8-bit half, so
    the model sees the same inputs: the mixed dataset trains as its 8-bit half does."""
    eight, mixed = tmp_path / "eight", tmp_path / "mixed"
    for i in range(6):
        image, mask = random_pair(10 + i, height=24, width=24)
        gray = image[..., 0]
        for root in (eight, mixed):
            write(str(root / f"masks/m{i}.png"), encode(mask))
        write(str(eight / f"images/m{i}.png"), encode(gray))
        twin = gray.astype(np.uint16) * 257 if i % 2 else gray
        write(str(mixed / f"images/m{i}.png"), encode(twin))
    a, b = _ingest(eight)["stats"], _ingest(mixed)["stats"]
    assert b["bit_depths"] == {"8": 3, "16": 3}
    np.testing.assert_allclose(b["mean"], a["mean"], rtol=1e-9)
    np.testing.assert_allclose(b["std"], a["std"], rtol=1e-9)
    from segmodel.config import DataConfig
    from segmodel.input_pipeline import make_dataset

    inputs = [
        [
            x.numpy()
            for x, _ in make_dataset(
                str(root / "out"),
                load_manifest(str(root / "out")),
                "train",
                DataConfig(),
                training=False,
            )
        ]
        for root in (eight, mixed)
    ]
    for x8, xm in zip(*inputs, strict=True):
        np.testing.assert_allclose(xm, x8, atol=1e-4)
    assert abs(np.mean([x.mean() for x in inputs[1]])) < 0.5  # not a near-constant input


def test_lossy_index_masks_are_refused_by_their_format(tmp_path):
    for i in range(3):
        image, mask = random_pair(20 + i)
        write(str(tmp_path / f"images/x{i}.png"), encode(image))
        write(str(tmp_path / f"masks/x{i}.jpg"), encode(mask, "JPEG", quality=90))
    with pytest.raises(ValueError) as raised:
        _ingest(tmp_path)
    assert "mask_lossy" in str(raised.value) and "save the masks as PNG" in str(raised.value)
    assert "--num_classes" not in str(raised.value)  # no hint to add classes from JPEG noise
    rejects = [json.loads(line) for line in (tmp_path / "out/rejects.jsonl").open()]
    assert {r["reason"] for r in rejects} == {"mask_lossy"}
    assert "JPEG" in rejects[0]["detail"] and "--mask_mode binary" in rejects[0]["detail"]


def test_binary_jpeg_masks_are_thresholded(tmp_path):
    image, mask = random_pair(30, num_classes=2)
    write(str(tmp_path / "images/b.png"), encode(image))
    write(str(tmp_path / "masks/b.jpg"), encode((mask * 255).astype(np.uint8), "JPEG"))
    manifest = _ingest(tmp_path, "--mask_mode=binary", num_classes=2)
    assert manifest["counts"]["accepted"] == 1
    _, stored = _records(tmp_path / "out")["b"]
    assert (stored == mask).mean() > 0.97  # edges of JPEG noise, thresholded at 128


def test_a_mostly_rejected_run_fails_and_train_refuses_its_dataset(tmp_path, capsys):
    image, mask = random_pair(40)
    write(str(tmp_path / "images/good.png"), encode(image))
    write(str(tmp_path / "masks/good.png"), encode(mask))
    for i in range(9):
        write(str(tmp_path / f"images/bad{i}.png"), b"not an image")
        write(str(tmp_path / f"masks/bad{i}.png"), encode(mask))
    argv = [
        f"--images_dir={tmp_path}/images",
        f"--masks_dir={tmp_path}/masks",
        f"--output_dir={tmp_path}/out",
        "--num_classes=3",
        *INPROCESS,
    ]
    assert ingest.main(argv) == 2
    err = capsys.readouterr().err
    assert "9 of 10 inputs rejected (90%), more than --max_rejected 0.2" in err
    assert "image_not_an_image: 9" in err
    manifest = load_manifest(str(tmp_path / "out"))
    assert manifest["status"] == "failed" and "9 of 10" in manifest["failures"][0]
    with pytest.raises(ManifestError, match="--allow_failed_dataset"):
        train.train(str(tmp_path / "out"), str(tmp_path / "run"), "smoke")
    assert not (tmp_path / "run" / "state.json").exists()
    # the same run with a looser gate passes
    assert ingest.main([*argv, "--overwrite", "--max_rejected=0.95"]) == 0
    assert load_manifest(str(tmp_path / "out"))["status"] == "ok"


def test_index_masks_of_0_and_255_fail_the_dataset(tmp_path, capsys):
    image, mask = random_pair(41, num_classes=2)
    write(str(tmp_path / "images/a.png"), encode(image))
    write(str(tmp_path / "masks/a.png"), encode((mask * 255).astype(np.uint8)))
    with pytest.raises(ValueError, match="--mask_mode binary"):
        _ingest(tmp_path, num_classes=2)
    assert load_manifest(str(tmp_path / "out"))["status"] == "failed"


def test_a_class_without_pixels_is_an_error_of_the_plan():
    manifest = {
        "num_classes": 2,
        "class_names": ["background", "nucleus"],
        "splits": {"train": {"records": 30}, "val": {"records": 5}},
        "stats": {
            "image_height": {"median": 64},
            "image_width": {"median": 64},
            "channels": 1,
            "class_pixels": [120000, 0],
            "class_frequencies": [1.0, 0.0],
        },
    }
    with pytest.raises(ValueError, match=r"class 1 \(nucleus\) has no labelled pixel"):
        plan(manifest)


def test_rasters_of_different_band_counts_fail_the_dataset(tmp_path):
    rng = np.random.default_rng(5)
    _, mask = random_pair(50, height=16, width=16)
    for i, bands in enumerate((4, 4, 8)):
        array = rng.integers(0, 4000, (16, 16, bands), dtype=np.uint16)
        write(
            str(tmp_path / f"images/t{i}.tif"),
            _tiff(array, photometric="minisblack", planarconfig="contig"),
        )
        write(str(tmp_path / f"masks/t{i}.png"), encode(mask))
    with pytest.raises(ValueError, match="2 images of 4 bands, 1 images of 8 bands"):
        _ingest(tmp_path)
    assert load_manifest(str(tmp_path / "out"))["status"] == "failed"


def test_a_13_band_float_raster_is_ingested_as_it_is(tmp_path):
    rng = np.random.default_rng(6)
    arrays = {}
    for i in range(3):
        image = rng.normal(0.1, 0.05, (13, 16, 20)).astype(np.float32)  # planar, like GDAL's
        arrays[f"s{i}"] = np.moveaxis(image, 0, -1)
        _, mask = random_pair(60 + i, height=16, width=20)
        write(
            str(tmp_path / f"images/s{i}.tif"),
            _tiff(image, photometric="minisblack", planarconfig="separate"),
        )
        write(str(tmp_path / f"masks/s{i}.png"), encode(mask))
    manifest = _ingest(tmp_path)
    stats = manifest["stats"]
    assert (stats["channels"], stats["bands"], stats["bit_depths"]) == (13, True, {"32": 3})
    every = np.concatenate([a.reshape(-1, 13) for a in arrays.values()]).astype(np.float64)
    np.testing.assert_allclose(stats["mean"], every.mean(0), rtol=1e-9)
    np.testing.assert_allclose(stats["std"], every.std(0), rtol=1e-6)
    for key, (stored, _) in _records(tmp_path / "out").items():
        np.testing.assert_array_equal(stored, arrays[key])


def test_inference_writes_the_mask_of_a_phone_photo_as_displayed(tmp_path, exported_model):
    from pipelines.infer import pipeline as infer

    image, _ = random_pair(70, height=32, width=48)  # displayed: 32 high, 48 wide
    stored = np.ascontiguousarray(np.rot90(image, 1))  # 48 high, 32 wide in the file
    exif = Image.Exif()
    exif[0x0112] = 6
    write(str(tmp_path / "in/p.jpg"), encode(stored, "JPEG", quality=95, exif=exif.tobytes()))
    write(str(tmp_path / "in/plain.jpg"), encode(image, "JPEG", quality=95))
    infer.run(
        [
            f"--model_dir={exported_model}",
            f"--input_pattern={tmp_path}/in/*.jpg",
            f"--output_dir={tmp_path}/pred",
            *INPROCESS,
        ]
    )
    turned = np.asarray(Image.open(tmp_path / "pred/masks/p.jpg.png"))
    plain = np.asarray(Image.open(tmp_path / "pred/masks/plain.jpg.png"))
    assert turned.shape == plain.shape == (32, 48)  # over the photo a viewer shows
    assert (turned == plain).mean() > 0.95  # the same picture, up to JPEG noise


def test_nodata_nan_is_refused_and_overviews_are_not_pages():
    import tifffile

    from pipelines.image_io import ImageError, read_image

    image = np.random.default_rng(7).normal(0, 1, (16, 16, 5)).astype(np.float32)
    holes = image.copy()
    holes[:2, :3] = np.nan
    with pytest.raises(ImageError, match="6 pixels are NaN or infinite"):
        read_image(_tiff(holes, photometric="minisblack", planarconfig="contig"))
    buffer = io.BytesIO()  # a cloud-optimised layout: the image, then a reduced overview
    with tifffile.TiffWriter(buffer) as tif:
        tif.write(image, photometric="minisblack", planarconfig="contig")
        tif.write(image[::2, ::2], photometric="minisblack", planarconfig="contig", subfiletype=1)
    decoded = read_image(buffer.getvalue())
    np.testing.assert_array_equal(decoded.array, image)
    two_images = _tiff(np.stack([image, image]), photometric="minisblack", planarconfig="contig")
    with pytest.raises(ImageError, match="pages"):
        read_image(two_images)


def test_sidecar_files_do_not_fail_the_gate(tmp_path):
    for i in range(4):
        image, mask = random_pair(90 + i)
        write(str(tmp_path / f"images/x{i}.png"), encode(image))
        write(str(tmp_path / f"images/x{i}.json"), b"{}")  # metadata beside each image
        write(str(tmp_path / f"masks/x{i}.png"), encode(mask))
    manifest = _ingest(tmp_path)
    assert manifest["status"] == "ok" and manifest["counts"]["rejected"] == 4
