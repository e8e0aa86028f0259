"""pipelines/ingest/batches.py through `segscale ingest`: a dataset folder is never replaced by
accident, and --append grows it without rewriting what is there."""

import json

import numpy as np
import pytest
from builders import encode, random_pair, write

from pipelines.ingest import pipeline as ingest
from segmodel import record_schema
from segmodel.input_pipeline import records
from segmodel.manifest import load_manifest

INPROCESS = ["--profile", "inprocess"]


def _folder(root, names, seed=0, value=None):
    """Image/mask pairs named `names`; masks all `value` when given (a recognisable label)."""
    for i, name in enumerate(names):
        image, mask = random_pair(seed + i, 24, 28)
        if value is not None:
            mask = np.full_like(mask, value)
        write(str(root / "images" / f"{name}.png"), encode(image))
        write(str(root / "masks" / f"{name}.png"), encode(mask))
    return root


def _ingest(root, out, *extra):
    return ingest.run(
        [
            f"--images_dir={root / 'images'}",
            f"--masks_dir={root / 'masks'}",
            f"--output_dir={out}",
            *INPROCESS,
            *extra,
        ]
    )


def _live(out, split):
    """(key, mask values) of every record a reader of the dataset sees in `split`."""
    manifest = load_manifest(str(out))
    rows = []
    if not manifest["splits"][split]["shards"]:
        return rows
    for serialized in records(str(out), manifest, split, shuffle_files=False, seed=0):
        parsed = record_schema.parse_example(serialized)
        mask = record_schema.decode_mask(parsed[record_schema.MASK_ENCODED]).numpy()
        rows.append((parsed[record_schema.IMAGE_SOURCE_ID].numpy().decode(), set(np.unique(mask))))
    return sorted(rows, key=lambda r: r[0])


@pytest.fixture
def dataset(tmp_path):
    first = _folder(tmp_path / "first", [f"img{i:02d}" for i in range(12)], value=1)
    out = tmp_path / "data"
    _ingest(first, out, "--num_classes=3", "--splits=train=0.5,val=0.5")
    return out


def test_a_second_ingest_into_a_dataset_folder_is_refused_and_changes_nothing(
    dataset, tmp_path, capsys
):
    before = {p.name: p.read_bytes() for p in dataset.iterdir()}
    other = _folder(tmp_path / "other", ["x0", "x1"], seed=50)
    code = ingest.main(
        [
            f"--images_dir={other / 'images'}",
            f"--masks_dir={other / 'masks'}",
            f"--output_dir={dataset}",
            "--num_classes=3",
            *INPROCESS,
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "already holds a dataset (12 records" in err and "--append" in err
    assert {p.name: p.read_bytes() for p in dataset.iterdir()} == before


def test_overwrite_replaces_the_dataset(dataset, tmp_path):
    other = _folder(tmp_path / "other", ["x0", "x1", "x2"], seed=50)
    manifest = _ingest(other, dataset, "--num_classes=3", "--overwrite")
    assert manifest["version"] == 1 and manifest["counts"]["accepted"] == 3
    keys = {k for split in manifest["splits"] for k, _ in _live(dataset, split)}
    assert keys == {"x0", "x1", "x2"}


def test_append_adds_shards_and_lineage_without_rewriting_old_shards(dataset, tmp_path):
    old = {p.name: p.read_bytes() for p in dataset.glob("*.tfrecord")}
    first = json.loads((dataset / "manifest.json").read_text())
    batch = _folder(tmp_path / "batch", ["new0", "new1", "new2", "new3"], seed=70, value=2)
    manifest = _ingest(batch, dataset, "--append")  # classes from the dataset
    for name, data in old.items():
        assert (dataset / name).read_bytes() == data  # byte for byte
    added = {p.name for p in dataset.glob("*.tfrecord")} - set(old)
    assert added and all("-b002-" in name for name in added)
    assert manifest["version"] == 2 and [b["batch"] for b in manifest["batches"]] == [1, 2]
    entry = manifest["batches"][1]
    assert entry["images_dir"] == str(batch / "images") and entry["superseded"] == 0
    assert entry["counts"] == {"found": 4, "accepted": 4, "rejected": 0}
    assert manifest["counts"]["accepted"] == 16
    assert manifest["stats"]["mean"] == first["stats"]["mean"]  # kept: the parent's input
    seen = {split: _live(dataset, split) for split in manifest["splits"]}
    for split, rows in seen.items():
        assert len(rows) == manifest["splits"][split]["records"]
    keys = [k for rows in seen.values() for k, _ in rows]
    assert sorted(keys) == sorted(
        [f"img{i:02d}" for i in range(12)] + [f"new{i}" for i in range(4)]
    )
    # the same hash policy: a batch pair lands in the split the dataset's policy gives it
    from pipelines.ingest.pairing import assign_split, parse_splits

    for split, rows in seen.items():
        for key, _ in rows:
            assert assign_split(key, parse_splits("train=0.5,val=0.5")) == split


def test_a_new_label_for_a_key_in_the_dataset_replaces_the_old_one(dataset, tmp_path):
    corrected = _folder(tmp_path / "fix", ["img03", "img07"], seed=3, value=2)
    manifest = _ingest(corrected, dataset, "--append", "--num_classes=3")
    assert manifest["batches"][1]["superseded"] == 2
    assert sorted(k for keys in manifest["superseded"].values() for k in keys) == [
        "img03",
        "img07",
    ]
    rows = [row for split in manifest["splits"] for row in _live(dataset, split)]
    assert len(rows) == 12  # replaced, not added
    labels = dict(rows)
    assert labels["img03"] == {2} and labels["img07"] == {2}  # the corrected masks
    assert labels["img00"] == {1}
    assert sum(s["records"] for s in manifest["splits"].values()) == 12


def test_forced_split_and_contract_checks(dataset, tmp_path, capsys):
    batch = _folder(tmp_path / "batch", ["a", "b", "c"], seed=90)
    manifest = _ingest(batch, dataset, "--append", "--split=train")
    assert {k for k, _ in _live(dataset, "train")} >= {"a", "b", "c"}
    assert manifest["batches"][1]["records"] == {"train": 3}
    for flags, message in (
        (["--append", "--num_classes=4"], "differs from the dataset's"),
        (["--append", "--split=test"], "the dataset's splits are"),
        (["--append", "--overwrite"], "exclude each other"),
    ):
        with pytest.raises(ValueError, match=message):
            _ingest(batch, dataset, *flags)
    with pytest.raises(ValueError, match="holds no dataset"):
        _ingest(batch, tmp_path / "empty", "--append", "--num_classes=3")


def _counts_match_readers(out):
    manifest = load_manifest(str(out))
    for split, info in manifest["splits"].items():
        assert len(_live(out, split)) == info["records"], split
    return manifest


def test_a_key_replaced_twice_and_across_splits_keeps_counts_true(dataset, tmp_path):
    val_key = next(k for k, _ in _live(dataset, "val"))
    _ingest(_folder(tmp_path / "fix1", [val_key], value=2), dataset, "--append")
    manifest = _counts_match_readers(dataset)
    assert manifest["batches"][1]["superseded"] == 1
    # the same key again: the batch-2 record is replaced, the batch-1 one is not counted twice
    manifest = _ingest(_folder(tmp_path / "fix2", [val_key], value=1), dataset, "--append")
    assert manifest["batches"][2]["superseded"] == 1
    manifest = _counts_match_readers(dataset)
    assert dict(_live(dataset, "val"))[val_key] == {1}
    # ... and into another split: the old split loses the record, train gains it
    before = {s: i["records"] for s, i in manifest["splits"].items()}
    manifest = _ingest(
        _folder(tmp_path / "fix3", [val_key], value=2), dataset, "--append", "--split=train"
    )
    _counts_match_readers(dataset)
    assert manifest["splits"]["val"]["records"] == before["val"] - 1
    assert manifest["splits"]["train"]["records"] == before["train"] + 1
    assert val_key in dict(_live(dataset, "train")) and val_key not in dict(_live(dataset, "val"))


def test_a_batch_that_adds_nothing_leaves_the_dataset_as_it_was(dataset, tmp_path, capsys):
    before = (dataset / "manifest.json").read_bytes()
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "masks").mkdir()
    argv = [f"--images_dir={empty / 'images'}", f"--masks_dir={empty / 'masks'}"]
    assert ingest.main([*argv, f"--output_dir={dataset}", "--append", *INPROCESS]) == 2
    assert "found no pairs" in capsys.readouterr().err
    write(str(empty / "images" / "lonely.png"), encode(random_pair(0, 8, 8)[0]))  # no mask
    assert ingest.main([*argv, f"--output_dir={dataset}", "--append", *INPROCESS]) == 2
    assert "all 1 inputs were rejected" in capsys.readouterr().err
    assert (dataset / "manifest.json").read_bytes() == before
    assert not list(dataset.glob("*-b002-*.tfrecord"))


def test_appending_to_a_dataset_split_by_folders(tmp_path):
    root = tmp_path / "raw"
    for split in ("train", "val", "test"):
        for i in range(3):
            image, mask = random_pair(i + 10 * len(split), 20, 24)
            write(str(root / "images" / split / f"{split}{i}.png"), encode(image))
            write(str(root / "masks" / split / f"{split}{i}.png"), encode(np.full_like(mask, 1)))
    out = tmp_path / "data"
    _ingest(root, out, "--num_classes=3", "--splits=folders", "--ignore_label=250")
    flat = _folder(tmp_path / "review", ["train1", "new"], seed=5, value=2)
    with pytest.raises(ValueError, match="split by folders .* add --split NAME"):
        _ingest(flat, out, "--append")
    manifest = _ingest(flat, out, "--append", "--split=train")  # ignore label: the dataset's
    assert manifest["ignore_label"] == 250 and manifest["batches"][1]["superseded"] == 1
    live = dict(_live(out, "train"))
    assert live["train/train1"] == {2} and live["train/new"] == {2}  # the correction replaced it
    _counts_match_readers(out)
