"""One command for the whole path: segscale {ingest,plan,train,evaluate,export,infer,runs,drift,
review,demo} ...

    segscale demo                      # the bundled end-to-end run
    segscale ingest --help             # every flag of a step, with an example

Each subcommand is a thin wrapper: it hands its arguments to the module's own `main()`, so
`segscale ingest ...` and `python -m pipelines.ingest ...` are the same program (Beam launchers
and schedulers can keep using the module form).
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "ingest": (
        "pipelines.ingest.pipeline",
        "image/mask folders → validated TFRecord shards + manifest",
        "segscale ingest --images_dir data/images --masks_dir data/masks "
        "--output_dir out/data --num_classes 3",
    ),
    "plan": (
        "segmodel.plan",
        "what training will do on a dataset, and why (no training)",
        "segscale plan --data_dir out/data",
    ),
    "train": (
        "segmodel.train",
        "train a U-Net from the shards (resumes automatically)",
        "segscale train --data_dir out/data --workdir out/run --set train.max_minutes=10",
    ),
    "evaluate": (
        "segmodel.evaluate",
        "metrics.json, per-class table and overlays.png",
        "segscale evaluate --model out/run --data_dir out/data --split test --output_dir out/eval",
    ),
    "export": (
        "segmodel.export",
        "model.keras + SavedModel + metadata.json for serving",
        "segscale export --workdir out/run --export_dir out/model",
    ),
    "promote": (
        "segmodel.promote",
        "a candidate model replaces the current one only if not worse on a gold set",
        "segscale promote --candidate out/model-v2 --current models/current --data_dir gold",
    ),
    "infer": (
        "pipelines.infer.pipeline",
        "segment a folder or bucket of images (Beam, any runner)",
        "segscale infer --model_dir out/model --input_pattern 'photos/**/*.png' "
        "--output_dir out/pred --skip_existing",
    ),
    "runs": (
        "pipelines.monitor.runs",
        "list the inference runs of an output folder (the run ledger)",
        "segscale runs out/pred",
    ),
    "drift": (
        "pipelines.monitor.drift",
        "compare a run with the training data or an earlier run; exit 3 on drift",
        "segscale drift --run out/pred --baseline manifest",
    ),
    "review": (
        "pipelines.monitor.review",
        "the images of a run to label next: queue.csv, contact sheet, ingest-ready folders",
        "segscale review --run out/pred --top 20",
    ),
    "demo": (
        "pipelines.demo",
        "the whole path on the bundled sample, with an HTML report",
        "segscale demo --output_dir out/demo",
    ),
}


def usage() -> str:
    lines = [
        "usage: segscale COMMAND [flags]   (segscale COMMAND --help for its flags)",
        "",
        "Semantic image segmentation at scale: ingest → train → evaluate → export → infer.",
        "",
        "commands:",
    ]
    for name, (_, summary, example) in COMMANDS.items():
        lines += [f"  {name:<9} {summary}", f"            e.g. {example}"]
    lines += [
        "",
        "Any command takes --verbose: every log line (Beam's workers, TensorFlow's C++ start-up)",
        "instead of only ours.",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"segscale: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    from runners import console
    from runners.flags import wants_help

    if wants_help(rest):  # from light parsers: no TensorFlow or Beam import for --help
        _help_parser(command).print_help()
        return 0
    rest = console.take_verbose(rest)
    console.setup_logging()  # before the command's module imports Beam (import-time warnings)
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


def _help_parser(command: str):
    if command in ("ingest", "infer"):
        return importlib.import_module(f"pipelines.{command}.options").help_parser()
    if command in ("demo", "runs", "drift", "review"):  # each module's own light parser
        return importlib.import_module(COMMANDS[command][0]).parser()
    from segmodel.commands import PARSERS

    return PARSERS[command]()


def entry_point() -> None:
    """The `segscale` console script."""
    from runners.console import exit_process, take_verbose
    from runners.stderr_filter import filtered_stderr

    sys.argv[1:] = take_verbose(sys.argv[1:])  # before the filter starts: --verbose shows all
    with filtered_stderr():  # TensorFlow's C++ start-up lines stay off the console
        code = main()
    exit_process(code)


if __name__ == "__main__":
    entry_point()
