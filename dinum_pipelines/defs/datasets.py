"""One asset chain per registered dataset: raw -> clean (+ blocking check) -> published.

Why a chain per dataset rather than one partitioned chain: datasets differ in format, columns,
rules, owners and rhythm, and Etalab staff want each dataset's lineage, check history and
plots on its own page. With tens of datasets the graph stays readable; each gets a group and
a job named after its slug.
"""

from __future__ import annotations

import dagster as dg

from dinum_pipelines.defs.alerts import build_failure_alert_sensor
from dinum_pipelines.defs.automation import build_automation_sensors, run_tags
from dinum_pipelines.defs.clean.assets import build_clean_asset
from dinum_pipelines.defs.deployment import dataset_job_options
from dinum_pipelines.defs.ingest.assets import build_raw_asset
from dinum_pipelines.defs.ingest.sensors import build_source_change_sensor
from dinum_pipelines.defs.keys import job_name
from dinum_pipelines.defs.monitoring.data_docs import DATA_DOCS_KEY, build_data_docs_asset
from dinum_pipelines.defs.monitoring.freshness import build_freshness_alert_sensor
from dinum_pipelines.defs.monitoring.quality_report import (
    QUALITY_REPORT_KEY,
    build_quality_report_asset,
    build_quality_report_sensor,
)
from dinum_pipelines.defs.publish.assets import build_published_asset
from dinum_pipelines.defs.quality.checks import build_quality_check
from dinum_pipelines.lib.declare.registry import DatasetSpec

QUALITY_REPORT_JOB = "quality_report_job"


def build_dataset_defs(registry: dict[str, DatasetSpec]) -> dg.Definitions:
    assets, checks, jobs = [], [], {}
    options = dataset_job_options()
    for slug, spec in registry.items():
        assets += [build_raw_asset(spec), build_clean_asset(spec), build_published_asset(spec)]
        checks.append(build_quality_check(spec))
        jobs[slug] = dg.define_asset_job(
            job_name(slug),
            selection=dg.AssetSelection.groups(slug),
            description=f"Pull, clean, check and publish {spec.title}.",
            # The run queue limits runs per administration by this tag (the instance's dagster.yaml).
            tags=run_tags(spec),
            **options,
        )
    check_keys = [key for check in checks for key in check.check_keys]
    report_job = dg.define_asset_job(
        QUALITY_REPORT_JOB,
        selection=[QUALITY_REPORT_KEY, DATA_DOCS_KEY],
        description="Publish every dataset's quality history and rebuild the Data Docs.",
    )
    return dg.Definitions(
        assets=[*assets, build_quality_report_asset(registry, check_keys), build_data_docs_asset(registry)],
        asset_checks=checks,
        jobs=[*jobs.values(), report_job],
        sensors=[
            build_source_change_sensor(registry, list(jobs.values())),
            build_failure_alert_sensor(registry),
            build_freshness_alert_sensor(registry),
            build_quality_report_sensor(report_job, check_keys),
            *build_automation_sensors(registry),
        ],
    )
