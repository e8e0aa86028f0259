"""What every pipeline's `run()` and `main()` share: run on a given or a new Pipeline, and turn
a ValueError (bad flag, unreadable metadata, unwritable output) into one line and exit code 2.

    python -m pipelines.ingest --help
"""

from __future__ import annotations

import contextlib
import sys

import apache_beam as beam

from runners import beam_workarounds, console, watchdog, workers
from runners.beam_workarounds import WORKER_OPTION_PREFIXES
from runners.stderr_filter import filtered_stderr, filtered_stdout


def pipeline_options(argv: list[str]):
    """The run's PipelineOptions (profile merged under the command line), checked: unknown flags
    and a worker environment that cannot start are one line and exit 2. The launcher lists,
    checks and writes outputs before and after the pipeline: run that inside
    `beam_workarounds.filesystem_options(options)`, so that object stores see the run's
    settings there too (S3's --s3_endpoint_url and keys). Workers get them from the job."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from runners import flags, profiles

    options = PipelineOptions(profiles.apply_profile(argv))
    flags.reject_unknown(options)
    workers.check_environment(options)  # before any listing or output check: one line, exit 2
    return options


@contextlib.contextmanager
def filesystem_flags(parser, argv):
    """For commands that are not pipelines (segscale runs/drift/review): parses `argv` with
    `parser` and yields the parsed arguments, with Beam's filesystem flags among the rest
    (--s3_endpoint_url, --s3_access_key_id, --hdfs_host, ...) handed to Beam's filesystems for
    the `with` block. Any other unknown flag is an error."""
    from apache_beam.options.pipeline_options import PipelineOptions

    if hasattr(parser, "reject_typos"):  # segmodel.commands.CommandParser: typos come first
        parser.reject_typos(argv or [], WORKER_OPTION_PREFIXES)
    args, rest = parser.parse_known_args(argv)
    names = [a for a in rest if a.startswith("--")]
    unknown = [a for a in names if not a[2:].startswith(WORKER_OPTION_PREFIXES)]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown or rest)}")
    with beam_workarounds.filesystem_options(PipelineOptions(rest)):
        yield args


def s3_settings(options) -> dict:
    """The run's S3 options (endpoint, keys, region, ...) as a plain picklable dict, for the
    few S3 calls that go around Beam's S3 filesystem (runners.beam_workarounds.s3_client)."""
    from apache_beam.options.pipeline_options import S3Options

    return {
        key: value
        for key, value in options.view_as(S3Options).get_all_options(drop_default=True).items()
        if key.startswith("s3_") and value is not None
    }


def is_dry_run(options) -> bool:
    """--dry_run (Beam's TestOptions): build and translate the job, submit nothing."""
    from apache_beam.options.pipeline_options import TestOptions

    return bool(options.view_as(TestOptions).dry_run)


def execute(options, build, test_pipeline=None) -> None:
    """Builds the graph with `build(pipeline)` and runs it to completion on the runner the
    options name (Beam's own; a local worker that dies fails the job: runners.watchdog).

    With --dry_run, Dataflow's runner translates the job without credentials and returns
    without submitting; its job description is then written to --dataflow_job_file when given
    (Beam itself writes that file only on a real submission)."""
    if test_pipeline is not None:
        build(test_pipeline)
        test_pipeline.run().wait_until_finish()
        return
    if is_dry_run(options) and not _translates_dry_runs(options):
        # Only Dataflow's runner honours --dry_run; the local ones would run the whole job.
        p = beam.Pipeline(options=options)
        build(p)
        graph = p.to_runner_api()
        print(
            f"Dry run: graph built ({len(graph.components.transforms)} transforms), nothing "
            "run or written (a full translation needs --runner DataflowRunner)."
        )
        return
    runner = local_runner(options)
    with (
        filtered_stderr(),
        _watched(options, runner),
        beam.Pipeline(runner=runner, options=options) as p,
    ):
        build(p)
    if is_dry_run(options):
        beam_workarounds.write_dry_run_job_file(options, p.result)


@contextlib.contextmanager
def _watched(options, runner):
    """The FnApiRunner's run, watched (runners.watchdog: a dead worker is an error, not a hang;
    with DOCKER its containers are checked first and removed after: runners.workers).
    Other runners are not watched: a portable or remote job's outcome is its final state, and
    the threads of Beam's SDK harness that a LOOPBACK job runs in this process raise while the
    job server tears a stage down ("Multiplexer hanging up") also in jobs that finished."""
    if runner is None:
        yield
        return
    image = workers.docker_image(options)
    if image is None:
        with watchdog.watch():
            yield
        return
    with (
        filtered_stdout(),
        watchdog.watch(f"a worker container of {image}"),
        workers.worker_containers(image),
    ):
        yield


def _translates_dry_runs(options) -> bool:
    from apache_beam.options.pipeline_options import StandardOptions

    return "Dataflow" in str(options.view_as(StandardOptions).runner or "")


def local_runner(options):
    """For the FnApiRunner: one whose workers receive the job's filesystem options and run in
    the environment --environment_type names (the `container` profile: DOCKER, one container
    of --environment_config's image per worker); both are Beam workarounds (2 to 4 in
    runners/beam_workarounds.py). Other runners: None (Beam picks by --runner)."""
    from apache_beam.options.pipeline_options import StandardOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    if options.view_as(StandardOptions).runner not in ("FnApiRunner", None):
        return None
    return FnApiRunner(
        default_environment=beam_workarounds.worker_environment(options),
        provision_info=beam_workarounds.worker_provision_info(options),
    )


def cli_main(run, argv=None) -> int:
    """Runs a command's `run(argv)` and returns its exit code: run's own when it returns an
    int (e.g. 3 for drift), else 0; errors become one line on stderr: bad input, flags or files
    (ValueError, OSError) exit 2, results that cannot be trusted (RuntimeError: counts that do
    not add up, a dead worker) exit 1. The one error-to-exit mapping of every command."""
    console.setup_logging()
    try:
        code = run(argv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, permissions, vanished storage: say which file, once
        first = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
        print(f"error: {first}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # counts that do not add up: the run's outputs cannot be trusted
        print(f"error: {e}", file=sys.stderr)
        return 1
    return code if isinstance(code, int) and not isinstance(code, bool) else 0
