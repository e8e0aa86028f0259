"""Both pipelines with their SDK harness in Docker containers of the worker image (the
`container` profile), over object storage, compared with the local profile on the same bucket.

The containers see none of this machine's files: they hold only the image
(runners/container/build.sh), reach the S3 server on loopback (Beam runs them with
--network=host) and learn its endpoint and keys only from the pipeline options, through the
runner's provision info: they have no AWS configuration or environment of their own, so any
object they read or write proves that the options reached them.

Needs a Docker engine and the image. CI builds it (.ci/run) and sets SEGSCALE_WORKER_IMAGE and
SEGSCALE_REQUIRE_CONTAINERS=1, so there a missing engine or image fails instead of skipping.
Quick loop: -m "not slow" (these are slow and marked `container`).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from builders import encode, random_pair
from object_store import flags, keys, read, records, run_module, s3_server, upload

IMAGE = os.environ.get("SEGSCALE_WORKER_IMAGE", "localhost/segscale-worker:0.1.0")
DOCKER = shutil.which("docker") or "docker"


def _docker_ready() -> str | None:
    """None when Docker answers and has the image, else why not."""
    try:
        if subprocess.run([DOCKER, "info"], capture_output=True, timeout=30).returncode:
            return "no Docker engine answers"
        inspect = subprocess.run([DOCKER, "image", "inspect", IMAGE], capture_output=True)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"no docker command ({e})"
    return None if inspect.returncode == 0 else f"no image {IMAGE} (runners/container/build.sh)"


_why_not = _docker_ready()
if _why_not and os.environ.get("SEGSCALE_REQUIRE_CONTAINERS") == "1":
    raise RuntimeError(f"container tests required, but {_why_not}")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.container,
    pytest.mark.skipif(_why_not is not None, reason=str(_why_not)),
]


def _running(image=IMAGE) -> list[str]:
    out = subprocess.run(
        [DOCKER, "ps", "--all", "--quiet", "--filter", f"ancestor={image}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


def _started_since(since: float) -> list[str]:
    """IDs of the image's containers started since `since` (Docker's own event log)."""
    out = subprocess.run(
        [DOCKER, "events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}"]
        + ["--filter", f"image={IMAGE}", "--filter", "event=start", "--format", "{{.ID}}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return out.split()


@pytest.fixture(scope="module")
def s3():
    with s3_server() as server:
        yield server


def _run(module, profile, *args):
    extra = [f"--environment_config={IMAGE}"] if profile == "container" else []
    return run_module(module, *args, f"--profile={profile}", "--direct_num_workers=2", *extra)


def _raw_dataset(client):
    for i in range(14):
        image, mask = random_pair(i, 24 + i, 30)
        client.put_object(Bucket="seg", Key=f"raw/images/img{i:02d}.png", Body=encode(image))
        client.put_object(Bucket="seg", Key=f"raw/masks/img{i:02d}.png", Body=encode(mask))
    client.put_object(Bucket="seg", Key="raw/images/broken.png", Body=b"not a png")
    client.put_object(Bucket="seg", Key="raw/masks/broken.png", Body=encode(random_pair(99)[1]))
    client.put_object(Bucket="seg", Key="raw/images/orphan.png", Body=encode(random_pair(98)[0]))


def test_both_pipelines_in_containers_match_the_local_profile(s3, exported_model):
    url, client = s3
    _raw_dataset(client)
    upload(client, exported_model, "model")  # the containers cannot see the local copy
    before = set(_running())
    common = ["--num_classes=3", "--splits=train=0.6,val=0.2,test=0.2", *flags(url)]
    inputs = ["--images_dir=s3://seg/raw/images", "--masks_dir=s3://seg/raw/masks"]
    for profile in ("local", "container"):
        since = time.time()
        _run("pipelines.ingest", profile, *inputs, f"--output_dir=s3://seg/{profile}/data", *common)
    assert len(_started_since(since)) >= 2  # the container run's workers were containers

    # Ingest: same counts and rejects, the same records in the same shards.
    local = json.loads(read(client, "local/data/manifest.json"))
    boxed = json.loads(read(client, "container/data/manifest.json"))
    assert boxed["counts"] == local["counts"] == {"found": 16, "accepted": 14, "rejected": 2}
    assert boxed["rejects"]["by_reason"] == local["rejects"]["by_reason"]
    for split, info in local["splits"].items():
        assert boxed["splits"][split]["shards"] == info["shards"]
        for shard in info["shards"]:
            mine = records(read(client, f"local/data/{shard}"))
            theirs = records(read(client, f"container/data/{shard}"))
            assert sorted(theirs) == sorted(mine), shard
    assert sorted(read(client, "container/data/rejects.jsonl").splitlines()) == sorted(
        read(client, "local/data/rejects.jsonl").splitlines()
    )

    # Inference: byte-identical masks, the same prediction records, the same counts.
    infer = ["--model_dir=s3://seg/model", "--input_pattern=s3://seg/raw/images/*.png"]
    infer += ["--tile_size=64", "--tile_overlap=16", "--batch_size=4", *flags(url)]
    runs = {}
    for profile in ("local", "container"):
        since = time.time()
        done = _run("pipelines.infer", profile, *infer, f"--output_dir=s3://seg/{profile}/pred")
        assert "inputs 16 = predictions 15 + rejects 1" in done.stdout
        runs[profile] = done
    assert len(_started_since(since)) >= 2
    local_keys = {k.split("/", 2)[2] for k in keys(client, "local/pred/masks/")}
    boxed_keys = {k.split("/", 2)[2] for k in keys(client, "container/pred/masks/")}
    assert boxed_keys == local_keys and len(local_keys) == 15
    for key in local_keys:
        assert read(client, f"container/pred/{key}") == read(client, f"local/pred/{key}"), key

    def predictions(profile):
        rows = [
            json.loads(line)
            for key in keys(client, f"{profile}/pred/predictions-")
            for line in read(client, key).splitlines()
        ]
        return sorted((r["path"], r["class_fractions"], r["mean_confidence"]) for r in rows)

    assert predictions("container") == predictions("local")
    (ledger,) = [
        json.loads(line) for line in read(client, "container/pred/runs.jsonl").splitlines()
    ]
    assert (ledger["segmented"], ledger["rejects"]) == (15, 1)

    # The runs leave no container behind, and print nothing of Docker's on stderr.
    assert set(_running()) == before
    assert "Error response from daemon" not in runs["container"].stderr
    assert not re.search(r"^[0-9a-f]{64}$", runs["container"].stdout, re.M)  # docker kill's IDs


def test_a_worker_dying_in_its_container_fails_the_job_with_one_error(caplog):
    """Beam's FnApiRunner would wait for the dead worker (boot restarts its SDK process, which
    never answers the lost bundle); runners.watchdog fails the job with one error instead, and
    the run's containers are stopped, not left retrying."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from runners import launch, watchdog

    options = PipelineOptions(
        [
            "--runner=FnApiRunner",
            "--environment_type=DOCKER",
            f"--environment_config={IMAGE}",
            "--direct_num_workers=2",
        ]
    )
    before = set(_running())
    start = time.time()
    with pytest.raises(watchdog.WorkerDiedError, match=f"a worker container of {IMAGE} died"):
        # os._exit(3) in the worker: its SDK process ends mid-bundle (as when the kernel kills
        # it for memory). A builtin, so it unpickles in the container, which has no tests/.
        launch.execute(options, lambda p: p | beam.Create([3, 3, 3, 3]) | beam.Map(os._exit))
    assert time.time() - start < 120
    left = sorted(set(_running()) - before)
    assert left, "the failed run's containers are kept for docker logs"
    status = subprocess.run(
        [DOCKER, "inspect", "--format", "{{.State.Status}}", *left],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert set(status) == {"exited"}, status  # stopped: nothing keeps retrying the runner
    assert any("kept for `docker logs`" in r.getMessage() for r in caplog.records)
    subprocess.run([DOCKER, "rm", "--force", *left], capture_output=True, check=False)


def test_a_container_that_fails_before_its_worker_connects_fails_the_job(tmp_path):
    """A worker container whose boot fails (a --setup_file that does not install, a broken
    image) never connects; Beam would wait for it for ever. It fails the job with the
    container's last log line instead."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from runners import launch, watchdog

    broken = "localhost/segscale-test-broken-boot:latest"
    (tmp_path / "Dockerfile").write_text(
        f"FROM {IMAGE}\n"
        'ENTRYPOINT ["sh", "-c", "sleep 1; echo boot failed: nothing to run; exit 1", "boot"]\n'
    )
    subprocess.run(
        [DOCKER, "build", "--quiet", "-t", broken, str(tmp_path)],
        check=True,
        capture_output=True,
        env=dict(os.environ, DOCKER_BUILDKIT="0"),
    )
    options = PipelineOptions(
        ["--runner=FnApiRunner", "--environment_type=DOCKER", f"--environment_config={broken}"]
    )
    start = time.time()
    try:
        with pytest.raises(
            watchdog.WorkerDiedError,
            match=r"stopped \(exit status 1\); its last log line: boot failed: nothing to run",
        ):
            launch.execute(options, lambda p: p | beam.Create([1, 2]) | beam.Map(abs))
        assert time.time() - start < 60
        assert not [c for c in _running(broken) if _state(c) == "running"]
    finally:
        leftovers = _running(broken)
        if leftovers:
            subprocess.run([DOCKER, "rm", "--force", *leftovers], capture_output=True)
        subprocess.run([DOCKER, "rmi", "--force", broken], capture_output=True)


def _state(container: str) -> str:
    return subprocess.run(
        [DOCKER, "inspect", "--format", "{{.State.Status}}", container],
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_beam_leaves_its_worker_containers_behind():
    """Canary (tests/runners/test_beam_workarounds.py): Beam 2.77's DockerSdkWorkerHandler runs
    its containers without --rm and only kills them, so a plain Beam run leaves them; the day
    it does not, runners.workers need not remove them."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    from apache_beam.runners.portability.fn_api_runner.fn_runner import ExtendedProvisionInfo
    from apache_beam.transforms import environments

    options = PipelineOptions(["--environment_type=DOCKER", f"--environment_config={IMAGE}"])
    environment = environments.Environment.from_options(options.view_as(PortableOptions))
    before = set(_running())
    plain = ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo())
    runner = FnApiRunner(default_environment=environment, provision_info=plain)
    with beam.Pipeline(runner=runner, options=options) as p:
        p | beam.Create([1, 2]) | beam.Map(abs)
    left = sorted(set(_running()) - before)
    try:
        assert left, "Beam removed its containers: runners.workers need not any more"
    finally:
        subprocess.run([DOCKER, "rm", "--force", *left], capture_output=True)


def test_beams_default_provision_info_stops_a_docker_worker_at_boot():
    """Canary: the FnApiRunner's default provision info carries a placeholder retrieval token,
    under which a container's boot asks for a legacy artifact manifest that the runner does
    not serve, so the worker never starts (Beam 2.77: fn_runner.FnApiRunner.__init__, boot's
    artifact.Materialize). runners.launch.local_runner's provision info has no token."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    from apache_beam.transforms import environments

    options = PipelineOptions(["--environment_type=DOCKER", f"--environment_config={IMAGE}"])
    environment = environments.Environment.from_options(options.view_as(PortableOptions))
    before = set(_running())
    try:
        # Beam reports it one of two ways, depending on when its container watcher looks
        # (worker_handlers.py, DockerSdkWorkerHandler): before the worker connected, or after
        # boot's manifest request failed ("Method not found": the legacy GetManifest).
        with pytest.raises(
            RuntimeError, match=r"SDK failed to start|SDK exited unexpectedly.*Method not found"
        ):
            with beam.Pipeline(
                runner=FnApiRunner(default_environment=environment), options=options
            ) as p:
                p | beam.Create([1]) | beam.Map(abs)
    finally:
        left = sorted(set(_running()) - before)
        if left:
            subprocess.run([DOCKER, "rm", "--force", *left], capture_output=True)


def test_a_missing_image_is_one_line_before_anything_starts(tmp_path):
    (tmp_path / "in").mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.ingest",
            f"--images_dir={tmp_path / 'in'}",
            f"--masks_dir={tmp_path / 'in'}",
            f"--output_dir={tmp_path / 'out'}",
            "--num_classes=2",
            "--profile=container",
            "--environment_config=localhost/segscale-worker:no-such-tag",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: --environment_config localhost/segscale-worker:no-such-tag: no such image in "
        "this machine's Docker engine; build it with runners/container/build.sh (it prints the "
        "reference to pass)"
    )
