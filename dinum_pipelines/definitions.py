"""The code location: every registered dataset's assets, checks and jobs, plus the resources.

The datasets are Dagster components: each `defs/datasets/<slug>/defs.yaml` is a `Dataset`
component that builds its own chain; what watches them all (sensors, quality report, Data Docs)
is built here from the loaded components. `DINUM_SOURCES_DIR` points at another registry folder
(tests, or a deployment's own), read by the same parser and built by the same builders. A bad
registry file stops the load with a message naming the file and the field.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import dagster as dg

from dinum_pipelines.components.dataset import Dataset
from dinum_pipelines.defs.chains import build_dataset_defs, build_registry_wide_defs
from dinum_pipelines.defs.metrics import build_metrics_defs
from dinum_pipelines.defs.resources import default_resources
from dinum_pipelines.lib.declare.registry import load_registry

DATASETS_MODULE = "dinum_pipelines.defs.datasets"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def build_component_dataset_defs() -> dg.Definitions:
    """The package's datasets, loaded as Dagster loads components from their defs folder."""
    tree = dg.ComponentTree.from_module(defs_module=importlib.import_module(DATASETS_MODULE), project_root=PROJECT_ROOT)
    chains = tree.build_defs()
    registry = {component.spec.slug: component.spec for component in tree.get_all_components(of_type=Dataset)}
    return dg.Definitions.merge(chains, build_registry_wide_defs(registry, chains))


def build_definitions(sources_dir: str | None = None) -> dg.Definitions:
    folder = sources_dir or os.environ.get("DINUM_SOURCES_DIR")
    datasets = build_dataset_defs(load_registry(folder)) if folder else build_component_dataset_defs()
    return dg.Definitions.merge(datasets, build_metrics_defs(), dg.Definitions(resources=default_resources()))


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
