"""Canaries: the Beam behaviours that runners/beam_workarounds.py answers, checked as they are
today (numbers as in that module's list). Each fails the day upstream changes, so that the
workaround can be deleted or mended then. Those that need Docker live in
tests/runners/test_containers.py (3, 8).
"""

import pytest


def test_the_fn_api_runner_ignores_environment_type(tmp_path):
    """(4) Beam 2.77's FnApiRunner picks its workers from --direct_running_mode alone; a PROCESS
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
    """(5) Beam 2.77's S3 writer always completes a multipart upload, and S3 refuses one with no
    parts (apache_beam/io/aws/s3io.py); create_empty puts such objects directly."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions
    from object_store import flags, keys, s3_server

    from pipelines.fileio import create_empty
    from runners.beam_workarounds import filesystem_options
    from runners.launch import s3_settings

    with s3_server() as (url, client), filesystem_options(PipelineOptions(flags(url))):
        with pytest.raises(Exception):  # noqa: B017  (whatever Beam raises: it must fail)
            FileSystems.create("s3://seg/empty.txt").close()
        assert "empty.txt" not in keys(client, "")
        create_empty("s3://seg/empty.txt", s3_settings(PipelineOptions(flags(url))))
        assert client.get_object(Bucket="seg", Key="empty.txt")["ContentLength"] == 0


def test_filesystems_has_no_getter_for_its_options():
    """(1) FileSystems.set_options is process-wide with no way to read the options back, so a
    scope can only restore Beam's default; filesystem_options keeps its own stack."""
    from apache_beam.io.filesystems import FileSystems

    public = {name for name in dir(FileSystems) if not name.startswith("_")}
    assert "set_options" in public
    assert not {n for n in public if "option" in n} - {"set_options"}


def test_filesystem_options_are_scoped_and_restored(monkeypatch):
    """(1) Beam's filesystems get the run's options inside the scope, the enclosing scope's
    after a nested one, and Beam's default (None) after the last: no S3 keys outlive a run."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    from runners.beam_workarounds import filesystem_options

    given = []
    real = FileSystems.set_options
    monkeypatch.setattr(FileSystems, "set_options", lambda o: (given.append(o), real(o)))
    outer, inner = PipelineOptions(["--s3_region_name=a"]), PipelineOptions(["--s3_region_name=b"])
    with pytest.raises(KeyError), filesystem_options(outer):
        with filesystem_options(inner):
            pass
        raise KeyError("a failing run restores them too")
    assert given == [outer, inner, outer, None]


def _options_seen_by_a_worker(tmp_path, runner):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.options.value_provider import RuntimeValueProvider

    def seen(_):
        return str((RuntimeValueProvider.runtime_options or {}).get("s3_endpoint_url"))

    options = PipelineOptions(
        [
            "--s3_endpoint_url=http://127.0.0.1:9",
            "--direct_running_mode=multi_processing",
            "--direct_num_workers=1",
        ]
    )
    out = tmp_path / "seen"
    with beam.Pipeline(runner=runner(options), options=options) as p:
        (
            p
            | beam.Create([0])
            | beam.Map(seen)
            | beam.io.WriteToText(str(out), num_shards=1, shard_name_template="")
        )
    return out.read_text().split()


@pytest.mark.slow
def test_the_default_provision_info_carries_no_options(tmp_path):
    """(2) A worker process of Beam's FnApiRunner, built by name, gets none of the job's
    options; with worker_provision_info it gets the filesystem options."""
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from runners.beam_workarounds import worker_provision_info

    assert _options_seen_by_a_worker(tmp_path / "plain", lambda o: FnApiRunner()) == ["None"]
    ours = _options_seen_by_a_worker(
        tmp_path / "ours", lambda o: FnApiRunner(provision_info=worker_provision_info(o))
    )
    assert ours == ["http://127.0.0.1:9"]
