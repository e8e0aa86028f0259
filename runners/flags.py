"""Flags: registering those that more than one pipeline defines, and each pipeline's own parser
for --help (no Beam import).

    python -m pipelines.ingest --help

Beam gathers every PipelineOptions subclass's flags into one parser, so two pipelines that both
define `--output_dir` conflict as soon as both modules are imported (in a test run, in the CLI).
A shared flag is registered by whichever pipeline comes first; each pipeline's own view still
sees it, since views are built from that pipeline's flags alone.
"""

from __future__ import annotations

import argparse

# The epilog of every command that takes launch.filesystem_flags.
BUCKET_FLAGS_HELP = (
    "Buckets: add Beam's filesystem flags (--s3_endpoint_url, --s3_access_key_id, "
    "--s3_secret_access_key, --s3_region_name, ...)."
)


def add_argument_once(parser, *names, **kwargs) -> None:
    try:
        parser.add_argument(*names, **kwargs)
    except argparse.ArgumentError as e:
        if "conflicting option" not in str(e):
            raise


def wants_help(argv) -> bool:
    return any(a in ("-h", "--help") for a in argv)


def own_flags_parser(add_arguments, *, prog: str, description: str, example: str):
    """A pipeline's own flags plus --profile, for --help and early errors (Beam's pass through
    parse_known_args). Imports nothing of Beam: help answers at once."""
    from runners import profiles

    parser = argparse.ArgumentParser(
        prog=prog,
        description=description
        + " Plus every standard Beam option (--runner, --direct_num_workers, ...).",
        epilog=f"Example: {example}",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_arguments(parser)
    parser.add_argument(
        "--profile",
        default=profiles.DEFAULT_PROFILE,
        help="Launch profile (local, inprocess, container, portable, flink, dataflow; runners/profiles/) or a "
        "YAML path; command-line flags override it.",
    )
    return parser


def reject_unknown(options) -> None:
    """ValueError naming every flag that neither our pipelines' options nor Beam's know, each
    with the closest known flag. Beam only logs such a flag ("Discarding unparseable args") and
    runs on, so a typo in a flag that has a default (--num_clases, --apend) would silently run
    with the default. Runner flags pass: every Beam runner's options are registered by
    apache_beam.options.pipeline_options, which the launcher has imported."""
    import difflib

    from apache_beam.options.pipeline_options import PipelineOptions

    known = set(PipelineOptions([]).get_all_options())
    given = options.get_all_options(retain_unknown_options=True)
    unknown = sorted(name for name in given if name not in known)
    if not unknown:
        return
    problems = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        problems.append(f"--{name}" + (f" (did you mean --{close[0]}?)" if close else ""))
    raise ValueError(
        f"unknown flag{'s' if len(problems) > 1 else ''}: {', '.join(problems)}; "
        "--help lists this command's flags"
    )
