"""Ingest: image/mask folders → validated, sharded TFRecords, a rejects file and a manifest.

    python -m pipelines.ingest --images_dir data/images --masks_dir data/masks \
        --output_dir out/data --num_classes 3 --direct_num_workers 2

Every input ends in a shard or in `rejects.jsonl` with a reason; the job prints
found = accepted + rejected. Runs locally on the FnApiRunner (profile `local`) and on any Beam
runner (`--profile`, or plain Beam flags such as `--runner`).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
import uuid

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipelines.fileio import check_writable, is_remote, read_bytes
from pipelines.ingest import batches, listing, pairing, shard_writer
from pipelines.ingest import options as own_flags
from pipelines.ingest.config import IngestConfig, IngestOptions, options_used
from pipelines.ingest.finalize import check_outcome, finalize, print_summary
from pipelines.ingest.steps import ListFiles, PairEncodeAndWrite
from pipelines.once import run_once
from runners.beam_workarounds import filesystem_options
from runners.launch import cli_main, execute, is_dry_run, pipeline_options, s3_settings
from segmodel.manifest import MANIFEST_NAME


class IngestDataset(beam.PTransform):
    """Folders → shards on disk. Returns {shards, listing_reports, pairing_reports}.

    Three fused stages: list (and reject unusable files), pair + encode + write pieces, merge
    pieces into shards. `temp_dir` holds the pieces (records and rejects) until the end;
    `merge_reports` over both report collections gives the counts, rejects and statistics.
    """

    def __init__(self, config: IngestConfig, temp_dir: str):
        super().__init__()
        self._config = config
        self._temp_dir = temp_dir

    def expand(self, pbegin):
        c = self._config
        tasks = [
            (role, root, task)
            for role, root in ((pairing.IMAGE, c.images_dir), (pairing.MASK, c.masks_dir))
            for task in listing.listing_tasks(root, dict(c.s3_settings))
        ]
        # Object-store listings are slow page by page: spread their tasks over the workers.
        # A local listing is a quick directory walk, cheaper in the stage it starts in.
        remote = is_remote(c.images_dir) or is_remote(c.masks_dir)
        listed = (
            pbegin
            | "ListingTasks" >> beam.Create(tasks, reshuffle=remote)
            | "ListFiles"
            >> beam.ParDo(ListFiles(c, self._temp_dir))
            # Declared, not inferred: Beam's inference reads the bytecode of process().
            .with_output_types(tuple[str, tuple[int, str, int]])
            .with_outputs("reports", main="files")
        )
        written = (
            listed.files
            | "GroupByKey" >> beam.GroupByKey()
            | "PairEncodeAndWrite"
            >> beam.ParDo(PairEncodeAndWrite(c, self._temp_dir), beam.pvalue.AsList(listed.reports))
            .with_output_types(tuple[tuple[str, int, int], shard_writer.Piece])
            .with_outputs("reports", main="pieces")
        )
        shards = (
            written.pieces
            | "GroupPieces" >> beam.GroupByKey()
            | "MergeShards"
            >> beam.Map(shard_writer.merge_shard, c.output_dir, c.compression, c.batch)
        )
        return {
            "shards": shards,
            "listing_reports": listed.reports,
            "pairing_reports": written.reports,
        }


def build_pipeline(pipeline: beam.Pipeline, config: IngestConfig, options_used: dict) -> None:
    """Wires the composite to its outputs: shards, rejects.jsonl and manifest.json."""
    temp_dir = FileSystems.join(config.output_dir, f".ingest-tmp-{uuid.uuid4().hex[:12]}")
    outputs = pipeline | "Ingest" >> IngestDataset(config, temp_dir)
    side = beam.pvalue
    run_once(
        pipeline,
        finalize,
        config,
        temp_dir,
        options_used,
        side.AsList(outputs["listing_reports"]),
        side.AsList(outputs["pairing_reports"]),
        side.AsList(outputs["shards"]),
    )


def _parse_args(argv):
    """Our own flags, checked before anything starts (--help, bad values); Beam's pass through."""
    return own_flags.help_parser().parse_known_args(argv)


def run(argv=None, test_pipeline=None) -> dict:
    """Runs the ingest pipeline; returns the manifest.

    Args:
      argv: command-line flags (ours plus Beam's).
      test_pipeline: a TestPipeline to build into instead of a new Pipeline.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    _parse_args(argv)  # --help and unknown-value errors before anything starts
    options = pipeline_options(argv)
    with filesystem_options(options):
        return _run(options, test_pipeline)


def _run(options, test_pipeline) -> dict:
    config = dataclasses.replace(
        IngestConfig.from_options(options.view_as(IngestOptions), dry_run=is_dry_run(options)),
        s3_settings=tuple(s3_settings(options).items()),
    )
    if not is_dry_run(options):  # a dry run writes nothing (and may have no credentials)
        check_writable(config.output_dir)
    start = time.time()
    used = options_used(options.view_as(IngestOptions))
    execute(options, lambda p: build_pipeline(p, config, used), test_pipeline)
    if is_dry_run(options):
        return {"dry_run": True}
    manifest = json.loads(read_bytes(FileSystems.join(config.output_dir, MANIFEST_NAME)))
    if config.batch > 1:
        batches.check_appended(manifest, config)
    print_summary(manifest, config.output_dir, time.time() - start)
    check_outcome(manifest, config)
    return manifest


def main(argv=None) -> int:
    return cli_main(run, argv)
