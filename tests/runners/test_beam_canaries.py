"""Canaries: the Beam behaviours our workarounds answer, checked as they are today. Each test
fails the day upstream changes, so that the workaround it names can be deleted or mended then.

  - FnApiRunner ignores --environment_type      -> runners/launch.py local_runner (passes
    Beam's environment as its public `default_environment`)
  - Beam's S3 writer cannot create an empty object -> pipelines/outputs.py create_empty
  - DockerSdkWorkerHandler never removes its containers -> runners/workers.py worker_containers
    (tests/runners/test_containers.py::test_beam_leaves_its_worker_containers_behind)
  - the FnApiRunner's default provision info stops a Docker worker at boot -> the provision
    info of runners/launch.py local_runner has no retrieval token
    (tests/runners/test_containers.py::test_beams_default_provision_info_stops_a_docker_worker_at_boot)
"""

import pytest


def test_the_fn_api_runner_ignores_environment_type(tmp_path):
    """Beam 2.77's FnApiRunner picks its workers from --direct_running_mode alone; a PROCESS
    environment whose command does not exist is never started, so the run succeeds."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    options = PipelineOptions(
        [
            "--environment_type=PROCESS",
            '--environment_config={"command": "/nonexistent/boot"}',
            "--direct_running_mode=in_memory",
        ]
    )
    out = tmp_path / "out"
    with beam.Pipeline(runner=FnApiRunner(), options=options) as p:
        (
            p
            | beam.Create([1, 2])
            | beam.Map(str)
            | beam.io.WriteToText(str(out), num_shards=1, shard_name_template="")
        )
    assert sorted(out.read_text().split()) == ["1", "2"]


@pytest.mark.slow
def test_beams_s3_writer_cannot_create_an_empty_object():
    """Beam 2.77's S3 writer always completes a multipart upload, and S3 refuses one with no
    parts (apache_beam/io/aws/s3io.py); create_empty puts such objects directly."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions
    from object_store import flags, keys, s3_server

    from pipelines.outputs import create_empty
    from runners.launch import s3_settings

    with s3_server() as (url, client):
        FileSystems.set_options(PipelineOptions(flags(url)))
        try:
            with pytest.raises(Exception):  # noqa: B017  (whatever Beam raises: it must fail)
                FileSystems.create("s3://seg/empty.txt").close()
            assert "empty.txt" not in keys(client, "")
            create_empty("s3://seg/empty.txt", s3_settings(PipelineOptions(flags(url))))
            assert client.get_object(Bucket="seg", Key="empty.txt")["ContentLength"] == 0
        finally:
            FileSystems.set_options(PipelineOptions([]))  # process-wide: leave none behind
