"""A run's outcome on a portable runner is the job's final state (Beam's embedded job service,
LOOPBACK workers in this process), and a worker pool that is not there is an error at once."""

import socket
import threading
import time

import pytest

PORTABLE = ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK"]


def _thread_dies(x):
    """What Beam's SDK harness threads do while a job server tears a stage down: raise in a
    thread of their own ("Multiplexer hanging up", data_plane.py), also in jobs that finish."""
    thread = threading.Thread(target=_raise, name="read_grpc_client_inputs")
    thread.start()
    thread.join()
    return x


def _raise():
    raise RuntimeError("Multiplexer hanging up")


def _bad(x):
    raise ValueError(f"bad element {x}")


def _options(*flags):
    from apache_beam.options.pipeline_options import PipelineOptions

    return PipelineOptions([*PORTABLE, *flags])


@pytest.mark.slow
def test_a_finished_portable_job_is_not_failed_by_a_harness_thread(tmp_path):
    import apache_beam as beam

    from runners import launch

    out = tmp_path / "out"

    def build(p):
        (
            p
            | beam.Create([1, 2, 3])
            | beam.Map(_thread_dies)
            | beam.Map(str)
            | beam.io.WriteToText(str(out), num_shards=1, shard_name_template="")
        )

    launch.execute(_options(), build)  # the local watchdog would have turned this into an error
    assert sorted(out.read_text().split()) == ["1", "2", "3"]


@pytest.mark.slow
def test_a_failed_portable_job_reports_the_runners_own_error():
    import apache_beam as beam

    from runners import launch

    with pytest.raises(RuntimeError, match="bad element 7") as failure:
        launch.execute(_options(), lambda p: p | beam.Create([7]) | beam.Map(_bad))
    assert "worker died" not in str(failure.value)


@pytest.mark.slow
def test_an_external_environment_without_a_worker_pool_fails_fast():
    from runners import launch

    with socket.socket() as s:  # a loopback port with nothing listening on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(ValueError, match=f"no Beam worker pool answers at 127.0.0.1:{port}") as e:
        launch.pipeline_options(
            ["--profile=portable", "--environment_type=EXTERNAL"]
            + [f"--environment_config=127.0.0.1:{port}"]
        )
    assert time.monotonic() - start < 30
    assert "worker_pool_main --service_port" in str(e.value)  # how to start one, named
