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


def build_chain_defs(spec: DatasetSpec) -> dg.Definitions:
    """One dataset's chain, its blocking check and its job: what its Dataset component builds."""
    job = dg.define_asset_job(
        job_name(spec.slug),
        selection=dg.AssetSelection.groups(spec.slug),
        description=f"Pull, clean, check and publish {spec.title}.",
        # The run queue limits runs per administration by this tag (the instance's dagster.yaml).
        tags=run_tags(spec),
        **dataset_job_options(),
    )
    return dg.Definitions(
        assets=[build_raw_asset(spec), build_clean_asset(spec), build_published_asset(spec)],
        asset_checks=[build_quality_check(spec)],
        jobs=[job],
    )


def build_registry_wide_defs(registry: dict[str, DatasetSpec], chains: dg.Definitions) -> dg.Definitions:
    """What watches every dataset at once: the quality report, Data Docs and sensors.

    `chains` holds every dataset's chain (their components' definitions): the sensors target
    those very jobs, and the quality report follows those checks.
    """
    jobs = list(chains.jobs or [])
    check_keys = [key for check in chains.asset_checks or [] for key in check.check_keys]
    report_job = dg.define_asset_job(
        QUALITY_REPORT_JOB,
        selection=[QUALITY_REPORT_KEY, DATA_DOCS_KEY],
        description="Publish every dataset's quality history and rebuild the Data Docs.",
    )
    return dg.Definitions(
        assets=[build_quality_report_asset(registry, check_keys), build_data_docs_asset(registry)],
        jobs=[report_job],
        sensors=[
            build_source_change_sensor(registry, jobs),
            build_failure_alert_sensor(registry),
            build_freshness_alert_sensor(registry),
            build_quality_report_sensor(report_job, check_keys),
            *build_automation_sensors(registry),
        ],
    )


def build_dataset_defs(registry: dict[str, DatasetSpec]) -> dg.Definitions:
    """Every dataset's chain and what watches them all, from a registry read outside the component tree."""
    chains = dg.Definitions.merge(*(build_chain_defs(spec) for spec in registry.values()))
    return dg.Definitions.merge(chains, build_registry_wide_defs(registry, chains))
