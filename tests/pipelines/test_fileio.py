"""pipelines/fileio.py: the pipelines' file I/O over Beam's filesystems (object stores are
covered end to end in test_object_storage.py)."""

import os

import pytest

from pipelines import fileio


def test_is_remote():
    assert fileio.is_remote("s3://b/x") and not fileio.is_remote("/data/x")


def test_an_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "deep" / "manifest.json"
    fileio.write_atomically(str(target), b"one")
    fileio.write_atomically(str(target), b"two", durable=True)
    assert fileio.read_bytes(str(target)) == b"two"
    assert os.listdir(target.parent) == ["manifest.json"]


def test_create_empty_and_copy_to_local(tmp_path):
    fileio.create_empty(str(tmp_path / "empty"))
    assert (tmp_path / "empty").read_bytes() == b""
    (tmp_path / "src").write_bytes(b"model")
    fileio.copy_to_local(str(tmp_path / "src"), str(tmp_path / "copy" / "model.keras"))
    assert (tmp_path / "copy" / "model.keras").read_bytes() == b"model"
    with pytest.raises(ValueError, match="missing.*cannot read it"):
        fileio.copy_to_local(str(tmp_path / "missing"), str(tmp_path / "x"))


def test_check_writable_names_the_folder(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="--output_dir .*file: cannot write there"):
        fileio.check_writable(str(tmp_path / "file"))
