"""Ingest: image/mask folders → validated, sharded TFRecords, a rejects file and a manifest.

    python -m pipelines.ingest --images_dir data/images --masks_dir data/masks \
        --output_dir out/data --num_classes 3 --direct_num_workers 2

Modules: `pipeline` (options, the IngestDataset composite, manifest, run/main), `listing`
(walking the input folders), `pairing` (image ↔ mask by relative name, the split), `masks`
(mask modes → class indices), `records` (one pair → validated record + statistics),
`shard_writer` (per-bundle pieces → atomically assembled shards), `dataset_stats` and
`bundle_report` (counts, rejects and statistics merged at the end). `pairing`, `masks`,
`records` and `bundle_report` import no Beam; `listing`, `shard_writer` and `dataset_stats` use
Beam's filesystems and combiners; `run`, `main` and the pipeline's classes are loaded on first
use.
"""

from __future__ import annotations

import importlib

_PIPELINE_API = ("run", "main", "IngestConfig", "IngestDataset", "IngestOptions", "check_outcome")


def __getattr__(name: str):
    # Lazy: importing the pure modules (`from pipelines.ingest import ...`) must not pull in
    # Beam; `ingest.run(...)`, `ingest.main(...)` and the pipeline's classes load it on first use.
    if name not in _PIPELINE_API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.pipeline"), name)
