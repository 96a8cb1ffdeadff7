"""The code location: every registered dataset's assets, checks and jobs, plus the resources.

`DINUM_SOURCES_DIR` points at another registry folder (tests, or a deployment's own); by
default the package's `sources/` is used. A bad registry file stops the load with a message
naming the file and the field.
"""

from __future__ import annotations

import os

import dagster as dg

from dinum_pipelines.defs.datasets import build_dataset_defs
from dinum_pipelines.defs.metrics import build_metrics_defs
from dinum_pipelines.defs.resources import default_resources
from dinum_pipelines.lib.declare.registry import load_registry


def build_definitions(sources_dir: str | None = None) -> dg.Definitions:
    registry = load_registry(sources_dir or os.environ.get("DINUM_SOURCES_DIR"))
    return dg.Definitions.merge(
        build_dataset_defs(registry), build_metrics_defs(), dg.Definitions(resources=default_resources())
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
