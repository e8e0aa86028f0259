"""Bulk inference: segment every image matching a pattern (or in our shards) with an exported model.

    python -m pipelines.infer --model_dir out/model --input_pattern 'photos/**/*.jpg' \
        --output_dir out/predictions --direct_num_workers 2

Modules: `pipeline` (options, the SegmentImages composite, run/main), `inputs` (matched files
and our shards, read safely), `handler` (the Beam ModelHandler for model.keras and the
safe-model check), `outputs` (mask PNGs, prediction records, --skip_existing). `run`, `main` and
the pipeline's names are loaded on first use.
"""

from __future__ import annotations

import importlib

_PIPELINE_API = ("run", "main", "SegmentImages", "InferOptions", "check_counts")


def __getattr__(name: str):
    # Lazy: importing the pure modules (`from pipelines.infer import ...`) must not pull in
    # Beam; `infer.run(...)`, `infer.main(...)` and the pipeline's classes load it on first use.
    if name not in _PIPELINE_API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.pipeline"), name)
