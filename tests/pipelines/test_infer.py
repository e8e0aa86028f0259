import json
import os

import apache_beam as beam
import numpy as np
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from builders import encode, random_pair, write
from PIL import Image

from pipelines.infer import config
from pipelines.infer import pipeline as infer
from segmodel.predict import predict_images
from segmodel.preprocessing import model_input_np
from segmodel.saving import load_metadata, load_model

INPROCESS = ["--profile", "inprocess"]


def _inputs(root):
    sizes = {
        "a/small.png": (24, 30),
        "a/b/other.png": (24, 30),
        "wide.jpg": (40, 70),
        "big.png": (150, 140),
        "name with space.png": (16, 16),
    }
    for i, (name, (h, w)) in enumerate(sizes.items()):
        image, _ = random_pair(i, h, w)
        write(str(root / name), encode(image, "JPEG" if name.endswith(".jpg") else "PNG"))
    write(str(root / "broken.png"), b"not an image")
    write(str(root / "empty.png"), b"")
    return sizes


def _run(images, out, model, *extra):
    return infer.run(
        [
            f"--model_dir={model}",
            f"--input_pattern={images}/**",
            f"--output_dir={out}",
            "--tile_size=64",
            "--tile_overlap=16",
            "--batch_size=4",
            *INPROCESS,
            *extra,
        ]
    )


def _records(out):
    rows = []
    for name in os.listdir(out):
        if name.startswith("predictions-"):
            rows += [json.loads(line) for line in (out / name).read_text().splitlines()]
    return rows


def test_end_to_end_masks_records_and_rejects(tmp_path, exported_model):
    sizes = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    summary = _run(tmp_path / "in", out, exported_model, "--save_probabilities")
    assert summary == {**summary, "inputs": 7, "predictions": 5, "rejects": 2}
    version = load_metadata(str(exported_model))["model_version"]
    for name, (h, w) in sizes.items():
        mask = Image.open(out / "masks" / f"{name}.png")
        assert mask.mode == "P" and mask.size == (w, h)
        assert mask.text["model_version"] == version
        assert np.asarray(mask).max() < 3
        probs = np.load(out / "probabilities" / f"{name}.npy")
        assert probs.shape == (h, w, 3)
        # float16 on disk: near-ties may round the other way, nothing more
        assert (probs.argmax(-1) == np.asarray(mask)).mean() > 0.999
    records = _records(out)
    assert sorted(r["path"] for r in records) == sorted(sizes)
    assert all(abs(sum(r["class_fractions"]) - 1) < 1e-4 for r in records)
    rejects = [
        json.loads(line)
        for n in os.listdir(out)
        if n.startswith("rejects-")
        for line in (out / n).read_text().splitlines()
    ]
    assert sorted(r["reason"] for r in rejects) == ["empty_file", "not_an_image"]
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


def test_tiled_inference_agrees_with_whole_image(exported_model):
    model = load_model(str(exported_model))
    meta = load_metadata(str(exported_model))
    image, _ = random_pair(3, 200, 180)
    x = model_input_np(image, 3, 8, meta["normalization"]["mean"], meta["normalization"]["std"])
    [tiled] = predict_images(model, [x], tile_size=64, tile_overlap=24, batch_size=8)
    [whole] = predict_images(model, [x], tile_size=512, tile_overlap=0, batch_size=1)
    assert (tiled.argmax(-1) == whole.argmax(-1)).mean() >= 0.99


def test_rerun_with_skip_existing_completes_without_duplicates(tmp_path, exported_model):
    sizes = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    _run(tmp_path / "in", out, exported_model)
    # Simulate a crash part way: two masks never written, no predictions file finalized.
    for name in ("big.png", "a/small.png"):
        os.remove(out / "masks" / f"{name}.png")
    for name in os.listdir(out):
        if name.startswith("predictions-"):
            os.remove(out / name)
    before = {
        n: (out / "masks" / f"{n}.png").stat().st_mtime_ns
        for n in sizes
        if n not in ("big.png", "a/small.png")
    }
    summary = _run(tmp_path / "in", out, exported_model, "--skip_existing")
    assert summary["predictions"] == 5 and summary["rejects"] == 2
    records = _records(out)
    assert sorted(r["path"] for r in records) == sorted(sizes)  # one record per image
    assert {r["path"] for r in records if not r["skipped"]} == {"big.png", "a/small.png"}
    for name, mtime in before.items():  # untouched
        assert (out / "masks" / f"{name}.png").stat().st_mtime_ns == mtime


def test_skip_existing_recomputes_masks_not_written_by_our_models(tmp_path, exported_model):
    _inputs(tmp_path / "in")
    out = tmp_path / "out"
    _run(tmp_path / "in", out, exported_model)
    stale = out / "masks" / "wide.jpg.png"
    Image.fromarray(np.zeros((40, 70), np.uint8)).save(stale)  # no version text: another model
    _run(tmp_path / "in", out, exported_model, "--skip_existing")
    assert (
        Image.open(stale).text["model_version"]
        == load_metadata(str(exported_model))["model_version"]
    )
    assert {r["path"] for r in _records(out) if not r["skipped"]} == {"wide.jpg"}


def test_masks_of_an_older_model_are_kept_unless_resegmenting_is_asked(tmp_path, exported_model):
    from PIL import PngImagePlugin

    sizes = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    _run(tmp_path / "in", out, exported_model)
    current = load_metadata(str(exported_model))["model_version"]
    older = out / "masks" / "wide.jpg.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("model_version", "0lderversion")
    info.add_text("mean_confidence", "0.5")
    Image.fromarray(np.zeros((40, 70), np.uint8)).save(older, pnginfo=info)
    summary = _run(tmp_path / "in", out, exported_model, "--skip_existing")
    assert summary["segmented"] == 0  # nothing new: the older mask stays
    by_path = {r["path"]: r for r in _records(out)}
    assert by_path["wide.jpg"]["model_version"] == "0lderversion"  # who made it
    assert summary["masks_by_model_version"] == {"0lderversion": 1, current: len(sizes) - 1}
    assert Image.open(older).text["model_version"] == "0lderversion"
    summary = _run(
        tmp_path / "in", out, exported_model, "--skip_existing", "--resegment_older_than=current"
    )
    assert {r["path"] for r in _records(out) if not r["skipped"]} == {"wide.jpg"}
    assert Image.open(older).text["model_version"] == current
    assert summary["masks_by_model_version"] == {current: len(sizes)}


def test_input_tfrecords(tmp_path, exported_model, ingested_dir):
    from segmodel.manifest import load_manifest

    manifest = load_manifest(str(ingested_dir))
    out = tmp_path / "out"
    summary = infer.run(
        [
            f"--model_dir={exported_model}",
            f"--input_tfrecords={ingested_dir}/test-*",
            f"--output_dir={out}",
            *INPROCESS,
        ]
    )
    assert summary["inputs"] == summary["predictions"] == manifest["splits"]["test"]["records"]
    assert len(list((out / "masks").rglob("*.png"))) == summary["predictions"]


def test_composite_under_test_pipeline(tmp_path, exported_model):
    image, _ = random_pair(1, 20, 20)
    options = config.InferConfig.from_options(
        config.InferOptions(
            [f"--model_dir={exported_model}", f"--output_dir={tmp_path}", "--input_pattern=x"]
        )
    )
    metadata = load_metadata(str(exported_model))
    with TestPipeline(runner="FnApiRunner") as p:
        result = (
            p
            | beam.Create([("x.png", encode(image)), ("bad.png", b"nope")])
            | infer.SegmentImages(metadata, options)
        )
        assert_that(
            result["predictions"] | beam.Map(lambda r: (r["path"], r["height"])),
            equal_to([("x.png", 20)]),
            label="Predictions",
        )
        assert_that(
            result["rejects"] | beam.Map(lambda r: r.reason),
            equal_to(["not_an_image"]),
            label="Rejects",
        )


def test_bad_flags(tmp_path, capsys):
    assert infer.main([f"--output_dir={tmp_path}", "--model_dir=x", *INPROCESS]) == 2
    assert "exactly one of --input_pattern" in capsys.readouterr().err
    argv = [f"--output_dir={tmp_path}", "--model_dir=x", "--input_pattern=x/*"]
    assert infer.main([*argv, "--resegment_older_than=current", *INPROCESS]) == 2
    assert "add --skip_existing" in capsys.readouterr().err


def test_tta_runs_through_the_pipeline_as_the_library_computes_it(tmp_path, exported_model):
    """--tta flips through infer.run: the saved probabilities are predict_images(tta="flips")
    of the same image, and differ from the plain prediction (the views were averaged)."""
    image, _ = random_pair(5, 40, 52)
    write(str(tmp_path / "in" / "x.png"), encode(image))
    plain, flipped = tmp_path / "plain", tmp_path / "flips"
    _run(tmp_path / "in", plain, exported_model, "--save_probabilities")
    summary = _run(tmp_path / "in", flipped, exported_model, "--save_probabilities", "--tta=flips")
    assert summary["predictions"] == 1
    model = load_model(str(exported_model))
    meta = load_metadata(str(exported_model))
    x = model_input_np(image, 3, 8, meta["normalization"]["mean"], meta["normalization"]["std"])
    [expected] = predict_images(
        model, [x], tile_size=64, tile_overlap=16, batch_size=4, tta="flips"
    )
    got = np.load(flipped / "probabilities" / "x.png.npy").astype(np.float32)
    assert np.abs(got - expected).max() < 2e-3  # float16 on disk
    assert np.abs(got - np.load(plain / "probabilities" / "x.png.npy")).max() > 1e-3
