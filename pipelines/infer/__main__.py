"""`python -m pipelines.infer` (--help answers without importing Beam)."""

from runners.console import run_pipeline

run_pipeline("pipelines.infer")
