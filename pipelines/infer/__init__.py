"""Bulk inference: segment every image matching a pattern (or in our shards) with an exported model.

    python -m pipelines.infer --model_dir out/model --input_pattern 'photos/**/*.jpg' \
        --output_dir out/predictions --direct_num_workers 2

Modules: `pipeline` (options, the SegmentImages composite, run/main), `inputs` (matched files
and our shards, read safely), `handler` (the Beam ModelHandler for model.keras and the
safe-model check), `mask_files` (mask PNGs, prediction records, --skip_existing; where masks
go: pipelines/run_paths.py; the run ledger: pipelines/monitor/ledger.py). From Python:
`from pipelines.infer import pipeline as infer; infer.run([...])` (no re-exports here).
"""
