"""The inference graph's per-element steps: decode an input to the model's input (or skip it
when this model version already segmented it), and write a prediction's mask and record.
The prediction itself is Beam's RunInference with our handler (pipelines/infer/handler.py).

    segscale infer ...           # the graph that wires these: pipelines/infer/pipeline.py
"""

from __future__ import annotations

import io

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from pipelines.fileio import write_atomically
from pipelines.image_io import DEFAULT_MAX_PIXELS, ImageError, read_image
from pipelines.infer.mask_files import encode_mask, existing_record, prediction_record
from pipelines.progress import Progress
from pipelines.rejects import Reject
from pipelines.run_paths import geo_mask_path, mask_path
from pipelines.tiff_io import geotiff_mask
from pipelines.worker_exit import freeze_at_exit
from segmodel.prediction_stats import file_kind, image_stats, top_class

NAMESPACE = "infer"


class DecodeInputs(beam.DoFn):
    """(relative path, bytes) → ((relative path, file channels, file bit depth), normalised
    image) | rejects | skipped records."""

    def __init__(
        self,
        metadata: dict,
        output_dir: str,
        max_pixels: int,
        skip_existing: bool,
        any_version: bool = True,
    ):
        self._metadata = metadata
        self._output_dir = output_dir
        self._max_pixels = max_pixels
        self._skip_existing = skip_existing
        self._any_version = any_version

    def setup(self):
        freeze_at_exit()

    def process(self, element):
        relative, data = element
        if self._skip_existing:
            record = existing_record(relative, self._output_dir, self._metadata, self._any_version)
            if record is not None:
                Metrics.counter(NAMESPACE, "skipped").inc()
                yield beam.pvalue.TaggedOutput("skipped", record)
                return
        try:
            decoded, model_input = decode_for_model(data, self._metadata, self._max_pixels)
        except ImageError as e:
            Metrics.counter(NAMESPACE, f"rejected_{e.reason}").inc()
            yield beam.pvalue.TaggedOutput("rejects", Reject(e.reason, str(e), relative, relative))
            return
        geo = tuple(sorted(decoded.geo.items())) if decoded.geo else ()
        yield (relative, *file_kind(decoded.array), geo), model_input


def decode_for_model(data: bytes, metadata: dict, max_pixels: int = DEFAULT_MAX_PIXELS):
    """An input file's bytes → (the DecodedImage, the model's input) by the one decoder and
    the one model-input path, with the export's contract (channels or bands, bit depth,
    normalisation). Raises ImageError (a reject): a file the model cannot take, named."""
    from segmodel.contract import ModelContract
    from segmodel.preprocessing import model_input_np

    decoded = read_image(data, max_pixels=max_pixels)
    inputs = ModelContract.from_metadata(metadata).inputs
    problem = inputs.accepts(decoded.channels, decoded.bit_depth, decoded.bands)
    if problem:
        raise ImageError("not_the_model_input", problem)
    return decoded, model_input_np(
        decoded.array, inputs.channels, inputs.bit_depth, inputs.mean, inputs.std, inputs.bands
    )


class WriteOutputs(beam.DoFn):
    """(key, PredictionResult) → mask (+ probabilities) on disk, and its record (with the
    image's statistics for the run ledger)."""

    def __init__(self, metadata: dict, output_dir: str, save_probabilities: bool):
        self._metadata = metadata
        self._output_dir = output_dir
        self._save_probabilities = save_probabilities

    def setup(self):
        freeze_at_exit()
        self._progress = Progress("infer", "images")

    def process(self, element):
        (relative, file_channels, file_bit_depth, geo), result = element
        probs = result.inference
        classes, confidence = top_class(probs)
        stats = image_stats(probs, result.example, file_channels, file_bit_depth, confidence)
        version = self._metadata["model_version"]
        if self._save_probabilities:
            buffer = io.BytesIO()
            np.save(buffer, probs.astype(np.float16))
            write_atomically(
                f"{self._output_dir.rstrip('/')}/probabilities/{relative}.npy", buffer.getvalue()
            )
        if geo:  # a GeoTIFF input: its mask as a GeoTIFF too, for GIS tools
            write_atomically(
                geo_mask_path(self._output_dir, relative), geotiff_mask(classes, dict(geo))
            )
        # The mask last: its presence (with this version) is what --skip_existing trusts.
        write_atomically(
            mask_path(self._output_dir, relative),
            encode_mask(
                classes,
                self._metadata["num_classes"],
                {
                    "model_version": version,
                    "mean_confidence": f"{stats['mean_confidence']:.6f}",
                    "uncertain_fraction": f"{stats['uncertain_fraction']:.6f}",
                },
            ),
        )
        Metrics.counter(NAMESPACE, "segmented").inc()
        self._progress.add()
        yield {
            **prediction_record(
                relative, classes, self._metadata["num_classes"], stats["mean_confidence"], version
            ),
            **stats,
        }


def failed_batch_rejects(failure):
    """RunInference's (batch, exception) → one Reject per image of the batch."""
    batch, error = failure
    for (relative, *_), _ in batch:
        Metrics.counter(NAMESPACE, "rejected_inference_failed").inc()
        yield Reject(
            "inference_failed", f"{type(error).__name__}: {str(error)[:200]}", relative, relative
        )
