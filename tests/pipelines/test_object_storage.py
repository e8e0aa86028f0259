"""Ingest and bulk inference against a real S3-compatible server on loopback (moto's server
mode), through Beam's own S3 filesystem, compared with the same runs on local paths.

The pipelines run as users run them: `python -m pipelines.ingest|infer` in a subprocess with the
local profile (FnApiRunner, 2 worker processes) and the S3 flags on the command line, so the
options must reach the launcher's checks and the worker processes alike.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from builders import encode, random_pair, write
from object_store import flags as _flags
from object_store import read as _read
from object_store import records as _records
from object_store import run_module, s3_server
from object_store import upload as _upload

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3():
    with s3_server() as server:
        yield server


def _run(module, *args):
    return run_module(module, *args, "--profile=local", "--direct_num_workers=2", timeout=240)


def _raw_dataset(root):
    for i in range(14):
        image, mask = random_pair(i, 24 + i, 30)
        write(str(root / "images" / f"img{i:02d}.png"), encode(image))
        write(str(root / "masks" / f"img{i:02d}.png"), encode(mask))
    write(str(root / "images" / "broken.png"), b"not a png")
    write(str(root / "masks" / "broken.png"), encode(random_pair(99)[1]))
    write(str(root / "images" / "orphan.png"), encode(random_pair(98)[0]))


def test_ingest_and_inference_on_a_bucket_match_local_runs(tmp_path, s3, exported_model):
    url, client = s3
    raw = tmp_path / "raw"
    _raw_dataset(raw)
    _upload(client, raw, "raw")
    common = ["--num_classes=3", "--splits=train=0.6,val=0.2,test=0.2"]

    # Ingest: same shards (same records in the same shards), counts and rejects.
    _run(
        "pipelines.ingest",
        f"--images_dir={raw / 'images'}",
        f"--masks_dir={raw / 'masks'}",
        f"--output_dir={tmp_path / 'data'}",
        *common,
    )
    _run(
        "pipelines.ingest",
        "--images_dir=s3://seg/raw/images",
        "--masks_dir=s3://seg/raw/masks",
        "--output_dir=s3://seg/data",
        *common,
        *_flags(url),
    )
    local = json.loads((tmp_path / "data" / "manifest.json").read_text())
    remote = json.loads(_read(client, "data/manifest.json"))
    assert remote["counts"] == local["counts"] == {"found": 16, "accepted": 14, "rejected": 2}
    assert remote["rejects"]["by_reason"] == local["rejects"]["by_reason"]
    for split, info in local["splits"].items():
        assert remote["splits"][split]["shards"] == info["shards"]
        for shard in info["shards"]:
            mine = _records((tmp_path / "data" / shard).read_bytes())
            theirs = _records(_read(client, f"data/{shard}"))
            assert sorted(theirs) == sorted(mine), shard
    rejects = [json.loads(line) for line in _read(client, "data/rejects.jsonl").splitlines()]
    local_rejects = [
        json.loads(line) for line in (tmp_path / "data" / "rejects.jsonl").read_text().splitlines()
    ]
    assert sorted(r["reason"] for r in rejects) == sorted(r["reason"] for r in local_rejects)

    # Inference: the model folder and the images on the bucket, the outputs too.
    _upload(client, exported_model, "model")
    infer_args = ["--tile_size=64", "--tile_overlap=16", "--batch_size=4"]
    _run(
        "pipelines.infer",
        f"--model_dir={exported_model}",
        f"--input_pattern={raw / 'images'}/*.png",
        f"--output_dir={tmp_path / 'pred'}",
        *infer_args,
    )
    done = _run(
        "pipelines.infer",
        "--model_dir=s3://seg/model",
        "--input_pattern=s3://seg/raw/images/*.png",
        "--output_dir=s3://seg/pred",
        *infer_args,
        *_flags(url),
    )
    assert "inputs 16 = predictions 15 + rejects 1" in done.stdout
    keys = {o["Key"] for o in client.list_objects_v2(Bucket="seg", Prefix="pred/")["Contents"]}
    local_masks = sorted(p.name for p in (tmp_path / "pred" / "masks").iterdir())
    assert sorted(k.split("/")[-1] for k in keys if k.startswith("pred/masks/")) == local_masks
    for name in local_masks:
        assert (
            _read(client, f"pred/masks/{name}") == (tmp_path / "pred" / "masks" / name).read_bytes()
        )

    def predictions(read_lines):
        rows = [json.loads(line) for line in read_lines]
        return sorted((r["path"], r["class_fractions"], r["mean_confidence"]) for r in rows)

    remote_rows = [
        line
        for key in keys
        if key.startswith("pred/predictions-")
        for line in _read(client, key).decode().splitlines()
    ]
    local_rows = [
        line
        for p in (tmp_path / "pred").glob("predictions-*.jsonl")
        for line in p.read_text().splitlines()
    ]
    assert predictions(remote_rows) == predictions(local_rows)
    assert not [k for k in keys if k.endswith(".tmp")]  # objects written whole, no leftovers
    (ledger,) = [json.loads(line) for line in _read(client, "pred/runs.jsonl").splitlines()]
    assert ledger["segmented"] == 15 and ledger["rejects"] == 1

    # A rerun on the bucket does no work twice; the monitoring commands read the bucket too.
    again = _run(
        "pipelines.infer",
        "--model_dir=s3://seg/model",
        "--input_pattern=s3://seg/raw/images/*.png",
        "--output_dir=s3://seg/pred",
        "--skip_existing",
        *infer_args,
        *_flags(url),
    )
    assert "inputs 16 = predictions 16 + rejects 1" not in again.stdout
    runs = [json.loads(line) for line in _read(client, "pred/runs.jsonl").splitlines()]
    assert [(r["segmented"], r["skipped"]) for r in runs] == [(15, 0), (0, 15)]
    listed = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "runs", "s3://seg/pred", *_flags(url)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "2 runs in s3://seg/pred/runs.jsonl" in listed.stdout


# Names that test the range edges: ASCII below "0", between the digits and the letters and
# after "z", non-ASCII, a shared long prefix, folders, and U+10FFFF (which sorts between a
# range's StartAfter and its first key).
TRICKY = [
    "-dash.png",
    "_under.png",
    "~tilde.png",
    "{brace.png",
    "0.png",
    "9z.png",
    "A/b.png",
    "Z.png",
    "a.png",
    "z",
    "zz.png",
    "\u00fcmlaut.png",
    "\u65e5\u672c.png",
    "sub/dir/x.png",
    "y\U0010ffffq.png",
    "img_0001.png",
    "img_0002.png",
    "img_0010.png",
    "img_0100.png",
    "img_1000.png",
    "img_",
    "img_0001.png.bak",
    "\ue000private.png",  # a boundary whose character below is a surrogate
    "\ue000x",
]


def test_s3_key_ranges_list_every_object_exactly_once(s3, monkeypatch):
    """Above SPLIT_ABOVE objects an S3 listing is split into key ranges found by a skip scan;
    together the ranges list exactly what Beam's single glob lists, each object once."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines.ingest import listing
    from runners.launch import s3_settings

    url, client = s3
    names = TRICKY + [f"img_{i:04d}.png" for i in range(3, 60)]
    for i, name in enumerate(names):
        client.put_object(Bucket="seg", Key=f"ranges/{name}", Body=b"x" * i)
    options = PipelineOptions(_flags(url))
    FileSystems.set_options(options)
    settings = s3_settings(options)
    (glob,) = FileSystems.match(["s3://seg/ranges/**"])
    expected = sorted((m.path, m.size_in_bytes) for m in glob.metadata_list)
    assert len(expected) == len(set(names))

    assert listing.listing_tasks("s3://seg/ranges", settings) == ["s3://seg/ranges/**"]
    monkeypatch.setattr(listing, "SPLIT_ABOVE", 10)
    monkeypatch.setattr(listing, "S3_RANGES", 12)
    monkeypatch.setattr(listing._S3Keys, "PAGE", 3)  # pages within a range, continued
    tasks = listing.listing_tasks("s3://seg/ranges/", settings)
    assert len(tasks) >= 12
    listed = [
        (path, size)
        for task in tasks
        for path, size, problem in listing.list_task("s3://seg/ranges", task, settings)
    ]
    assert sorted(listed) == expected  # each object once, none missing, none extra
    # The shared prefix is looked through: img_* spreads over several ranges.
    per_task = [sum(1 for _ in listing.list_task("s3://seg/ranges", t, settings)) for t in tasks]
    assert max(per_task) < len([n for n in names if n.startswith("img_")])


def test_a_model_replaced_in_place_on_the_bucket_is_copied_again(tmp_path, s3):
    """A long-lived worker keeps its local copy of a remote model only while the files are the
    same: after a promotion rewrites s3://.../model, the next load gets the new files."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines.model_files import local_model_dir
    from runners.beam_workarounds import filesystem_options

    url, client = s3
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.keras").write_bytes(b"first model")
    (model / "metadata.json").write_text('{"model_version": "v1"}')
    _upload(client, model, "swapped")
    with filesystem_options(PipelineOptions(_flags(url))):
        first = local_model_dir("s3://seg/swapped")
        assert local_model_dir("s3://seg/swapped") == first  # unchanged: the cached copy
        assert Path(first, "model.keras").read_bytes() == b"first model"
        (model / "model.keras").write_bytes(b"the promoted model")
        (model / "metadata.json").write_text('{"model_version": "v2"}')
        _upload(client, model, "swapped")
        second = local_model_dir("s3://seg/swapped")
    assert second != first
    assert Path(second, "model.keras").read_bytes() == b"the promoted model"
    assert Path(second, "metadata.json").read_text() == '{"model_version": "v2"}'
