"""Listing input folders: every file is listed or reported, nothing hangs."""

import os

import pytest
from builders import encode, random_pair, write

from pipelines.ingest import listing
from pipelines.ingest import pipeline as ingest


def _everything(root):
    return {
        os.path.relpath(path, root): (size, problem and problem[0])
        for task in listing.listing_tasks(str(root))
        for path, size, problem in listing.list_task(str(root), task)
    }


def test_local_listing_lists_files_and_reports_what_it_cannot_use(tmp_path):
    root = tmp_path / "images"
    write(str(root / "top.png"), b"12345")
    write(str(root / "a/b/deep.png"), b"123")
    write(str(root / ".hidden/skip.png"), b"1")
    write(str(root / "a/.DS_Store"), b"1")
    os.symlink(root / "gone.png", root / "a/broken.png")
    os.symlink(root / "a", root / "a/b/loop")  # a folder loop
    os.mkfifo(root / "a/pipe.png")
    assert listing.listing_tasks(str(root)) == ["", "a"]
    assert _everything(root) == {
        "top.png": (5, None),
        "a/b/deep.png": (3, None),
        "a/broken.png": (0, "broken_symlink"),
        "a/b/loop": (0, "symlink_to_folder"),
        "a/pipe.png": (0, "not_a_regular_file"),
    }


def test_unreadable_folder_is_reported_not_skipped(tmp_path, monkeypatch):
    root = tmp_path / "images"
    write(str(root / "ok/x.png"), b"1")
    write(str(root / "locked/y.png"), b"1")
    real_scandir = os.scandir

    def scandir(path):  # chmod 000 does not stop root, so refuse the way the kernel would
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = _everything(root)
    assert found["ok/x.png"] == (1, None)
    assert found["locked"] == (0, "unreadable_folder")


def test_missing_root_is_one_reject(tmp_path):
    assert _everything(tmp_path / "nowhere") == {".": (0, "unreadable_folder")}


def test_ingest_counts_every_odd_file(tmp_path):
    images, masks = tmp_path / "in/images", tmp_path / "in/masks"
    image, mask = random_pair(1)
    for name in ("a/ok.png", "a/pipe.png", "b/ok2.png"):
        if name != "a/pipe.png":
            write(str(images / name), encode(image))
        write(str(masks / name), encode(mask))
    os.mkfifo(images / "a/pipe.png")  # would block a reader for ever
    os.symlink(images / "missing.png", images / "b/dangling.png")
    manifest = ingest.run(
        [
            f"--images_dir={images}",
            f"--masks_dir={masks}",
            f"--output_dir={tmp_path / 'out'}",
            "--num_classes=3",
            "--max_rejected=3",  # a count: the three odd files made on purpose
            "--profile=inprocess",
        ]
    )
    assert manifest["counts"] == {"found": 5, "accepted": 2, "rejected": 3}
    assert manifest["rejects"]["by_reason"] == {
        "broken_symlink": 1,
        "not_a_regular_file": 1,
        "image_rejected": 1,  # the FIFO's mask: its image was rejected, it is no orphan
    }


@pytest.mark.parametrize("root", ["gs://bucket/images", "gs://b/x/"])
def test_object_stores_other_than_s3_keep_one_glob(root):
    assert listing.listing_tasks(root) == [root.rstrip("/") + "/**"]
