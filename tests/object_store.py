"""A real S3-compatible server on loopback (moto's server mode) and the helpers the
object-storage and container tests share."""

import contextlib
import io
import os
import subprocess
import sys

import boto3  # test dependencies (pyproject's test extra): never skipped
import moto.server as moto_server

from pipelines import tfrecord_framing

KEYS = {"aws_access_key_id": "test-key", "aws_secret_access_key": "test-secret"}
REGION = "us-east-1"
BUCKET = "seg"


@contextlib.contextmanager
def s3_server():
    """(endpoint URL, boto3 client) of a fresh server with the bucket `seg`."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=url, region_name=REGION, **KEYS)
        client.create_bucket(Bucket=BUCKET)
        yield url, client
    finally:
        server.stop()


def flags(url):
    """Beam's S3 flags for the server: the only way the pipelines learn of it."""
    return [
        f"--s3_endpoint_url={url}",
        f"--s3_access_key_id={KEYS['aws_access_key_id']}",
        f"--s3_secret_access_key={KEYS['aws_secret_access_key']}",
        f"--s3_region_name={REGION}",
    ]


def upload(client, folder, prefix):
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            client.upload_file(path, BUCKET, f"{prefix}/{os.path.relpath(path, folder)}")


def read(client, key):
    return client.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def keys(client, prefix):
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def records(data: bytes) -> list[bytes]:
    """The records of one TFRecord file's bytes."""
    f, out = io.BytesIO(data), []
    while (record := tfrecord_framing.read_record(f)) is not None:
        out.append(record)
    return out


def run_module(module, *args, timeout=400):
    """`python -m module args` as a user runs it, with no AWS settings in its environment (the
    flags alone must be enough); fails the test with its stderr unless it exits 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done
