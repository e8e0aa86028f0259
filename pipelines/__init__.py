"""Beam pipelines: dataset ingest and bulk inference."""
