"""What every pipeline's `run()` and `main()` share: run on a given or a new Pipeline, and turn
a ValueError (bad flag, unreadable metadata, unwritable output) into one line and exit code 2.

    python -m pipelines.ingest --help
"""

from __future__ import annotations

import contextlib
import sys

import apache_beam as beam

from runners import console, watchdog, workers
from runners.stderr_filter import filtered_stderr, filtered_stdout


def pipeline_options(argv: list[str]):
    """The run's PipelineOptions (profile merged under the command line), also handed to Beam's
    filesystems in this process: the launcher lists, checks and writes outputs (manifest,
    summary, ledger) before and after the pipeline, and object stores need the options there
    too (S3's --s3_endpoint_url and keys; without them Beam's S3 filesystem fails with "Must
    provide one of client or options"). Workers get them from the job itself."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    from runners import flags, profiles

    options = PipelineOptions(profiles.apply_profile(argv))
    flags.reject_unknown(options)
    FileSystems.set_options(options)
    workers.check_environment(options)  # before any listing or output check: one line, exit 2
    return options


def filesystem_flags(parser, argv) -> object:
    """For commands that are not pipelines (segscale runs/drift/review): parses `argv` with
    `parser`, hands Beam's filesystem flags among the rest (--s3_endpoint_url, --s3_access_key_id,
    --hdfs_host, ...) to Beam's filesystems, and rejects any other unknown flag."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    args, rest = parser.parse_known_args(argv)
    names = [a for a in rest if a.startswith("--")]
    unknown = [a for a in names if not a[2:].startswith(WORKER_OPTION_PREFIXES)]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown or rest)}")
    FileSystems.set_options(PipelineOptions(rest))
    return args


def s3_settings(options) -> dict:
    """The run's S3 options (endpoint, keys, region, ...) as a plain picklable dict, for the
    few writes that go around Beam's S3 filesystem (pipelines.outputs.create_empty)."""
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
        _write_job_description(options, p.result)


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


def _write_job_description(options, result) -> None:
    from apache_beam.options.pipeline_options import DebugOptions

    path = options.view_as(DebugOptions).dataflow_job_file
    job = getattr(result, "job", None)  # Dataflow's dry-run result carries the built job
    if job is None:
        print("Dry run: the graph was built; this runner translates nothing further.")
        return
    import json

    from google.protobuf import json_format

    pipeline = job.proto_pipeline  # the Runner API graph Dataflow would receive
    if path:
        description = {
            "job": json.loads(job.json()),
            "pipeline": json_format.MessageToDict(pipeline),
        }
        with open(path, "w", encoding="utf-8") as f:
            json.dump(description, f)
    transforms = len(pipeline.components.transforms)
    where = f"; job and graph in {path}" if path else ""
    print(f"Dry run: Dataflow job built, not submitted ({transforms} transforms{where}).")


# What the local workers need to know: filesystem settings (S3, HDFS, Azure) and their log level.
# Our pipelines' own flags stay out: a worker has not imported their option classes and would
# warn about each one as unparseable.
WORKER_OPTION_PREFIXES = ("s3_", "hdfs_", "azure_", "blob_", "default_sdk_harness_log_level")


def local_runner(options):
    """For the FnApiRunner: one whose worker processes receive the job's pipeline options, and
    whose workers run in the environment that --environment_type names (the `container`
    profile: DOCKER, one container of --environment_config's image per worker).

    Beam's FnApiRunner, built by name, hands its subprocess workers an empty option set (its
    default provision info has none), so a worker's filesystems have no S3 endpoint or keys and
    list the real AWS endpoint, retrying for minutes. Its public `provision_info` argument
    carries them, as portable runners do.

    Beam's FnApiRunner also ignores --environment_type: it runs its workers in this process or
    in subprocesses (--direct_running_mode). Its public `default_environment` argument takes a
    portable environment instead; Beam's embedded job service (--runner PortableRunner
    --job_endpoint embed) would honour --environment_type too, but it always runs one worker
    (local_job_service.BeamJob builds its FnApiRunner without --direct_num_workers, Beam 2.77),
    so one container would do all the work. Other runners: None (Beam picks by --runner)."""
    from apache_beam.options.pipeline_options import PortableOptions, StandardOptions

    if options.view_as(StandardOptions).runner not in ("FnApiRunner", None):
        return None
    environment = None
    if options.view_as(PortableOptions).environment_type:
        from apache_beam.options.pipeline_options import DirectOptions
        from apache_beam.transforms import environments

        mode = options.view_as(DirectOptions).direct_running_mode
        if mode != "in_memory":
            # FnApiRunner.run_pipeline replaces the environment for these modes, silently.
            raise ValueError(
                f"--environment_type {options.view_as(PortableOptions).environment_type} with "
                f"--direct_running_mode {mode} would run the workers as local processes; use "
                "--profile container (or drop --direct_running_mode)"
            )

        environment = environments.Environment.from_options(options.view_as(PortableOptions))
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    from apache_beam.runners.portability.fn_api_runner.fn_runner import ExtendedProvisionInfo
    from google.protobuf import struct_pb2

    values = struct_pb2.Struct()
    for key, value in options.get_all_options(drop_default=True).items():
        if value is None or not key.startswith(WORKER_OPTION_PREFIXES):
            continue
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            or not isinstance(value, str | float | bool | list)
        ):
            value = str(value)  # a Struct holds numbers as doubles: "2.0" is no int flag
        values.update({f"beam:option:{key}:v1": value})
    return FnApiRunner(
        default_environment=environment,
        provision_info=ExtendedProvisionInfo(
            # No retrieval token: a container's boot would ask the runner for a legacy
            # artifact manifest under it, which the FnApiRunner does not serve; staged files
            # (--setup_file, --requirements_file) travel as the environment's dependencies.
            beam_provision_api_pb2.ProvisionInfo(pipeline_options=values)
        ),
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
