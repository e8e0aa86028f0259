"""Dataflow, offline: both pipelines are built and translated by Beam's DataflowRunner with
--dry_run (no credentials, nothing submitted), and the job with its Runner API graph is written
to --dataflow_job_file. Needs apache-beam[gcp] (the test extra has it)."""

import base64
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow
IMAGE = "us-central1-docker.pkg.dev/YOUR_PROJECT/segscale/segscale-worker:0.1.0"  # the profile's

DATAFLOW = [
    "--profile=dataflow",
    "--project=my-project",
    "--region=europe-west4",
    "--temp_location=gs://my-bucket/tmp",
    "--staging_location=gs://my-bucket/staging",
    "--dry_run=True",
]


def _dry_run(tmp_path, module, *args):
    job_file = tmp_path / f"{module.split('.')[-1]}_job.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", HOME=str(tmp_path / "home"))
    for key in ("GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG"):
        env.pop(key, None)
    done = subprocess.run(
        [sys.executable, "-m", module, *DATAFLOW, f"--dataflow_job_file={job_file}", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=os.path.join(os.path.dirname(__file__), "..", ".."),  # ./setup.py of the profile
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Dry run: Dataflow job built, not submitted" in done.stdout
    description = json.loads(job_file.read_text())
    names = {t["uniqueName"] for t in description["pipeline"]["components"]["transforms"].values()}
    assert description["job"]["type"] == "JOB_TYPE_BATCH"
    # Every transform runs in the worker image the profile names (Runner v2 workers start
    # from it), and nothing is staged for them to install (no --setup_file workflow).
    environments = description["pipeline"]["components"]["environments"].values()
    assert environments and all(e["urn"] == "beam:env:docker:v1" for e in environments)
    images = {base64.b64decode(e["payload"]) for e in environments}
    assert all(IMAGE.encode() in image for image in images), images
    staged = {base64.b64decode(d["rolePayload"]) for e in environments for d in e["dependencies"]}
    assert not [name for name in staged if b"workflow.tar.gz" in name or b".whl" in name]
    return names


def test_both_pipelines_translate_for_dataflow_without_credentials(tmp_path, exported_model):
    names = _dry_run(
        tmp_path,
        "pipelines.infer",
        f"--model_dir={exported_model}",
        "--input_pattern=gs://my-bucket/incoming/**/*.png",
        "--output_dir=gs://my-bucket/pred",
    )
    assert {"Segment/Predict", "Segment/WriteOutputs", "Finalize"} <= names
    names = _dry_run(
        tmp_path,
        "pipelines.ingest",
        "--images_dir=gs://my-bucket/raw/images",
        "--masks_dir=gs://my-bucket/raw/masks",
        "--output_dir=gs://my-bucket/data",
        "--num_classes=3",
    )
    assert {
        "Ingest/ListFiles",
        "Ingest/PairEncodeAndWrite",
        "Ingest/MergeShards",
        "Finalize",
    } <= names


def test_a_dry_run_on_the_local_runner_builds_the_graph_and_writes_nothing(
    tmp_path, exported_model
):
    from pipelines.infer import pipeline as infer

    images = tmp_path / "in"
    images.mkdir()
    from builders import encode, random_pair

    (images / "a.png").write_bytes(encode(random_pair(0)[0]))
    result = infer.run(
        [
            f"--model_dir={exported_model}",
            f"--input_pattern={images}/*.png",
            f"--output_dir={tmp_path / 'out'}",
            "--profile=inprocess",
            "--dry_run=True",
        ]
    )
    assert result == {"dry_run": True}
    assert not (tmp_path / "out").exists()
