"""The guard of conftest.py: a subprocess that a test starts cannot reach past loopback, and
says so at once (the workers-dial-AWS bug lived exactly there), while loopback still works."""

import os
import subprocess
import sys
import time

import pytest

ATTEMPTS = {
    "urllib": "import urllib.request; urllib.request.urlopen('http://example.com/', timeout=20)",
    "boto3 to AWS": (
        "import boto3; boto3.client('s3', region_name='us-east-1', aws_access_key_id='k',"
        " aws_secret_access_key='s').list_buckets()"
    ),
}


@pytest.mark.parametrize("client", sorted(ATTEMPTS))
def test_a_subprocess_cannot_reach_the_network(client):
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", ATTEMPTS[client]], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0, "the attempt went through"
    assert "refused" in done.stderr.lower() or "ProxyConnectionError" in done.stderr, done.stderr[
        -2000:
    ]
    assert time.monotonic() - start < 60


def test_loopback_still_works_from_a_subprocess():
    from object_store import s3_server

    with s3_server() as (url, _):
        code = (
            f"import boto3; print(len(boto3.client('s3', endpoint_url={url!r},"
            " region_name='us-east-1', aws_access_key_id='k', aws_secret_access_key='s')"
            ".list_buckets()['Buckets']))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "1"
    assert os.environ["HTTPS_PROXY"] == "http://127.0.0.1:9"
