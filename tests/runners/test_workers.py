"""runners.workers without Docker: which container exits fail a run, and which runs check
their workers on this machine at all (a stand-in answers for `docker`)."""

import subprocess
import threading

import pytest

from runners import workers


def _watch(monkeypatch, state: str, log: str = "last words"):
    """Runs the exit watcher against one container in `state` ("exited 1 false", ...)."""
    monkeypatch.setattr(workers, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(workers, "_containers", lambda image: {"old", "c0ffee"})

    def docker(*args, check=True):
        out = {"inspect": f"c0ffee {state}\n", "logs": f"first\n{log}\n"}[args[0]]
        return subprocess.CompletedProcess(args, 0, out, "")

    monkeypatch.setattr(workers, "_docker", docker)
    stop, raised = threading.Event(), []

    def run():
        try:
            workers._watch_exits("img", {"old"}, stop)
        except workers.ContainerExited as e:
            raised.append(str(e))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=0.5)
    stop.set()
    thread.join()
    return raised


@pytest.mark.parametrize("state", ["exited 0 false", "exited 137 false", "running 0 false"])
def test_the_ends_of_a_normal_run_are_not_failures(monkeypatch, state):
    assert _watch(monkeypatch, state) == []


def test_a_container_that_stops_on_its_own_fails_the_run_with_its_last_log_line(monkeypatch):
    assert _watch(monkeypatch, "exited 1 false", "pip failed") == [
        "worker container c0ffee stopped (exit status 1); its last log line: pip failed"
    ]
    assert _watch(monkeypatch, "exited 137 true") == [
        "worker container c0ffee stopped (killed for memory (OOM)); its last log line: last words"
    ]


def test_a_docker_that_does_not_answer_is_not_a_dead_worker(monkeypatch):
    def slow(image):
        raise ValueError("docker ps: no answer from the Docker engine in 60 s")

    monkeypatch.setattr(workers, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(workers, "_containers", slow)
    stop = threading.Event()
    thread = threading.Thread(target=workers._watch_exits, args=("img", set(), stop))
    thread.start()
    thread.join(timeout=0.2)
    assert thread.is_alive()  # still watching
    stop.set()
    thread.join()


@pytest.mark.parametrize(
    "flags",
    [
        ["--profile=flink", "--environment_config=registry.example.com/segscale/worker:0.1.0"],
        ["--profile=portable", "--job_endpoint=flink-job-server:8099", "--environment_type=DOCKER"],
        ["--runner=DataflowRunner", "--environment_type=EXTERNAL", "--environment_config=tm:50000"],
    ],
)
def test_runs_whose_workers_start_elsewhere_are_not_checked_here(monkeypatch, flags):
    from apache_beam.options.pipeline_options import PipelineOptions

    from runners import profiles

    def fail(*args, **kwargs):
        raise AssertionError("checked this machine for a worker that starts elsewhere")

    monkeypatch.setattr(workers, "check_image", fail)
    monkeypatch.setattr(workers, "check_worker_pool", fail)
    workers.check_environment(PipelineOptions(profiles.apply_profile(flags)))


def test_local_runs_are_checked(monkeypatch):
    from apache_beam.options.pipeline_options import PipelineOptions

    from runners import profiles

    seen = []
    monkeypatch.setattr(workers, "check_image", seen.append)
    monkeypatch.setattr(workers, "check_worker_pool", seen.append)
    workers.check_environment(
        PipelineOptions(profiles.apply_profile(["--profile=container", "--environment_config=x:1"]))
    )
    workers.check_environment(
        PipelineOptions(
            ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=EXTERNAL"]
            + ['--environment_config={"url": "[::1]:50000"}']
        )
    )
    assert seen == ["x:1", "[::1]:50000"]


def test_a_docker_environment_with_local_worker_processes_is_refused():
    """Beam's FnApiRunner would silently run subprocess workers instead of containers."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from runners import launch, profiles

    flags = profiles.apply_profile(["--profile=local", "--environment_type=DOCKER"])
    with pytest.raises(ValueError, match="use --profile container"):
        launch.local_runner(PipelineOptions(flags))
    container = profiles.apply_profile(["--profile=container", "--environment_config=img:1"])
    assert launch.local_runner(PipelineOptions(container)) is not None
