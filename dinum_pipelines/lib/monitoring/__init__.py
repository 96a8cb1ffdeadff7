"""Watching the pipeline run: alerts to a webhook and the one rule of lateness (freshness)."""
