"""Local multi-process runs on Beam's own FnApiRunner: quiet consoles, nothing left behind, a
dying worker fails the job."""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest


def _processes_with(token: str) -> list[int]:
    """Live processes whose environment carries `token` (Linux /proc)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if token.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def _wait_gone(token: str, seconds: float = 10.0) -> list[int]:
    deadline = time.time() + seconds
    while (left := _processes_with(token)) and time.time() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux /proc")
def test_command_line_run_keeps_the_console_quiet_and_leaves_no_worker(synthetic_dir, tmp_path):
    token = f"SEGSCALE_TEST_{uuid.uuid4().hex}"
    out = tmp_path / "out"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.ingest",
            f"--images_dir={synthetic_dir / 'images'}",
            f"--masks_dir={synthetic_dir / 'masks'}",
            f"--output_dir={out}",
            "--num_classes=3",
            "--profile=local",
            "--direct_num_workers=2",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, token: "1"},
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "found 40 = accepted 40 + rejected 0" in run.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["accepted"] == 40
    # Nothing on stderr at all: the SDK harness's start-up INFO lines (about 40 per run
    # before), TensorFlow's C++ start-up notes and Beam's import-time warnings stay off the
    # console, whatever their wording.
    assert run.stderr == "", run.stderr[-3000:]
    assert _wait_gone(token) == []  # no worker outlives the command


def _die(x):
    os._exit(3)  # a worker process killed mid-bundle (as by the kernel for memory)


@pytest.mark.slow
def test_a_dying_worker_is_an_error_not_a_hang(tmp_path):
    """Beam's FnApiRunner would wait for the dead worker for ever; runners.watchdog fails the
    job with one clear error instead."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from runners import launch, watchdog

    options = PipelineOptions(
        ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=1"]
    )
    start = time.time()
    with pytest.raises(watchdog.WorkerDiedError, match="a local worker died"):
        launch.execute(options, lambda p: p | beam.Create([1, 2, 3]) | beam.Map(_die))
    assert time.time() - start < 120


def test_a_bad_flag_is_one_line_on_stderr(tmp_path):
    for command in (["-m", "pipelines.ingest"], ["-m", "pipelines.cli", "ingest"]):
        run = subprocess.run(
            [
                sys.executable,
                *command,
                f"--images_dir={tmp_path / 'nope'}",
                f"--masks_dir={tmp_path}",
                f"--output_dir={tmp_path / 'out'}",
                "--num_classes=2",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 2
        assert run.stderr.strip().splitlines() == [
            f"error: --images_dir {tmp_path / 'nope'}: no such folder"
        ]
