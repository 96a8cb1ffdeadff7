"""Dagster objects only: thin wrappers that call `dinum_pipelines.lib` and report to Dagster."""
