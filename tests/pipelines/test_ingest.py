import json
import os

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from builders import encode, random_pair, write
from PIL import Image

from pipelines.image_io import read_image
from pipelines.ingest import pipeline as ingest
from pipelines.ingest.bundle_report import merge_reports
from pipelines.ingest.config import IngestConfig
from pipelines.ingest.pair_encoding import RecordSpec
from pipelines.ingest.pairing import parse_splits
from segmodel import record_schema
from segmodel.manifest import load_manifest, shard_paths

INPROCESS = ["--profile", "inprocess"]


def _args(images, masks, out, *extra):
    return [
        f"--images_dir={images}",
        f"--masks_dir={masks}",
        f"--output_dir={out}",
        "--num_classes=3",
        *INPROCESS,
        *extra,
    ]


def read_split(out_dir, split, channels=3):
    manifest = load_manifest(str(out_dir))
    paths = shard_paths(str(out_dir), manifest, split)
    compression = "GZIP" if manifest["compression"] == "gzip" else ""
    rows = []
    for record in tf.data.TFRecordDataset(paths, compression_type=compression):
        parsed = record_schema.parse_example(record)
        image, mask = record_schema.decode_example(parsed, channels)
        rows.append(
            (parsed[record_schema.IMAGE_SOURCE_ID].numpy().decode(), image.numpy(), mask.numpy())
        )
    return rows


def test_end_to_end_reads_back_pixel_for_pixel(synthetic_dir, tmp_path):
    out = tmp_path / "out"
    manifest = ingest.run(_args(synthetic_dir / "images", synthetic_dir / "masks", out))
    assert manifest["counts"] == {"found": 40, "accepted": 40, "rejected": 0}
    seen, pixels = set(), []
    for split, info in manifest["splits"].items():
        rows = read_split(out, split)
        assert len(rows) == info["records"]
        for key, image, mask in rows:
            source = np.asarray(Image.open(synthetic_dir / "images" / f"{key}.png"))
            source_mask = np.asarray(Image.open(synthetic_dir / "masks" / f"{key}.png"))
            np.testing.assert_array_equal(image, source)
            np.testing.assert_array_equal(mask, source_mask)
            seen.add(key)
            pixels.append(source.reshape(-1, 3).astype(np.float64))
    assert len(seen) == 40
    everything = np.concatenate(pixels)
    np.testing.assert_allclose(manifest["stats"]["mean"], everything.mean(0), rtol=1e-9)
    np.testing.assert_allclose(manifest["stats"]["std"], everything.std(0), rtol=1e-9)
    assert sum(manifest["stats"]["class_pixels"]) == len(everything)
    assert (out / "rejects.jsonl").read_text() == ""
    assert not [p for p in os.listdir(out) if p.startswith(".")]  # temp files cleaned up


def test_composite_under_test_pipeline(synthetic_dir, tmp_path):
    write(str(tmp_path / "in/images/extra.png"), encode(random_pair(5)[0]))
    for name in os.listdir(synthetic_dir / "images/group_000")[:5]:
        for kind in ("images", "masks"):
            data = (synthetic_dir / kind / "group_000" / name).read_bytes()
            write(str(tmp_path / "in" / kind / name), data)
    config = IngestConfig(
        images_dir=str(tmp_path / "in/images"),
        masks_dir=str(tmp_path / "in/masks"),
        output_dir=str(tmp_path / "out"),
        spec=RecordSpec(num_classes=3),
        splits=parse_splits("train=1.0"),
        num_shards=2,
    )
    (tmp_path / "out").mkdir()
    with TestPipeline(runner="FnApiRunner") as p:
        result = p | ingest.IngestDataset(config, str(tmp_path / "out/.tmp"))
        merged = (
            p
            | beam.Create([None])
            | beam.Map(
                lambda _, listing, pairing: merge_reports(listing + pairing, 3),
                beam.pvalue.AsList(result["listing_reports"]),
                beam.pvalue.AsList(result["pairing_reports"]),
            )
        )
        assert_that(
            merged | beam.Map(lambda r: (r.found, r.accepted, dict(r.reasons))),
            equal_to([(6, 5, {"unpaired_image": 1})]),
            label="Counts",
        )
        assert_that(
            merged
            | beam.FlatMap(lambda r: [json.loads(line) for f in r.reject_files for line in open(f)])
            | beam.Map(lambda r: (r["key"], r["reason"], os.path.basename(r["image"]))),
            equal_to([("extra", "unpaired_image", "extra.png")]),
            label="RejectsFile",
        )
        assert_that(
            result["shards"] | beam.Map(lambda s: s.records) | beam.CombineGlobally(sum),
            equal_to([5]),
            label="Records",
        )


def _bad_inputs(root):
    images, masks = root / "images", root / "masks"
    good = []
    for i in range(4):
        image, mask = random_pair(i)
        write(str(images / f"ok/{i}.png"), encode(image))
        write(str(masks / f"ok/{i}.png"), encode(mask))
        good.append(f"ok/{i}")
    image, mask = random_pair(9)
    cases = {
        "unpaired_image": [("images", "lonely.png", encode(image))],
        "orphan_mask": [("masks", "orphan.png", encode(mask))],
        "ambiguous_key": [
            ("images", "dup.png", encode(image)),
            ("images", "dup.jpg", encode(image, "JPEG")),
            ("masks", "dup.png", encode(mask)),
        ],
        "image_not_an_image": [
            ("images", "text.png", b"just text"),
            ("masks", "text.png", encode(mask)),
        ],
        "image_empty_file": [("images", "empty.png", b""), ("masks", "empty.png", encode(mask))],
        "image_corrupt": [
            ("images", "trunc.png", encode(image)[:90]),
            ("masks", "trunc.png", encode(mask)),
        ],
        "size_mismatch": [
            ("images", "size.png", encode(image)),
            ("masks", "size.png", encode(mask[:5])),
        ],
        "mask_values_out_of_range": [
            ("images", "range.png", encode(image)),
            ("masks", "range.png", encode(mask + 7)),
        ],
        "unsupported_extension": [("images", "notes.txt", b"hello")],
        "image_too_many_pixels": [
            ("images", "big.png", encode(np.zeros((300, 300, 3), np.uint8))),
            ("masks", "big.png", encode(np.zeros((300, 300), np.uint8))),
        ],
    }
    for files in cases.values():
        for kind, name, data in files:
            write(str(root / kind / name), data)
    return good, cases


def test_bad_inputs_are_reported_and_counts_add_up(tmp_path, capsys):
    good, cases = _bad_inputs(tmp_path / "in")
    out = tmp_path / "out"
    manifest = ingest.run(
        _args(
            tmp_path / "in/images",
            tmp_path / "in/masks",
            out,
            "--max_pixels=50000",
            "--max_rejected=1",
        )
    )
    counts = manifest["counts"]
    assert counts["accepted"] == len(good)
    assert counts["rejected"] == len(cases)
    assert counts["found"] == counts["accepted"] + counts["rejected"]
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert sorted(r["reason"] for r in rejects) == sorted(cases)
    assert manifest["rejects"]["by_reason"] == {reason: 1 for reason in cases}
    for r in rejects:
        assert r["detail"] and (r["image"] or r["mask"])
    printed = capsys.readouterr().out
    assert f"found {counts['found']} = accepted {len(good)} + rejected {len(cases)}" in printed


def test_formats_mask_modes_and_class_names(tmp_path):
    rng = np.random.default_rng(0)
    images, masks = tmp_path / "images", tmp_path / "masks"
    gray16 = (rng.integers(0, 65535, (20, 24))).astype(np.uint16)
    rgb = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
    rgba = rng.integers(0, 255, (20, 24, 4), dtype=np.uint8)
    mask = (rng.integers(0, 2, (20, 24)) * 255).astype(np.uint8)
    write(str(images / "tiff16.tif"), encode(gray16, "TIFF"))
    write(str(images / "photo.jpg"), encode(rgb, "JPEG"))
    write(str(images / "bitmap.bmp"), encode(rgb, "BMP"))
    write(str(images / "web.webp"), encode(rgba, "WEBP", lossless=True, exact=True))
    for name in ("tiff16", "photo", "bitmap", "web"):
        write(str(masks / f"{name}_mask.png"), encode(mask))
    out = tmp_path / "out"
    manifest = ingest.run(
        [
            f"--images_dir={images}",
            f"--masks_dir={masks}",
            f"--output_dir={out}",
            "--num_classes=2",
            "--mask_mode=binary",
            "--mask_suffix=_mask",
            "--splits=train=1",
            "--class_names=bg,fg",
            *INPROCESS,
        ]
    )
    assert manifest["counts"]["accepted"] == 4, manifest["rejects"]
    assert manifest["class_names"] == ["bg", "fg"]
    assert manifest["stats"]["bit_depths"] == {"8": 3, "16": 1}
    paths = shard_paths(str(out), manifest, "train")
    for record in tf.data.TFRecordDataset(paths):
        parsed = record_schema.parse_example(record)
        key = parsed[record_schema.IMAGE_SOURCE_ID].numpy().decode()
        image, decoded_mask = record_schema.decode_example(parsed)  # as stored
        np.testing.assert_array_equal(decoded_mask.numpy(), mask // 255)
        expected = {"tiff16": gray16[..., None], "bitmap": rgb, "web": rgba}.get(key)
        if key == "photo":
            expected = read_image((images / "photo.jpg").read_bytes()).array
        np.testing.assert_array_equal(image.numpy(), expected)


def test_rgb_masks_through_palette(tmp_path):
    image, classes = random_pair(4)
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)
    write(str(tmp_path / "images/a.png"), encode(image))
    write(str(tmp_path / "masks/a.png"), encode(colours[classes]))
    write(str(tmp_path / "palette.json"), b'{"#000000": 0, "#ff0000": 1, "#0000ff": 2}')
    out = tmp_path / "out"
    ingest.run(
        _args(
            tmp_path / "images",
            tmp_path / "masks",
            out,
            "--mask_mode=rgb",
            f"--palette={tmp_path / 'palette.json'}",
            "--splits=train=1",
        )
    )
    [(_, _, mask)] = read_split(out, "train")
    np.testing.assert_array_equal(mask, classes)


def test_rerun_replaces_shards_without_duplicates_or_stale_files(synthetic_dir, tmp_path):
    out = tmp_path / "out"
    args = _args(synthetic_dir / "images", synthetic_dir / "masks", out)
    ingest.run(args + ["--num_shards=4"])
    manifest = ingest.run(args + ["--num_shards=2", "--compression=gzip", "--overwrite"])
    files = sorted(p for p in os.listdir(out) if "tfrecord" in p)
    assert files == sorted(n for s in manifest["splits"].values() for n in s["shards"])
    assert sum(len(read_split(out, s)) for s in manifest["splits"]) == 40


def test_bad_flags_give_one_clear_message(tmp_path, capsys):
    assert (
        ingest.main(["--images_dir=x", "--masks_dir=y", f"--output_dir={tmp_path}", *INPROCESS])
        == 2
    )
    assert "--num_classes is required" in capsys.readouterr().err
    assert ingest.main(_args(tmp_path, tmp_path, tmp_path, "--mask_mode=rgb")) == 2
    assert "--palette" in capsys.readouterr().err
    assert ingest.main(_args(tmp_path / "nope", tmp_path, tmp_path)) == 2
    assert f"--images_dir {tmp_path / 'nope'}: no such folder" in capsys.readouterr().err


@pytest.mark.slow
def test_two_worker_processes_give_the_same_shards(synthetic_dir, tmp_path):
    common = [
        f"--images_dir={synthetic_dir / 'images'}",
        f"--masks_dir={synthetic_dir / 'masks'}",
        "--num_classes=3",
        "--num_shards=2",
    ]
    ingest.run(common + [f"--output_dir={tmp_path / 'a'}", "--profile=inprocess"])
    manifest = ingest.run(
        common + [f"--output_dir={tmp_path / 'b'}", "--profile=local", "--direct_num_workers=2"]
    )
    assert manifest["options"]["runner"] == "FnApiRunner"
    for info in manifest["splits"].values():
        for name in info["shards"]:
            a = sorted(r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / "a" / name)))
            b = sorted(r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / "b" / name)))
            assert a == b


def test_folder_splits_follow_the_top_folder(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    for seed, key in enumerate(("train/a/x1", "train/x2", "val/x3", "test/x4", "extra/x5")):
        image, mask = random_pair(seed, 16, 20, 3)
        write(str(images / f"{key}.png"), encode(image))
        write(str(masks / f"{key}.png"), encode(mask))
    out = tmp_path / "out"
    manifest = ingest.run(_args(images, masks, out, "--splits=folders"))
    assert {k: v["records"] for k, v in manifest["splits"].items()} == {
        "train": 2,
        "val": 1,
        "test": 1,
    }
    assert manifest["splits"]["val"]["fraction"] is None
    assert manifest["counts"] == {"found": 5, "accepted": 4, "rejected": 1}
    assert manifest["rejects"]["by_reason"] == {"outside_split_folders": 1}
    assert sorted(key for key, _, _ in read_split(out, "train")) == ["train/a/x1", "train/x2"]


def test_statistics_sample_decodes_some_images_and_checks_all(tmp_path):
    from pipelines.ingest.pairing import in_sample

    images, masks = tmp_path / "in/images", tmp_path / "in/masks"
    arrays = {}
    for i in range(110):
        image, mask = random_pair(100 + i, 8, 8)
        arrays[f"p{i:03d}"] = image
        write(str(images / f"p{i:03d}.png"), encode(image))
        write(str(masks / f"p{i:03d}.png"), encode(mask))
    damaged = bytearray(encode(random_pair(300, 24, 24)[0]))
    damaged[damaged.index(b"IDAT") + 50] ^= 0xFF  # checksum no longer matches
    write(str(images / "damaged.png"), bytes(damaged))
    write(str(masks / "damaged.png"), encode(random_pair(300, 24, 24)[1]))
    out = tmp_path / "out"
    manifest = ingest.run(_args(images, masks, out, "--stats_sample=100"))
    assert manifest["counts"] == {"found": 111, "accepted": 110, "rejected": 1}
    assert manifest["rejects"]["by_reason"] == {"image_corrupt": 1}
    # The sample: keys whose hash falls under 100 of 111 listed pairs, computed independently.
    sampled = [arrays[k] for k in sorted(arrays) if in_sample(k, 100 / 111)]
    stats = manifest["stats"]
    assert 0 < stats["intensity_images"] == len(sampled) < 110
    pixels = np.concatenate([a.reshape(-1, 3) for a in sampled]).astype(np.float64)
    np.testing.assert_allclose(stats["mean"], pixels.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(stats["std"], pixels.std(axis=0), rtol=1e-9)
    assert sum(split["records"] for split in manifest["splits"].values()) == 110
    full = ingest.run(_args(images, masks, tmp_path / "full", "--stats_sample=0"))
    assert full["stats"]["intensity_images"] == 110
    assert full["counts"] == manifest["counts"]


def test_statistics_sample_flag_and_empty_sample_fail_clearly(tmp_path):
    from pipelines.ingest import gate
    from pipelines.ingest.config import IngestOptions
    from pipelines.ingest.finalize import check_outcome

    args = _args(tmp_path / "images", tmp_path / "masks", tmp_path / "out", "--stats_sample=5")
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(ValueError, match="--stats_sample must be 0"):
        IngestConfig.from_options(IngestOptions(args))
    config = IngestConfig.from_options(IngestOptions(args[:-1]))
    batch = {
        "batch": 1,
        "counts": {"found": 3, "accepted": 2, "rejected": 1},
        "rejects_by_reason": {"image_corrupt": 1},
    }
    stats = {"intensity_images": 0, "ignored_pixels": 0, "class_pixels": [5, 5, 5]}
    (problem,) = gate.failures(batch, stats, config.spec, max_rejected=1)
    assert "--stats_sample 0" in problem
    manifest = gate.mark({"batches": [batch]}, [problem])
    with pytest.raises(ValueError, match="--stats_sample 0"):
        check_outcome(manifest, config)


def _png_with_short_pixel_stream(data: bytes) -> bytes:
    """The PNG with its pixel data replaced by a valid but far too short zlib stream, every
    checksum recomputed: what only a faulty encoder writes."""
    import zlib

    pos, chunks = 8, [data[:8]]
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, payload = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IDAT":
            payload = zlib.compress(b"\x00" * 3)
        crc = zlib.crc32(kind + payload).to_bytes(4, "big")
        chunks.append(len(payload).to_bytes(4, "big") + kind + payload + crc)
        pos += 12 + length
    return b"".join(chunks)


@pytest.mark.slow
def test_an_undecodable_png_outside_the_sample_stops_training_with_the_fix(tmp_path):
    from pipelines.image_io import verify_png
    from pipelines.ingest.pairing import assign_split, in_sample
    from segmodel import train

    images, masks = tmp_path / "in/images", tmp_path / "in/masks"
    for i in range(110):
        image, mask = random_pair(400 + i)
        write(str(images / f"p{i:03d}.png"), encode(image))
        write(str(masks / f"p{i:03d}.png"), encode(mask))
    splits = parse_splits("train=0.8,val=0.1,test=0.1")
    name = next(
        k
        for k in (f"bad{i:03d}" for i in range(1000))
        if not in_sample(k, 100 / 111) and assign_split(k, splits) == "train"
    )
    image, mask = random_pair(999)
    bad = _png_with_short_pixel_stream(encode(image))
    assert verify_png(bad) is not None  # its checksums are right
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.io.decode_png(bad).numpy()
    write(str(images / f"{name}.png"), bad)
    write(str(masks / f"{name}.png"), encode(mask))
    data = tmp_path / "data"
    manifest = ingest.run(_args(images, masks, data, "--stats_sample=100"))
    assert manifest["counts"]["accepted"] == 111  # outside the sample it got in
    overrides = ["train.epochs=1", "train.steps_per_epoch=60", "data.cache_decoded=false"]
    with pytest.raises(ValueError, match="--stats_sample 0"):
        train.train(str(data), str(tmp_path / "run"), "smoke", overrides, verbose=0)
    full = ingest.run(_args(images, masks, tmp_path / "full", "--stats_sample=0"))
    assert full["rejects"]["by_reason"] == {"image_corrupt": 1}  # decoded: rejected by name
