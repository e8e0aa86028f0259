"""segmodel/commands.py: every command's flags are strict, and a typo names the closest flag."""

import pytest

from segmodel import commands


@pytest.mark.parametrize(
    "parser,argv,typo,suggestion",
    [
        (commands.train_parser, ["--data_dri=d", "--workdir=w"], "--data_dri", "--data_dir"),
        (
            commands.evaluate_parser,
            ["--model=m", "--data_dir=d", "--splt=val"],
            "--splt",
            "--split",
        ),
        (
            commands.export_parser,
            ["--workdir=w", "--export_dir=e", "--unsafe_modle"],
            "--unsafe_modle",
            None,
        ),
    ],
)
def test_an_unknown_flag_exits_2_with_the_closest_known_flag(
    parser, argv, typo, suggestion, capsys
):
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"unknown argument: {typo}" in err
    if suggestion:
        assert f"(did you mean {suggestion}?)" in err


def test_abbreviations_are_not_taken_for_flags(capsys):
    """argparse would read --work as --workdir; a typo must not silently pick a flag."""
    with pytest.raises(SystemExit):
        commands.train_parser().parse_args(["--data_dir=d", "--work=w"])
    assert "unknown argument: --work (did you mean --workdir?)" in capsys.readouterr().err
