"""The dataset manifest: the contract between ingest (which writes it) and training.

    python -c "from segmodel.manifest import load_manifest; print(load_manifest('out/data'))"

`manifest.json` sits beside the shards. Training reads the shard list, class count, ignore label
and the normalisation statistics from it; it is written last and atomically by ingest, so a
manifest always describes a complete set of shards.
"""

from __future__ import annotations

import json

from segmodel import files
from segmodel.record_schema import SCHEMA_VERSION

MANIFEST_NAME = "manifest.json"
REJECTS_NAME = "rejects.jsonl"

FAILED = "failed"  # manifest["status"] of a dataset whose ingest failed (pipelines/ingest/gate.py)

_REQUIRED = ("schema_version", "num_classes", "ignore_label", "splits", "stats")


class ManifestError(ValueError):
    """A manifest that is missing, malformed or from an incompatible schema."""


def manifest_path(data_dir: str) -> str:
    return f"{data_dir.rstrip('/')}/{MANIFEST_NAME}"


def load_manifest(data_dir: str) -> dict:
    """Reads and checks `data_dir/manifest.json` (local or any tf.io.gfile path).

    Raises:
      ManifestError: naming the file and what is wrong with it.
    """
    path = manifest_path(data_dir)
    try:
        text = files.read_text(path)
    except FileNotFoundError:
        raise ManifestError(f"{path}: no manifest; run the ingest pipeline first") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{path}: expected a JSON object")
    missing = [k for k in _REQUIRED if k not in manifest]
    if missing:
        raise ManifestError(f"{path}: missing fields {missing}")
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise ManifestError(
            f"{path}: schema version {manifest['schema_version']}, this code reads "
            f"{SCHEMA_VERSION}; re-run ingest"
        )
    return manifest


def shard_paths(data_dir: str, manifest: dict, split: str) -> list[str]:
    """Full paths of a split's shards, as listed in the manifest (never a glob)."""
    if split not in manifest["splits"]:
        raise ManifestError(
            f"{manifest_path(data_dir)}: no split {split!r}; have {sorted(manifest['splits'])}"
        )
    return [f"{data_dir.rstrip('/')}/{name}" for name in manifest["splits"][split]["shards"]]


def check_trainable(manifest: dict, data_dir: str, allow_failed: bool = False) -> None:
    """ValueError naming the reasons when the ingest that wrote the dataset failed (unless
    `allow_failed`)."""
    if manifest.get("status") != FAILED or allow_failed:
        return
    reasons = "; ".join(manifest.get("failures") or ["no reason recorded"])
    raise ManifestError(
        f"{data_dir}: the ingest that wrote this dataset failed ({reasons}); fix the inputs "
        "and ingest again, or pass --allow_failed_dataset to train on it anyway"
    )
