"""Bulk inference: segment every image matching a pattern (or in our shards) with an exported model.

    python -m pipelines.infer --model_dir out/model --input_pattern 'photos/**/*.jpg' \
        --output_dir out/predictions --direct_num_workers 2

Outputs under --output_dir:
  masks/<relative path>.png         class indices, with a palette so they can be viewed; the
                                    model version and mean confidence sit in PNG text chunks
  probabilities/<relative path>.npy per-class probabilities, float16 (--save_probabilities)
  predictions-*.jsonl               path, size, class pixel fractions, mean confidence, version
  rejects-*.jsonl                   unreadable, corrupt or oversize inputs, with the reason
  run_summary.json                  counts (inputs = predictions + rejects), version, duration,
                                    and the statistics of the images segmented in this run
  runs.jsonl                        the run ledger: one such record per finished run
                                    (`segscale runs`, `segscale drift`, `segscale review`)

Masks are written atomically (temporary file, then rename). With --skip_existing, images that
already have a mask are not recomputed (their prediction record, with the model version that
made the mask, is read back from it), so a nightly run over a growing folder only does the new
work, and a rerun after a crash completes the rest with one record per image. After a new model
is promoted, --resegment_older_than current makes the masks of earlier versions again; the run
summary counts the masks by the model version that made them.
"""

from __future__ import annotations

import json
import sys
import time

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

from pipelines.fileio import check_writable, read_bytes
from pipelines.infer import options as own_flags
from pipelines.infer.config import InferConfig, InferOptions
from pipelines.infer.finalize import SUMMARY_NAME, SummarizeRun, check_counts, finalize
from pipelines.infer.forms import FormRequest
from pipelines.infer.handler import KerasSegmentationHandler, check_model_is_safe
from pipelines.infer.inputs import check_matches, read_matched, read_tfrecord_file
from pipelines.infer.steps import DecodeInputs, WriteOutputs, failed_batch_rejects
from pipelines.infer.warm_start import WarmWorkers
from pipelines.model_files import local_model_dir
from pipelines.monitor.ledger import append_run, new_run_id, run_line
from pipelines.once import run_once
from pipelines.run_paths import pattern_root
from runners.beam_workarounds import filesystem_options
from runners.launch import cli_main, execute, is_dry_run, pipeline_options


class SegmentImages(beam.PTransform):
    """(relative path, encoded bytes) → {predictions: records, rejects: Rejects}."""

    def __init__(self, metadata: dict, config: InferConfig, handler=None, run_id=None, form=None):
        super().__init__()
        self._metadata = metadata
        self._config = config
        self._handler = handler  # tests inject a faulty one
        self._run_id = run_id  # the model may be preloaded for it (warm_start)
        self._form = form or FormRequest(config.runtime, config.precision)

    def expand(self, inputs):
        o = self._config
        decoded = inputs | "Decode" >> beam.ParDo(
            DecodeInputs(
                self._metadata,
                o.output_dir,
                o.max_pixels,
                o.skip_existing,
                any_version=o.resegment_older_than is None,
            )
        ).with_outputs("rejects", "skipped", main="images")
        handler = KeyedModelHandler(
            self._handler
            or KerasSegmentationHandler(
                o.model_dir,
                tile_size=o.tile_size,
                tile_overlap=o.tile_overlap,
                min_batch_size=o.min_batch_size,
                max_batch_size=o.batch_size,
                unsafe=o.unsafe_model,
                tta=o.tta,
                preloaded_by=self._run_id,
                form=self._form,
            )
        )
        # A batch whose inference raises becomes rejects (one per image), not a failed job.
        predicted, failed = decoded.images | "Predict" >> RunInference(
            handler
        ).with_exception_handling(use_subprocess=False)
        written = predicted | "WriteOutputs" >> beam.ParDo(
            WriteOutputs(self._metadata, o.output_dir, o.save_probabilities)
        )
        inference_rejects = failed.failed_inferences | "FailedToRejects" >> beam.FlatMap(
            failed_batch_rejects
        )
        predictions = (written, decoded.skipped) | "AllPredictions" >> beam.Flatten()
        rejects = (decoded.rejects, inference_rejects) | "SegmentRejects" >> beam.Flatten()
        return {"predictions": predictions, "rejects": rejects}


@beam.ptransform_fn
def WriteJsonLines(records, prefix: str):  # noqa: N802  (Beam names composites in CamelCase)
    """dicts → `prefix-SSSSS-of-NNNNN.jsonl`; returns the written file names."""
    return (
        records
        | "ToJson" >> beam.Map(lambda r: json.dumps(r, ensure_ascii=False))
        | "Write"
        >> beam.io.WriteToText(
            prefix,
            file_name_suffix=".jsonl",
            compression_type=CompressionTypes.UNCOMPRESSED,
            # No empty file for an empty set (a run without rejects): Beam's S3 writer cannot
            # create a zero-byte object (pipelines.fileio.create_empty).
            skip_if_empty=True,
        )
    )


def build_pipeline(pipeline, config: InferConfig, metadata: dict, run: dict):
    o = config
    # In the listing stage, which the FnApiRunner sets up on every worker process: the model
    # loads there while the listing and the reshuffle run (warm_start).
    form = FormRequest(o.runtime, o.precision, run["form"]["threads"])
    warm = "WarmWorkers" >> beam.ParDo(
        WarmWorkers(run["run_id"], o.model_dir, o.unsafe_model, form)
    )
    if o.input_pattern:
        root = pattern_root(o.input_pattern)
        matched = pipeline | "Match" >> fileio.MatchFiles(o.input_pattern) | warm
        inputs_count = matched | "CountInputs" >> beam.combiners.Count.Globally()
        read = (
            matched
            # Without this the listing, reading and the model would fuse into one stage fed by
            # a single element, and run on one worker. File metadata is small to shuffle.
            | "Distribute" >> beam.Reshuffle()
            | "ReadMatches" >> fileio.ReadMatches()
            | "Read" >> beam.FlatMap(read_matched, root).with_outputs("rejects", main="files")
        )
        files, read_rejects = read.files, read.rejects
    else:
        read = (
            pipeline
            | "MatchShards" >> fileio.MatchFiles(o.input_tfrecords)
            | warm
            | "DistributeShards" >> beam.Reshuffle()
            | "ReadShards" >> beam.FlatMap(read_tfrecord_file).with_outputs("rejects", main="files")
        )
        files, read_rejects = read.files, read.rejects
        inputs_count = (
            (files, read_rejects)
            | "FlattenRead" >> beam.Flatten()
            | "CountInputs" >> beam.combiners.Count.Globally()
        )
    segmented = files | "Segment" >> SegmentImages(metadata, o, run_id=run["run_id"], form=form)
    rejects = (read_rejects, segmented["rejects"]) | "AllRejects" >> beam.Flatten()
    predictions = segmented["predictions"]
    out = o.output_dir.rstrip("/")
    prediction_files = predictions | "WritePredictions" >> WriteJsonLines(f"{out}/predictions")
    reject_files = (
        rejects
        | "RejectsToDicts" >> beam.Map(lambda r: r.to_json_dict())
        | "WriteRejects" >> WriteJsonLines(f"{out}/rejects")
    )
    side = beam.pvalue
    run_once(
        pipeline,
        finalize,
        out,
        metadata,
        run,
        side.AsSingleton(inputs_count),
        side.AsList(prediction_files),
        side.AsList(reject_files),
        side.AsDict(
            rejects
            | "RejectReasons" >> beam.Map(lambda r: r.reason)
            | "CountReasons" >> beam.combiners.Count.PerElement()
        ),
        side.AsSingleton(predictions | "RunStats" >> beam.CombineGlobally(SummarizeRun())),
        side.AsDict(
            predictions
            | "MaskVersions" >> beam.Map(lambda r: r["model_version"])
            | "CountVersions" >> beam.combiners.Count.PerElement()
        ),
    )


def form_of_run(o: InferConfig) -> dict:
    """The form the run asked for and the one the launcher's CPU gets (workers choose on their
    own CPU, by the same rule: segmodel/runtimes.choose); said in one line, and in the ledger.
    """
    from pipelines.infer.forms import chosen
    from pipelines.model_files import local_model_dir

    # Threads: OpenVINO's own choice in every worker (0). Measured here (2 cores, 2 local
    # workers, 300 images of 256²): its default 18.8-19.8 s, one thread each (a worker's share
    # of the cores) 30.8 s, one worker with 2 threads 22.4 s (docs/benchmarks.md): the two
    # workers' shares of the input are not even, and a worker with one thread leaves a core
    # idle when the other is done.
    threads = 0
    request = FormRequest(o.runtime, o.precision, threads)
    runtime, precision, why = chosen(local_model_dir(o.model_dir), request)
    print(f"Runtime: {runtime} {precision} ({why})", flush=True)
    return {
        "runtime": runtime,
        "precision": precision,
        "why": why,
        "asked": {"runtime": o.runtime, "precision": o.precision},
        "threads": threads,
    }


def _parse_args(argv):
    """Our own flags, checked before anything starts (--help, bad values); Beam's pass through."""
    return own_flags.help_parser().parse_known_args(argv)


def run(argv=None, test_pipeline=None) -> dict:
    """Runs bulk inference; returns the run summary."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _parse_args(argv)
    options = pipeline_options(argv)
    with filesystem_options(options):
        return _run(options, test_pipeline)


def _run(options, test_pipeline) -> dict:
    from segmodel.saving import load_metadata

    o = InferConfig.from_options(options.view_as(InferOptions))
    metadata = load_metadata(local_model_dir(o.model_dir))
    check_model_is_safe(o.model_dir, o.unsafe_model)
    if not is_dry_run(options):  # a dry run writes nothing (and may have no credentials)
        check_writable(o.output_dir)
        # Before any runner starts (15-18 s on the local one), and before a ledger record.
        if o.input_pattern:
            check_matches(o.input_pattern, "--input_pattern")
        else:
            check_matches(o.input_tfrecords, "--input_tfrecords")
    metadata = {
        **{k: metadata[k] for k in ("model_version", "num_classes", "normalization", "channels")},
        "bit_depth": metadata.get("bit_depth", 8),  # exports before it was recorded: 8-bit
        "bands": metadata.get("bands", False),
        "class_names": metadata.get("class_names"),
    }
    run = {
        "run_id": new_run_id(),
        "start": time.time(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model_dir": o.model_dir,
        "input": o.input_pattern or o.input_tfrecords,
        "input_kind": "files" if o.input_pattern else "tfrecords",
        "tta": o.tta,
        "tiling": {"tile_size": o.tile_size, "tile_overlap": o.tile_overlap},
        "form": form_of_run(o),
    }
    execute(options, lambda p: build_pipeline(p, o, metadata, run), test_pipeline)
    if is_dry_run(options):
        return {"dry_run": True}
    summary = json.loads(read_bytes(FileSystems.join(o.output_dir, SUMMARY_NAME)))
    check_counts(summary, o.output_dir)
    if summary["inputs"] == 0:  # the files went away since the check above: no run to record
        source = (
            f"--input_pattern {o.input_pattern}"
            if o.input_pattern
            else (f"--input_tfrecords {o.input_tfrecords}")
        )
        raise ValueError(f"{source} matches no file any more; check the path and the glob")
    # The ledger record last, and only for a run whose counts add up: a crashed or killed run
    # leaves none, and its rerun adds one.
    append_run(o.output_dir, summary)
    print(
        f"Inference finished in {summary['duration_s']:.1f}s: inputs {summary['inputs']} = "
        f"predictions {summary['predictions']} + rejects {summary['rejects']}"
        f"; model {summary['model_version']}; outputs in {o.output_dir}"
    )
    print(run_line(summary))
    skipped = summary.get("skipped", 0)
    if skipped and skipped == summary["predictions"] and not summary["rejects"]:
        print(f"Nothing new: {skipped} skipped (already segmented)")
    return summary


def main(argv=None) -> int:
    return cli_main(run, argv)
