"""A flag that neither our pipelines' options nor Beam's know is an error naming the closest
known flag (Beam alone would log it and run on with the default); runner flags pass."""

import subprocess
import sys

import pytest


def test_a_mistyped_flag_is_an_error_with_a_suggestion():
    import pipelines.ingest.pipeline  # noqa: F401  (registers the ingest flags, as a run does)
    from runners import launch

    with pytest.raises(
        ValueError, match=r"unknown flag: --num_clases \(did you mean --num_classes\?\)"
    ):
        launch.pipeline_options(["--profile=inprocess", "--num_clases=3", "--images_dir=x"])
    with pytest.raises(
        ValueError,
        match=r"unknown flags: --apend \(did you mean --append\?\), --direct_num_worker \(did you mean --direct_num_workers\?\)",
    ):
        launch.pipeline_options(["--apend", "--direct_num_worker=2"])


def test_beam_runner_and_filesystem_flags_pass():
    import pipelines.infer.pipeline  # noqa: F401
    from runners import launch

    options = launch.pipeline_options(
        [
            "--profile=inprocess",
            "--flink_master=jobmanager:8081",
            "--sdk_container_image=registry/segscale-worker:0.1.0",
            "--s3_endpoint_url=http://127.0.0.1:9",
            "--dataflow_service_options=worker_accelerator=type:t4;count:1",
            "--experiments=use_runner_v2",
            "--skip_existing",
        ]
    )
    assert options.get_all_options()["flink_master"] == "jobmanager:8081"


@pytest.mark.slow
def test_the_cli_says_it_in_one_line_and_exits_2(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "ingest", f"--images_dir={tmp_path}/i"]
        + [f"--masks_dir={tmp_path}/m", f"--output_dir={tmp_path}/o", "--num_classes=2"]
        + ["--mask_sufix=_mask"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: unknown flag: --mask_sufix (did you mean --mask_suffix?); "
        "--help lists this command's flags"
    ]
