"""Ingest: image/mask folders → validated, sharded TFRecords, a rejects file and a manifest.

    python -m pipelines.ingest --images_dir data/images --masks_dir data/masks \
        --output_dir out/data --num_classes 3 --direct_num_workers 2

Modules, in the same layers as pipelines/infer/: `options` (our flags, no Beam: fast --help),
`config` (IngestOptions, the frozen IngestConfig), `steps` (the per-element DoFns: list, then
pair + encode + write pieces), `finalize` (rejects file, manifest, summary, advice), `pipeline`
(the IngestDataset composite, run/main); and the pure parts they use: `listing`
(walking the input folders), `pairing` (image ↔ mask by relative name, the split), `masks`
(mask modes → class indices), `pair_encoding` (one pair → validated record + statistics),
`batches` (--append: a batch's shards, key index, superseded labels, manifest versions),
`shard_writer` (per-bundle pieces → atomically assembled shards), `dataset_stats` and
`bundle_report` (counts, rejects and statistics merged at the end). `pairing`, `masks`,
`pair_encoding` and `bundle_report` import no Beam; `listing`, `shard_writer` and `dataset_stats` use
Beam's filesystems and combiners. From Python: `from pipelines.ingest import pipeline as
ingest; ingest.run([...])` (no re-exports here: importing a pure module imports nothing else).
"""
