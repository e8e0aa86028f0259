"""Running one function once, at the end of a pipeline, over complete side inputs.

    segscale ingest ...   # its finalize (rejects file, manifest) runs through here; infer's too

Beam has no "after the job" hook that runs on the workers on every runner. A one-element
PCollection mapped with side inputs does it: the map waits until every side input is complete,
and it runs once. Both pipelines finish that way (manifest; run summary).
"""

from __future__ import annotations

import apache_beam as beam


def run_once(pipeline, fn, *args, label: str = "Finalize"):
    """`fn(None, *args)` once, after every side input among `args` (beam.pvalue.AsList, ...)
    is complete. Returns the PCollection of its one result."""
    return pipeline | f"Once[{label}]" >> beam.Create([None]) | label >> beam.Map(fn, *args)
