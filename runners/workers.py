"""Where the SDK workers run, outside the launcher: checked before a run and cleaned up after.

    segscale ingest --profile container --environment_config localhost/segscale-worker:0.1.0 ...

DOCKER (the `container` profile, FnApiRunner): Beam's DockerSdkWorkerHandler starts one
container of the image per worker (`docker run -d --network=host IMAGE --id=...
--control_endpoint=...`) and kills it at the end of the run, but never removes it (no --rm;
apache_beam/runners/portability/fn_api_runner/worker_handlers.py, Beam 2.77), so every run would
leave its containers behind. After a run that succeeded we remove the exited containers of the
image that the run started; after a failure we stop them and keep them, for `docker logs`. An
image that Docker does not have is an error before anything starts (Beam would try to pull it,
then fail inside a worker thread).

EXTERNAL (a Beam worker pool you started, e.g. for a Flink cluster on this machine): the
runner asks the pool at --environment_config for workers and waits, with no time limit, for one
to connect; a pool that is not there (never started, or started with an interpreter without
Beam, which exits at once) is a hang of many minutes. For a pool on loopback we check that it
accepts connections first (a pool beside remote task managers is theirs to reach, not ours).

Only runs whose workers start on this machine are checked (the FnApiRunner, Beam's embedded
job service): a Flink or remote job server pulls the image from a registry itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import subprocess
import sys
import threading

# Beam warns that direct_num_workers > 1 wants a multi_processing or multi_threading running
# mode; that is true of its own subprocess workers, not of a Docker environment, where each
# worker is a container (fn_runner.FnApiRunner.run_pipeline, Beam 2.77).
_RUNNING_MODE_WARNING = "If direct_num_workers is not equal to 1, direct_running_mode"


def docker_image(options) -> str | None:
    """The worker image when the run's environment is DOCKER, else None."""
    from apache_beam.options.pipeline_options import PortableOptions

    portable = options.view_as(PortableOptions)
    if (portable.environment_type or "").upper() != "DOCKER":
        return None
    from apache_beam.transforms import environments

    return portable.environment_config or environments.DockerEnvironment.default_docker_image()


def check_environment(options) -> None:
    """For runs whose workers start on this machine (the FnApiRunner, Beam's embedded job
    service): the Docker image is in this machine's engine, or the worker pool on loopback
    answers. A Flink or remote job server starts its workers elsewhere, from a registry or its
    own pool: nothing here can check those."""
    from apache_beam.options.pipeline_options import PortableOptions, StandardOptions

    portable = options.view_as(PortableOptions)
    runner = options.view_as(StandardOptions).runner
    local = runner in ("FnApiRunner", None) or (
        runner == "PortableRunner" and portable.job_endpoint == "embed"
    )
    kind = (portable.environment_type or "").upper()
    if local and kind == "DOCKER":
        check_image(docker_image(options))
    elif kind == "EXTERNAL" and portable.environment_config:
        address = portable.environment_config
        if address.lstrip().startswith("{"):  # Beam also takes {"url": "host:port", ...}
            address = json.loads(address).get("url", "")
        host = address.rpartition(":")[0].strip("[]")
        if host in ("localhost", "::1") or host.startswith("127."):
            check_worker_pool(address)


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    docker = shutil.which("docker")
    if docker is None:
        raise ValueError("--environment_type DOCKER: no docker command on this machine")
    try:
        done = subprocess.run([docker, *args], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise ValueError(f"docker {args[0]}: no answer from the Docker engine in 60 s") from None
    if check and done.returncode != 0:
        raise ValueError(f"docker {args[0]}: {done.stderr.strip() or done.returncode}")
    return done


def check_image(image: str) -> None:
    """Raises ValueError, saying what to do, unless Docker answers and has `image`."""
    if _docker("version", check=False).returncode != 0:
        raise ValueError("--environment_type DOCKER: no Docker engine answers (start dockerd)")
    if _docker("image", "inspect", image, check=False).returncode != 0:
        raise ValueError(
            f"--environment_config {image}: no such image in this machine's Docker engine; "
            "build it with runners/container/build.sh (it prints the reference to pass)"
        )


def check_worker_pool(address: str, seconds: float = 10.0) -> None:
    """Raises ValueError, saying how to start one, unless a worker pool accepts connections at
    `address` (host:port) within `seconds`."""
    import socket
    import time

    host, _, port = address.rpartition(":")
    host = host.strip("[]")  # [::1]:50000
    if not host or not port.isdigit():
        raise ValueError(f"--environment_config {address!r}: expected HOST:PORT of a worker pool")
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=2):
                return
        except OSError as e:
            if time.monotonic() >= deadline:
                raise ValueError(
                    f"--environment_type EXTERNAL: no Beam worker pool answers at {address} "
                    f"({e.strerror or e}); start one with this environment's own interpreter: "
                    f"{sys.executable} -m apache_beam.runners.worker.worker_pool_main "
                    f"--service_port {port}"
                ) from None
            time.sleep(0.5)


def _containers(image: str) -> set[str]:
    listed = _docker("ps", "--all", "--quiet", "--no-trunc", "--filter", f"ancestor={image}")
    return set(listed.stdout.split())


class _QuietRunningMode(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_RUNNING_MODE_WARNING)


POLL_SECONDS = 2.0  # how often the run's containers are looked at


class ContainerExited(RuntimeError):
    """A worker container of the run stopped on its own: the job cannot finish."""


def _watch_exits(image: str, before: set[str], stop: threading.Event) -> None:
    """Raises ContainerExited (in this thread: runners.watchdog turns it into the run's error)
    when one of the run's containers exits other than by Beam's own `docker kill` at the end.

    Beam watches its containers too: start_worker raises when one has exited before it is seen
    running, and watch_container aborts the control connection of one that exits later. The
    bundle's wait ignores that abort (fn_runner.py, BundleManager: input_elements' abort
    callback looks at result_future.is_done() only, Beam 2.77), so a container whose boot fails
    after it started (a pip install of --setup_file that fails, a broken image) leaves the
    runner waiting for ever. The run's containers are those of
    the image that did not exist before it started: a second run of the same image on this
    machine at the same time is not told apart."""
    while not stop.wait(POLL_SECONDS):
        try:
            started = sorted(_containers(image) - before)
            if not started:
                continue
            states = _docker(
                "inspect",
                "--format",
                "{{.Id}} {{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}",
                *started,
                check=False,
            ).stdout.split("\n")
        except ValueError:
            continue  # a slow or failing `docker` call says nothing about the workers
        for line in states:
            fields = line.split()
            if len(fields) != 4 or fields[1] not in ("exited", "dead"):
                continue
            container, _, code, oom = fields
            # 137: Beam's `docker kill` when its run ends; 0: boot's own exit once its SDK
            # process has ended cleanly, which Beam's close can cause just before that kill.
            if code in ("0", "137") and oom == "false" or stop.is_set():
                continue
            logs = _docker("logs", "--tail", "1", container, check=False)
            last = (logs.stdout + logs.stderr).strip().splitlines()[-1:] or ["no log"]
            why = "killed for memory (OOM)" if oom == "true" else f"exit status {code}"
            raise ContainerExited(
                f"worker container {container[:12]} stopped ({why}); its last log line: {last[0]}"
            )


@contextlib.contextmanager
def worker_containers(image: str):
    """Runs the body (a pipeline run on `image`'s containers); a container of the run that
    stops on its own fails the run (from a watching thread: run inside runners.watchdog);
    removes the run's containers when it succeeds, stops and keeps them when it fails."""
    before = _containers(image)  # ValueError (exit 2) when Docker does not answer
    runner_log = logging.getLogger("apache_beam.runners.portability.fn_api_runner.fn_runner")
    quiet = _QuietRunningMode()
    runner_log.addFilter(quiet)
    stop = threading.Event()
    watcher = threading.Thread(
        target=_watch_exits, args=(image, before, stop), name="container-watch", daemon=True
    )
    watcher.start()
    try:
        yield
    except BaseException:
        try:
            started = sorted(_containers(image) - before)
        except ValueError:  # Docker no longer answers: the run's own error matters more
            started = []
        if started:
            # Beam's cleanup of a failed run can stop before it kills them (a dead worker's
            # data connection raises in DockerSdkWorkerHandler.close); their SDK processes
            # would go on retrying a runner that is gone.
            with contextlib.suppress(ValueError):
                _docker("kill", *started, check=False)
            logging.getLogger(__name__).warning(
                "the run's worker containers are kept for `docker logs`: %s",
                " ".join(c[:12] for c in started),
            )
        raise
    else:
        started = sorted(_containers(image) - before)
        if started:
            # Beam has killed them; --force also covers one still stopping.
            with contextlib.suppress(ValueError):
                _docker("rm", "--force", *started, check=False)
    finally:
        stop.set()
        watcher.join(timeout=10)
        runner_log.removeFilter(quiet)
