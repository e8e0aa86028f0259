"""runners/schedule/nightly.sh hands WORKER_IMAGE to the night's inference in the flag each
runner reads, and every step its storage flags (a stand-in segscale records the calls)."""

import os
import shutil
import subprocess

NIGHTLY = os.path.join(os.path.dirname(__file__), "..", "..", "runners", "schedule", "nightly.sh")


def test_the_worker_image_reaches_the_nights_inference(tmp_path):
    calls = tmp_path / "calls"
    stub = tmp_path / "segscale"
    stub.write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\n')
    stub.chmod(0o755)
    env = dict(
        os.environ,
        SEGSCALE=str(stub),
        MODEL_DIR="s3://seg/model",
        INPUT_PATTERN="s3://seg/in/*.png",
        OUTPUT_DIR="s3://seg/pred",
        WORKER_IMAGE="localhost/segscale-worker:0.1.0",
        FS_FLAGS="--s3_endpoint_url http://127.0.0.1:9",
        LOCK_FILE=str(tmp_path / "lock"),
    )
    done = subprocess.run(
        [shutil.which("bash"), NIGHTLY, "--profile=container"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    infer, runs, drift, review = calls.read_text().splitlines()
    assert infer.startswith("infer ") and infer.endswith("--profile=container")
    assert "--environment_config localhost/segscale-worker:0.1.0" in infer
    assert "--sdk_container_image localhost/segscale-worker:0.1.0" in infer
    for step in (infer, runs, drift, review):
        assert "--s3_endpoint_url http://127.0.0.1:9" in step
    assert not any("segscale-worker" in step for step in (runs, drift, review))
