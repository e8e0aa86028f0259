"""Multi-band GeoTIFFs end to end (issue 33): a 4-band and an 8-band dataset ingest, train with
the default plan, export and infer; the masks come back as PNGs and as GeoTIFFs with the
inputs' georeference, and a file of other bands is a reject naming both band counts."""

import io
import json

import numpy as np
import pytest
from builders import encode, write
from PIL import Image

from pipelines.infer import pipeline as infer
from pipelines.ingest import pipeline as ingest
from segmodel import export, train

INPROCESS = ["--profile", "inprocess"]

# A 10 m UTM grid (EPSG:32633): pixel scale, the tie point of the top-left corner, GeoKeys.
GEO = [
    (33550, 12, 3, (10.0, 10.0, 0.0), True),
    (33922, 12, 6, (0.0, 0.0, 0.0, 500000.0, 4000000.0, 0.0), True),
    (34735, 3, 16, (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32633), True),
]


def _geotiff(array, x0: float) -> bytes:
    import tifffile

    tags = [list(t) for t in GEO]
    tags[1][3] = (0.0, 0.0, 0.0, x0, 4000000.0, 0.0)
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        array,
        photometric="minisblack",
        planarconfig="contig",
        extratags=[tuple(t) for t in tags],
        metadata=None,
    )
    return buffer.getvalue()


def _scene(rng, bands: int, size: int = 32):
    """A field (class 1) in a band that only the last band shows, and water (class 2) dark in
    every band: a model must read more than three bands to find the field."""
    mask = np.zeros((size, size), np.uint8)
    r = rng.integers(4, size // 2)
    mask[r : r + 10, 4:16] = 1
    mask[20:28, r : r + 8] = 2
    image = rng.normal(1200, 80, (size, size, bands))
    image[mask == 1, -1] += 1500
    image[mask == 2] -= 900
    return np.clip(image, 0, 65535).astype(np.uint16), mask


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("bands", [4, 8])
def test_a_multi_band_dataset_trains_with_the_default_plan_and_infers(tmp_path, bands):
    import tifffile

    rng = np.random.default_rng(bands)
    for i in range(24):
        image, mask = _scene(rng, bands)
        write(str(tmp_path / f"in/images/t{i:02d}.tif"), _geotiff(image, 500000.0 + 320 * i))
        write(str(tmp_path / f"in/masks/t{i:02d}.png"), encode(mask))
    manifest = ingest.run(
        [
            f"--images_dir={tmp_path}/in/images",
            f"--masks_dir={tmp_path}/in/masks",
            f"--output_dir={tmp_path}/data",
            "--num_classes=3",
            "--splits=train=0.7,val=0.3",
            *INPROCESS,
        ]
    )
    assert (manifest["stats"]["channels"], manifest["stats"]["bands"]) == (bands, True)
    state = train.train(
        str(tmp_path / "data"), str(tmp_path / "run"), "default", ["train.max_minutes=0.15"]
    )
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert plan["config"]["model"]["depth"] >= 2
    assert state["best"] > 0.5, state["history"]  # it learnt the classes from the bands
    metadata = export.export(str(tmp_path / "run"), str(tmp_path / "model"))
    assert (metadata["channels"], metadata["bands"], metadata["bit_depth"]) == (bands, True, 16)

    other = rng.integers(0, 4000, (32, 32, bands + 1), dtype=np.uint16)
    write(str(tmp_path / "in/images/other.tif"), _geotiff(other, 0.0))
    summary = infer.run(
        [
            f"--model_dir={tmp_path}/model",
            f"--input_pattern={tmp_path}/in/images/*.tif",
            f"--output_dir={tmp_path}/pred",
            *INPROCESS,
        ]
    )
    assert (summary["inputs"], summary["predictions"], summary["rejects"]) == (25, 24, 1)
    (reject,) = [json.loads(x) for f in (tmp_path / "pred").glob("rejects-*") for x in f.open()]
    assert reject["reason"] == "not_the_model_input"
    assert f"{bands + 1} bands; the model takes {bands} bands" in reject["detail"]
    for i in (0, 5):
        png = np.asarray(Image.open(tmp_path / f"pred/masks/t{i:02d}.tif.png"))
        with tifffile.TiffFile(tmp_path / f"pred/masks/t{i:02d}.tif.tif") as geo:
            page = geo.pages[0]
            np.testing.assert_array_equal(page.asarray(), png)
            assert page.tags[33922].value[3] == 500000.0 + 320 * i  # the input's own corner
            assert page.tags[33550].value == GEO[0][3]
            assert page.tags[34735].value == GEO[2][3]
