"""One asset chain per registered dataset: raw -> clean (+ blocking check) -> published.

Why a chain per dataset rather than one partitioned chain: datasets differ in format, columns,
rules, owners and rhythm, and Etalab staff want each dataset's lineage, check history and
plots on its own page. With tens of datasets the graph stays readable; each gets a group and
a job named after its slug.
"""

from __future__ import annotations

import dagster as dg

from dinum_pipelines.defs.alerts import build_failure_alert_sensor
from dinum_pipelines.defs.clean.assets import build_clean_asset
from dinum_pipelines.defs.ingest.assets import build_raw_asset
from dinum_pipelines.defs.ingest.sensors import build_frequency_schedules, build_source_change_sensor
from dinum_pipelines.defs.keys import job_name
from dinum_pipelines.defs.publish.assets import build_published_asset
from dinum_pipelines.defs.quality.checks import build_quality_check
from dinum_pipelines.lib.registry import DatasetSpec


def build_dataset_defs(registry: dict[str, DatasetSpec]) -> dg.Definitions:
    assets, checks, jobs = [], [], {}
    for slug, spec in registry.items():
        assets += [build_raw_asset(spec), build_clean_asset(spec), build_published_asset(spec)]
        checks.append(build_quality_check(spec))
        jobs[slug] = dg.define_asset_job(
            job_name(slug),
            selection=dg.AssetSelection.groups(slug),
            description=f"Pull, clean, check and publish {spec.title}.",
        )
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=list(jobs.values()),
        sensors=[build_source_change_sensor(registry, list(jobs.values())), build_failure_alert_sensor(registry)],
        schedules=build_frequency_schedules(registry, jobs),
    )
