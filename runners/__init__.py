"""How to launch, never what to compute: profiles, flags, console and the local runner.

    python -m pipelines.ingest --profile local --direct_num_workers 2 ...

`profiles` merges a launch profile (profiles/*.yaml, package data: local, inprocess, portable,
flink, dataflow) under the command line; `launch` runs a pipeline's graph and turns errors into
one line and an exit code, on Beam's own runners unmodified; `watchdog` turns a dying local
worker into an error instead of a hang; `console` sets up logging and process exit. Nothing here
knows what a pipeline computes: `pipelines` imports `runners`, never the reverse.
"""
