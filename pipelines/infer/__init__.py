"""Bulk inference: segment every image matching a pattern (or in our shards) with an exported model.

    python -m pipelines.infer --model_dir out/model --input_pattern 'photos/**/*.jpg' \
        --output_dir out/predictions --direct_num_workers 2

Modules, in the same layers as pipelines/ingest/: `options` (our flags, no Beam), `config`
(InferOptions, the frozen InferConfig), `steps` (decode / write per element), `finalize` (run
statistics, run_summary.json, the counts check), `pipeline` (the SegmentImages composite,
run/main); and `inputs` (matched files and our shards, read safely), `handler` (the Beam
ModelHandler for model.keras and the safe-model check), `warm_start` (workers load the model
during the listing stage), `mask_files` (mask PNGs, prediction records, --skip_existing; where
masks go: pipelines/run_paths.py; the run ledger: pipelines/monitor/ledger.py). From Python:
`from pipelines.infer import pipeline as infer; infer.run([...])` (no re-exports here).
"""
