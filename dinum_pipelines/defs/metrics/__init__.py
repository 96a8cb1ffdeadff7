"""Usage metrics: the catalog's access log, counted per day, rolled up, published and pushed back."""

from dinum_pipelines.defs.metrics.assets import build_metrics_defs

__all__ = ["build_metrics_defs"]
