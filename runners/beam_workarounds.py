"""Where Apache Beam 2.77 falls short for us, and the smallest answer to each: the one place
that says what Beam does, where in its source, and which canary test fails the day that changes.

    pytest tests/runners/test_beam_workarounds.py   # the canaries (those needing moto or
                                                     # Docker are marked slow / container)

Here (small enough to live in this module):

1. FileSystems.set_options is process-wide and has no getter (apache_beam/io/filesystems.py,
   `FileSystems.set_options`): S3 keys and endpoints would outlive a run in a process that runs
   several (tests, the demo, a notebook). `filesystem_options` scopes them and restores Beam's
   default (None) on exit. Canary: test_filesystems_has_no_getter_for_its_options.
2. The FnApiRunner built by name hands its worker processes no pipeline options: its default
   provision info is an empty ProvisionInfo (fn_api_runner/fn_runner.py, FnApiRunner.__init__),
   so a subprocess or container worker's S3 filesystem has no endpoint or keys and dials AWS,
   retrying for minutes. `worker_provision_info` passes the filesystem options through the
   runner's public `provision_info` argument. Canary:
   test_the_default_provision_info_carries_no_options.
3. ...and that default provision info carries a retrieval token, under which a container's boot
   asks the runner for a legacy artifact manifest that the FnApiRunner does not serve: the
   worker never starts (sdks/python/container/boot.go, 2.77). Ours has no token. Canary:
   tests/runners/test_containers.py::test_beams_default_provision_info_stops_a_docker_worker_at_boot
4. The FnApiRunner ignores --environment_type (it picks subprocesses or threads by
   --direct_running_mode; fn_runner.py, FnApiRunner.run_pipeline), and Beam's embedded job
   service, which honours it, runs one worker (portability/local_job_service.py, BeamJob).
   `worker_environment` builds the environment for the runner's public `default_environment`.
   Canary: test_the_fn_api_runner_ignores_environment_type.
5. Beam's S3 writer cannot create an empty object: it always completes a multipart upload, and
   S3 refuses one with no parts (apache_beam/io/aws/s3io.py, S3IO.open / S3Uploader).
   `put_empty_s3_object` puts it with Beam's own boto3 client. Canary:
   test_beams_s3_writer_cannot_create_an_empty_object.
6. Beam writes --dataflow_job_file only on a real submission, not with --dry_run
   (runners/dataflow/dataflow_runner.py, 2.77), and only Dataflow honours --dry_run.
   `write_dry_run_job_file` writes it from the dry run's job. Canary:
   tests/runners/test_dataflow_dry_run.py.

Elsewhere (each larger than a helper, in a module named for it):

7. A local worker that dies leaves the FnApiRunner waiting for ever (the bundle's wait in
   fn_runner.py never sees the control connection's abort): runners/watchdog.py; canary
   tests/runners/test_watchdog.py.
8. Beam's DockerSdkWorkerHandler kills its containers and never removes them, and never
   notices one that exits on its own: runners/workers.py; canary
   tests/runners/test_containers.py::test_beam_leaves_its_worker_containers_behind.
9. Beam only logs a flag it does not know ("Discarding unparseable args") and runs on with the
   default: runners/flags.py reject_unknown; canary tests/runners/test_flags.py.
10. The FnApiRunner's local workers log their start-up to our stderr with no hook to change it,
    and Docker pull errors of a `localhost/` image land there too: runners/stderr_filter.py.
"""

from __future__ import annotations

import contextlib

# What the local workers need to know: filesystem settings (S3, HDFS, Azure) and their log level.
# Our pipelines' own flags stay out: a worker has not imported their option classes and would
# warn about each one as unparseable.
WORKER_OPTION_PREFIXES = ("s3_", "hdfs_", "azure_", "blob_", "default_sdk_harness_log_level")


@contextlib.contextmanager
def filesystem_options(options):
    """Hands `options` (S3 endpoint and keys, HDFS host, ...) to Beam's filesystems in this
    process for the `with` block, then restores Beam's default (none). Nested scopes restore
    the enclosing one."""
    from apache_beam.io.filesystems import FileSystems

    _scopes.append(options)
    FileSystems.set_options(options)
    try:
        yield options
    finally:
        _scopes.pop()
        FileSystems.set_options(_scopes[-1] if _scopes else None)


_scopes: list = []  # the options of the open filesystem_options scopes, innermost last


def worker_provision_info(options):
    """Provision info for Beam's FnApiRunner that carries the run's filesystem options (2) and
    no retrieval token (3)."""
    from apache_beam.portability.api import beam_provision_api_pb2
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
    # Staged files (--setup_file, --requirements_file) travel as the environment's dependencies.
    return ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=values))


def worker_environment(options):
    """The portable environment --environment_type names, for the FnApiRunner's
    `default_environment` (4); None without one. Refuses a --direct_running_mode that the
    FnApiRunner would put in its place, silently."""
    from apache_beam.options.pipeline_options import DirectOptions, PortableOptions
    from apache_beam.transforms import environments

    portable = options.view_as(PortableOptions)
    if not portable.environment_type:
        return None
    mode = options.view_as(DirectOptions).direct_running_mode
    if mode != "in_memory":  # FnApiRunner.run_pipeline replaces the environment for these
        raise ValueError(
            f"--environment_type {portable.environment_type} with --direct_running_mode {mode} "
            "would run the workers as local processes; use --profile container (or drop "
            "--direct_running_mode)"
        )
    return environments.Environment.from_options(portable)


def s3_client(s3_settings: dict):
    """A boto3 S3 client built by Beam's own S3 client wrapper from the run's S3 options (the
    same endpoint, keys and retries as Beam's filesystem), for what that filesystem cannot do:
    empty objects (5) and key ranges for a split listing (pipelines/ingest/listing.py)."""
    from apache_beam.io.aws.clients.s3.boto3_client import Client

    return Client(dict(s3_settings)).client


def put_empty_s3_object(path: str, s3_settings: dict) -> None:
    """A zero-byte object at s3://bucket/key (5)."""
    bucket, _, key = path[len("s3://") :].partition("/")
    s3_client(s3_settings).put_object(Bucket=bucket, Key=key, Body=b"")


def write_dry_run_job_file(options, result) -> None:
    """After a Dataflow --dry_run: the job Dataflow would receive, to --dataflow_job_file (6)."""
    import json

    from apache_beam.options.pipeline_options import DebugOptions
    from google.protobuf import json_format

    path = options.view_as(DebugOptions).dataflow_job_file
    job = getattr(result, "job", None)  # Dataflow's dry-run result carries the built job
    if job is None:
        print("Dry run: the graph was built; this runner translates nothing further.")
        return
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
