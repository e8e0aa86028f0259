"""The command-line flags of segmodel's commands, in one light module (no TensorFlow import).

    segscale train --help         # answers from here in a fraction of a second

Each command's `main()` parses with these parsers; `segscale COMMAND --help` prints them without
importing the command's module (which loads TensorFlow).
"""

from __future__ import annotations

import argparse
import sys

from segmodel import config as config_lib


class CommandParser(argparse.ArgumentParser):
    """argparse, strict about flag names: no abbreviations (`--epoch` is not `--epochs`), and an
    unknown flag is an error (exit 2) that names the closest known one."""

    def __init__(self, *args, **kwargs):
        self.flag_names: list[str] = []
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def add_argument(self, *args, **kwargs):
        action = super().add_argument(*args, **kwargs)
        self.flag_names.extend(action.option_strings)
        return action

    def reject_typos(self, argv, passing: tuple[str, ...] = ()) -> None:
        """Exit 2 on a `--flag` in `argv` that this parser does not define (except names that
        start with one of `passing`), before argparse would report a missing one: the typo is
        the news."""
        unknown = [
            a.split("=", 1)[0]
            for a in argv
            if a.startswith("--")
            and a != "--"
            and a.split("=", 1)[0] not in self.flag_names
            and not a[2:].startswith(passing)
        ]
        if unknown:
            self.error("unrecognized arguments: " + " ".join(unknown))

    def parse_args(self, args=None, namespace=None):
        argv = sys.argv[1:] if args is None else list(args)
        self.reject_typos(argv)
        return super().parse_args(argv, namespace)

    def error(self, message):
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            message = unknown_flags_message(message[len(prefix) :].split(), self.flag_names)
        super().error(message)


def unknown_flags_message(given: list[str], known: list[str]) -> str:
    """ "unknown argument: --data_dri (did you mean --data_dir?)" for the flags in `given`."""
    import difflib

    problems = []
    for arg in given:
        name = arg.split("=", 1)[0]
        if not name.startswith("-"):
            problems.append(repr(arg))
            continue
        close = difflib.get_close_matches(name, known, n=1)
        problems.append(name + (f" (did you mean {close[0]}?)" if close else ""))
    return (
        f"unknown argument{'s' if len(problems) > 1 else ''}: {', '.join(problems)}; "
        "--help lists this command's flags"
    )


def _parser(command: str, description: str, example: str) -> argparse.ArgumentParser:
    return CommandParser(
        prog=f"python -m segmodel.{command}",
        description=description,
        epilog=f"Example: {example}",
    )


def train_parser() -> argparse.ArgumentParser:
    p = _parser(
        "train",
        "Train a U-Net from the ingest shards, with automatic resume.",
        "python -m segmodel.train --data_dir out/data --workdir out/run --set train.max_minutes=20",
    )
    p.add_argument("--data_dir", required=True, help="Ingest output (manifest.json + shards).")
    p.add_argument("--workdir", required=True, help="Run folder; an existing run resumes.")
    p.add_argument(
        "--preset",
        default="default",
        choices=config_lib.PRESET_NAMES,
        help="default: planned from the dataset's manifest for this machine (python -m "
        "segmodel.plan shows it); gpu: the same for a GPU; smoke: seconds, for tests. "
        "Ignored on resume: the run's saved config is used.",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="Override a config field, e.g. train.max_minutes=30 (repeatable; applies on resume "
        "too).",
    )
    p.add_argument(
        "--init_from",
        help="Fine-tune this exported model (an export folder) instead of training from "
        "scratch: its architecture and recipe, a short schedule of its own (segmodel/finetune.py).",
    )
    p.add_argument(
        "--allow_failed_dataset",
        action="store_true",
        help="Train on a dataset whose ingest failed its checks (its manifest is marked "
        "failed: too many rejects, mixed kinds of images, ...); refused without this flag.",
    )
    return p


def evaluate_parser() -> argparse.ArgumentParser:
    p = _parser(
        "evaluate",
        "Evaluate a model on a split at native resolution: metrics.json, a console table, "
        "overlays.png.",
        "python -m segmodel.evaluate --model out/run --data_dir out/data --split test "
        "--output_dir out/eval",
    )
    p.add_argument("--model", required=True, help=".keras file, run folder or export folder.")
    p.add_argument("--data_dir", required=True, help="Ingest output (manifest.json + shards).")
    p.add_argument("--split", default="test", help="Split to evaluate (default: test).")
    p.add_argument("--output_dir", required=True, help="Writes metrics.json, overlays.png.")
    p.add_argument("--max_overlays", type=int, default=8, help="Rows in overlays.png.")
    p.add_argument(
        "--tta",
        choices=("none", "flips", "d4"),
        default="none",
        help="Test-time augmentation: average over 4 flips or 8 flips/rotations.",
    )
    return p


def export_parser() -> argparse.ArgumentParser:
    p = _parser(
        "export",
        "Export a training run for serving: model.keras, a SavedModel and metadata.json.",
        "python -m segmodel.export --workdir out/run --export_dir out/model",
    )
    p.add_argument("--workdir", required=True, help="Training run folder.")
    p.add_argument(
        "--export_dir", required=True, help="Where model.keras, saved_model/ and metadata.json go."
    )
    return p


def plan_parser() -> argparse.ArgumentParser:
    from segmodel.plan import DEFAULT_MINUTES, DEVICES

    p = _parser(
        "plan",
        "The training plan for a dataset: what --preset default will do, and why.",
        "python -m segmodel.plan --data_dir out/data",
    )
    p.add_argument("--data_dir", required=True, help="Ingest output (manifest.json).")
    p.add_argument("--device", default="cpu", choices=DEVICES)
    p.add_argument("--minutes", type=float, default=DEFAULT_MINUTES, help="Time budget.")
    p.add_argument("--json", action="store_true", help="Print plan.json instead.")
    return p


def promote_parser() -> argparse.ArgumentParser:
    p = _parser(
        "promote",
        "Promote a candidate model over the current one only when it is not worse on a gold "
        "set beyond the noise (a paired bootstrap over images). Exit 0: promoted; 1: refused.",
        "python -m segmodel.promote --candidate out/model-v2 --current models/current "
        "--data_dir gold/data --split test",
    )
    p.add_argument("--candidate", required=True, help="The new model's export folder.")
    p.add_argument(
        "--current",
        required=True,
        help="The current model's folder: on promotion the candidate's export is copied into "
        "it (whole, atomically); its history.jsonl records every decision.",
    )
    p.add_argument("--data_dir", required=True, help="The gold dataset (ingest output).")
    p.add_argument("--split", default="test", help="The gold split.")
    p.add_argument("--samples", type=int, default=2000, help="Bootstrap resamples.")
    p.add_argument(
        "--seed", type=int, default=0, help="Bootstrap seed (the decision is reproducible)."
    )
    return p


PARSERS = {
    "train": train_parser,
    "evaluate": evaluate_parser,
    "export": export_parser,
    "plan": plan_parser,
    "promote": promote_parser,
}
