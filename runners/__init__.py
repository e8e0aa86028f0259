"""How to launch, never what to compute: profiles, flags, console and the local runner.

    python -m pipelines.ingest --profile local --direct_num_workers 2 ...

`profiles` merges a launch profile (profiles/*.yaml, package data: local, inprocess, container,
portable, flink, dataflow) under the command line; `launch` runs a pipeline's graph and turns
errors into one line and an exit code, on Beam's own runners unmodified; `watchdog` turns a
dying local worker into an error instead of a hang; `workers` checks workers that run outside
the launcher (a Docker image, a worker pool) and cleans up their containers; `flags` rejects
unknown flags; `console` sets up logging and process exit. `container/` builds the worker
image. Nothing here
knows what a pipeline computes: `pipelines` imports `runners`, never the reverse.
"""
