"""segmodel/files.py: atomic writes, reads and copies, locally and on a tf.io.gfile filesystem
(TensorFlow's in-memory ram://, standing in for gs:// without a network)."""

import os

import pytest

from segmodel import files


def test_is_remote():
    assert files.is_remote("gs://b/x") and files.is_remote("ram://x")
    assert not files.is_remote("/data/x") and not files.is_remote("relative/x")


def test_an_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "metrics.json"
    files.write_atomically(str(target), "old")
    files.write_atomically(str(target), b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(target.parent) == ["metrics.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.keras"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), files.atomic_path(str(target)) as temp:
        assert temp.endswith(".keras")  # Keras picks the format by the extension
        with open(temp, "wb") as f:
            f.write(b"half")
        raise RuntimeError("killed mid-save")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.keras"]


def test_temporaries_are_recognised(tmp_path):
    with files.atomic_path(str(tmp_path / "epoch-0003.keras")) as temp:
        assert files.is_temporary(os.path.basename(temp))
        open(temp, "wb").close()
    assert not files.is_temporary("epoch-0003.keras")
    assert not files.is_temporary(".hidden.tmp")


def test_remote_write_read_and_copy_through_gfile(tmp_path):
    files.write_atomically("ram://segscale-test/a.json", '{"a": 1}')
    assert files.exists("ram://segscale-test/a.json")
    assert files.read_text("ram://segscale-test/a.json") == '{"a": 1}'
    files.copy("ram://segscale-test/a.json", str(tmp_path / "a.json"))
    assert (tmp_path / "a.json").read_text() == '{"a": 1}'
    with files.atomic_path("ram://segscale-test/b.bin") as temp:
        with open(temp, "wb") as f:
            f.write(b"\x00\x01")
    assert files.read_bytes("ram://segscale-test/b.bin") == b"\x00\x01"
    with pytest.raises(FileNotFoundError):
        files.read_bytes("ram://segscale-test/missing")


def test_link_and_replace_folder(tmp_path):
    (tmp_path / "a").write_bytes(b"x")
    files.link_atomically(str(tmp_path / "a"), str(tmp_path / "b"))
    assert (tmp_path / "b").read_bytes() == b"x"
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "stale").write_text("")
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "fresh").write_text("")
    files.replace_folder(str(tmp_path / "new"), str(tmp_path / "old"))
    assert os.listdir(tmp_path / "old") == ["fresh"] and not (tmp_path / "new").exists()


def test_a_swap_killed_half_way_is_recovered(tmp_path, monkeypatch):
    (tmp_path / "current").mkdir()
    (tmp_path / "current" / "model.keras").write_text("old")
    (tmp_path / "staging").mkdir()
    real = os.replace
    calls = []

    def killed(source, target):
        calls.append(target)
        if target.endswith("current"):  # after the old folder was renamed aside
            raise KeyboardInterrupt("killed")
        real(source, target)

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        files.replace_folder(str(tmp_path / "staging"), str(tmp_path / "current"))
    monkeypatch.setattr(os, "replace", real)
    assert not (tmp_path / "current").exists()
    files.recover_folder(str(tmp_path / "current"))
    assert (tmp_path / "current" / "model.keras").read_text() == "old"
