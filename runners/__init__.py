"""How to launch, never what to compute: profiles, flags, console and the local runner.

    python -m pipelines.ingest --profile local --direct_num_workers 2 ...

`profiles` merges a launch profile (profiles/*.yaml, package data: local, inprocess, portable,
flink, dataflow) under the command line; `launch` runs a pipeline's graph and turns errors into
one line and an exit code; `console` sets up logging and process exit; `local_runner` and
`worker_pool` start Beam's FnApiRunner worker processes for local runs. Nothing here knows what a
pipeline computes: `pipelines` imports `runners`, never the reverse.
"""
