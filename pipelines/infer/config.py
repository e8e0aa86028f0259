"""The inference run's settings: Beam's view of our flags (InferOptions) and the checked, frozen
settings the graph reads (InferConfig.from_options). The options themselves are never changed.

    segscale infer --help        # the flags themselves: pipelines/infer/options.py
"""

from __future__ import annotations

import dataclasses

from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.infer import options as own_flags


class InferOptions(PipelineOptions):
    """The inference pipeline's own flags (runner flags come from --profile or Beam's options)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        own_flags.add_arguments(parser)


@dataclasses.dataclass(frozen=True)
class InferConfig:
    """The run's own settings, checked once (InferConfig.from_options); what the graph reads.
    The options themselves are never changed."""

    model_dir: str
    output_dir: str
    input_pattern: str | None
    input_tfrecords: str | None
    tile_size: int
    tile_overlap: int
    batch_size: int
    min_batch_size: int  # --min_batch_size, or --batch_size when not given
    max_pixels: int
    skip_existing: bool
    resegment_older_than: str | None  # "current": masks of other versions are made again
    save_probabilities: bool
    unsafe_model: bool
    tta: str
    runtime: str = "auto"
    precision: str = "auto"

    @classmethod
    def from_options(cls, o: InferOptions) -> InferConfig:
        """Raises ValueError naming the flag when a value cannot work."""
        if not o.model_dir or not o.output_dir:
            raise ValueError("--model_dir and --output_dir are required")
        if bool(o.input_pattern) == bool(o.input_tfrecords):
            raise ValueError("give exactly one of --input_pattern and --input_tfrecords")
        min_batch_size = o.min_batch_size or o.batch_size
        if o.batch_size < 1 or min_batch_size < 1 or min_batch_size > o.batch_size:
            raise ValueError("need 1 <= --min_batch_size <= --batch_size")
        if o.resegment_older_than and not o.skip_existing:
            raise ValueError(
                "--resegment_older_than chooses which existing masks --skip_existing keeps; "
                "add --skip_existing (without it every image is segmented anyway)"
            )
        if not 0 <= o.tile_overlap < o.tile_size:
            raise ValueError("need 0 <= --tile_overlap < --tile_size")
        return cls(
            **{
                f.name: getattr(o, f.name)
                for f in dataclasses.fields(cls)
                if f.name != "min_batch_size"
            },
            min_batch_size=min_batch_size,
        )
