import subprocess
import sys

import pytest

from pipelines import cli


def test_top_level_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in (
        "ingest",
        "train",
        "evaluate",
        "export",
        "infer",
        "runs",
        "drift",
        "review",
        "demo",
    ):
        assert f"  {name}" in out


@pytest.mark.parametrize(
    "command,flag",
    [
        ("ingest", "--mask_mode"),
        ("train", "--preset"),
        ("evaluate", "--split"),
        ("export", "--export_dir"),
        ("infer", "--tile_overlap"),
        ("infer", "--tta"),
        ("evaluate", "--tta"),
        ("runs", "--last"),
        ("drift", "--max_intensity_shift"),
        ("review", "--top"),
        ("demo", "--train_minutes"),
    ],
)
def test_each_subcommand_help_explains_its_flags(command, flag):
    out = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", command, "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert flag in out.stdout and "xample" in out.stdout


def test_unknown_command(capsys):
    assert cli.main(["fly"]) == 2
    assert "unknown command 'fly'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv,typo,suggestion",
    [
        (["runs", "out", "--lats=2"], "--lats", "--last"),
        (["train", "--data_dir=d", "--workdri=w"], "--workdri", "--workdir"),
        (["review", "--run=out", "--tpo=3"], "--tpo", "--top"),
        (["review", "--rnu=out"], "--rnu", "--run"),  # the typo, not the missing --run
        (["demo", "--worker=3"], "--worker", "--workers"),  # no abbreviations
    ],
)
def test_every_command_names_the_closest_flag_for_a_typo(argv, typo, suggestion, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert f"{typo} (did you mean {suggestion}?)" in capsys.readouterr().err
