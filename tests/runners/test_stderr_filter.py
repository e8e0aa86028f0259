import os
import subprocess
import sys

CHILD = r"""
import os, subprocess, sys
from runners.stderr_filter import filtered_stderr
with filtered_stderr():
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    os.write(2, b"I0000 00:00:1795670278.988788     619 port.cc:153] oneDNN custom operations are on.\n")
    os.write(2, b"E0000 00:00:1795670024.032206   31341 util.cc:131] oneDNN supports DT_INT32 only on platforms with AVX-512.\n")
    os.write(2, b"WARNING:apache_beam.io.filebasedsink:Deleting 2 existing files in target path matching: -*-of-%(num_shards)05d\n")
    print("a real warning", file=sys.stderr, flush=True)
    # a worker process inherits the filtered descriptor
    subprocess.run([sys.executable, "-c", "import os; os.write(2, b'I0000 00:00:1.5     7 cpu_feature_guard.cc:227] This TensorFlow binary\\nworker error: disk full\\n')"], check=True)
    os.write(2, b"no newline at the end")
print("after", file=sys.stderr)
"""


def test_tensorflow_startup_lines_are_dropped_and_the_rest_kept():
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stderr.splitlines() == [
        "a real warning",
        "worker error: disk full",
        "no newline at the endafter",
    ]


def test_the_filter_can_be_turned_off():
    import os

    env = dict(os.environ, SEGSCALE_RAW_STDERR="1")
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, env=env
    )
    assert "I0000" in done.stderr and "oneDNN supports" in done.stderr


def test_the_last_lines_of_a_crashing_command_still_reach_the_console():
    crash = (
        "import os\n"
        "from runners.stderr_filter import filtered_stderr\n"
        "with filtered_stderr():\n"
        "    os.write(2, b'I0000 00:00:1.5     7 port.cc:153] oneDNN custom operations\\n')\n"
        "    os.write(2, b'F0000 Check failed: the last words\\n')\n"
        "    os.abort()\n"
    )
    done = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr.splitlines() == ["F0000 Check failed: the last words"]


def test_a_partial_line_is_passed_on_without_waiting_for_its_newline():
    prompt = (
        "import os, time\n"
        "from runners.stderr_filter import filtered_stderr\n"
        "with filtered_stderr():\n"
        "    os.write(2, b'progress 50%')\n"
        "    time.sleep(1.0)\n"
        "    print('checkpoint', flush=True)\n"
        "    time.sleep(0.3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", prompt], capture_output=True, text=True, timeout=60
    )
    assert done.stderr == "progress 50%" and done.stdout == "checkpoint\n"


def test_verbose_turns_the_filter_off_and_logs_info(monkeypatch):
    import logging

    from runners import console

    monkeypatch.delenv("SEGSCALE_RAW_STDERR", raising=False)  # both restored after the test
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    assert console.take_verbose(["--a=1"]) == ["--a=1"]
    assert "SEGSCALE_RAW_STDERR" not in os.environ
    root = logging.getLogger()
    level = root.level
    try:
        assert console.take_verbose(["--a=1", "--verbose"]) == ["--a=1"]
        assert os.environ["SEGSCALE_RAW_STDERR"] == "1"
    finally:
        root.setLevel(level)
    child = "import os\nfrom runners.stderr_filter import filtered_stderr\nwith filtered_stderr():\n    os.write(2, b'INFO:apache_beam: worker start-up\\n')\n"
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    assert "worker start-up" in done.stderr  # SEGSCALE_RAW_STDERR reached the child: unfiltered
