"""Local multi-process runs: workers started early, quiet consoles, nothing left behind."""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from runners import worker_pool


def test_worker_count_follows_profile_and_flags():
    assert worker_pool.local_worker_count(["--profile=local", "--direct_num_workers=3"]) == 3
    assert worker_pool.local_worker_count(["--direct_num_workers=2"]) == 2  # local is default
    assert worker_pool.local_worker_count(["--profile=local"]) == os.cpu_count()
    assert worker_pool.local_worker_count(["--profile=inprocess"]) == 0
    assert worker_pool.local_worker_count(["--runner=PortableRunner"]) == 0
    assert worker_pool.local_worker_count(["--direct_running_mode=multi_threading"]) == 0
    assert worker_pool.local_worker_count(["--profile=no-such-profile"]) == 0
    assert worker_pool.prestart(["--help"]) == 0


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


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux /proc")
def test_unclaimed_workers_leave_when_released(monkeypatch):
    token = f"SEGSCALE_TEST_{uuid.uuid4().hex}"
    monkeypatch.setenv(token, "1")
    assert worker_pool.prestart(["--profile=local", "--direct_num_workers=2"]) == 2
    assert len(_processes_with(token)) == 2
    worker_pool.release_all()
    assert _wait_gone(token) == []
    assert worker_pool.claim() is None


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux /proc")
def test_command_line_run_uses_early_workers_and_keeps_the_console_quiet(synthetic_dir, tmp_path):
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
    # The SDK harness's start-up INFO lines (about 40 per run before) stay off the console.
    chatter_lines = (
        "Logging handler created",
        "Python sdk harness",
        "Worker: severity",
        "INFO",
        "apitools not found",
    )
    for chatter in chatter_lines:
        assert chatter not in run.stderr, run.stderr[-3000:]
    assert _wait_gone(token) == []  # no worker outlives the command


@pytest.mark.slow
def test_a_failing_worker_start_is_an_error_not_a_hang(synthetic_dir, tmp_path, monkeypatch):
    from pipelines import ingest

    monkeypatch.setattr(
        worker_pool, "worker_command", lambda preload=(): [sys.executable, "-c", "exit(3)"]
    )
    with pytest.raises(RuntimeError, match="local worker process .* exited with code 3"):
        ingest.run(
            [
                f"--images_dir={synthetic_dir / 'images'}",
                f"--masks_dir={synthetic_dir / 'masks'}",
                f"--output_dir={tmp_path / 'out'}",
                "--num_classes=3",
                "--profile=local",
                "--direct_num_workers=1",
            ]
        )


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
