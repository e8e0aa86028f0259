import pytest

from runners import profiles


def test_command_line_wins_over_profile():
    argv = ["--profile", "local", "--direct_num_workers=3", "--images_dir=x"]
    merged = profiles.apply_profile(argv)
    assert "--direct_num_workers=3" in merged
    assert "--runner=FnApiRunner" in merged
    assert "--direct_running_mode=multi_processing" in merged
    assert not any(a.startswith("--direct_num_workers=0") for a in merged)
    assert "--profile" not in merged


def test_default_profile_is_local_never_directrunner():
    merged = profiles.apply_profile([])
    assert "--runner=FnApiRunner" in merged


def test_unknown_profile_lists_known_ones():
    with pytest.raises(ValueError, match="known profiles"):
        profiles.apply_profile(["--profile", "nope"])


def test_profile_from_path(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("runner: PortableRunner\nexperiments: [a, b]\nsave_main_session: false\n")
    merged = profiles.apply_profile(["--profile", str(path)])
    assert merged == ["--runner=PortableRunner", "--experiments=a", "--experiments=b"]
