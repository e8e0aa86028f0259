"""Shared fixtures: small image/mask folders made on the fly, and the no-network guards."""

from __future__ import annotations

import os

import pytest

from segmodel import sample_data

TRAINS = "trained_run"  # the session's one training run; exported_model builds on it


def pytest_collection_modifyitems(items):
    """The quick loop (-m "not slow") trains nothing: every test that needs the trained
    fixture, directly or through another fixture, is slow."""
    for item in items:
        if TRAINS in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _cpu_without_bf16_units(monkeypatch):
    """The default plan trains in mixed bfloat16 on CPUs with bfloat16 units and in float32 on
    others; tests see the same plan on every host: float32, unless a test pins otherwise."""
    from segmodel import plan, train

    monkeypatch.setattr(plan, "cpu_has_bf16", lambda cpuinfo="/proc/cpuinfo": False)
    monkeypatch.setattr(train, "cpu_has_bf16", lambda cpuinfo="/proc/cpuinfo": False)


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory):
    """40 synthetic 3-class pairs of varied sizes in nested folders (read-only for tests)."""
    root = tmp_path_factory.mktemp("synthetic")
    sample_data.write_dataset(str(root), 40, num_classes=3, size=(48, 48), vary_size=True, seed=1)
    return root


# pytest-socket closes sockets in this process only; the pipelines that tests start as
# subprocesses (and their workers) would still reach the network. Every HTTP client they use
# (botocore, google-auth, urllib, requests; gRPC too) honours these: anything that is not
# loopback goes to a proxy on a closed loopback port and fails at once, with no DNS lookup.
# The cloud SDKs' metadata servers are pointed at the same closed port.
CLOSED = "http://127.0.0.1:9"
NETWORK_GUARD = {
    **{name: CLOSED for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")},
    **{name: "127.0.0.1,localhost,::1" for name in ("NO_PROXY", "no_proxy")},
    "AWS_EC2_METADATA_DISABLED": "true",
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
}


@pytest.fixture(autouse=True, scope="session")
def _subprocesses_stay_on_loopback():
    previous = {name: os.environ.get(name) for name in NETWORK_GUARD}
    os.environ.update(NETWORK_GUARD)
    yield
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True, scope="session")
def _no_prism_download():
    """Beam's DirectRunner downloads Prism into ~/.apache_beam; fail if anything tried."""
    prism = os.path.expanduser("~/.apache_beam/cache/prism")
    existed = os.path.exists(prism)
    yield
    assert existed or not os.path.exists(prism), f"a test tried to download Prism: {prism}"


@pytest.fixture(scope="session")
def ingested_dir(synthetic_dir, tmp_path_factory):
    """synthetic_dir run through the ingest pipeline (in-process runner), once per session."""
    from pipelines.ingest import pipeline as ingest

    out = tmp_path_factory.mktemp("ingested")
    ingest.run(
        [
            f"--images_dir={synthetic_dir / 'images'}",
            f"--masks_dir={synthetic_dir / 'masks'}",
            f"--output_dir={out}",
            "--num_classes=3",
            "--splits=train=0.7,val=0.15,test=0.15",
            "--profile=inprocess",
        ]
    )
    return out


@pytest.fixture(scope="session")
def trained_run(ingested_dir, tmp_path_factory):
    """A smoke-preset run trained on ingested_dir: (workdir, final state)."""
    from segmodel import train

    workdir = tmp_path_factory.mktemp("run")
    overrides = ["train.epochs=4", "train.steps_per_epoch=6", "train.learning_rate=0.01"]
    state = train.train(str(ingested_dir), str(workdir), "smoke", overrides, verbose=0)
    return workdir, state


@pytest.fixture(scope="session")
def exported_model(trained_run, tmp_path_factory):
    """trained_run exported: the folder bulk inference takes as --model_dir."""
    from segmodel import export

    out = tmp_path_factory.mktemp("export") / "model"
    export.export(str(trained_run[0]), str(out))
    return out
