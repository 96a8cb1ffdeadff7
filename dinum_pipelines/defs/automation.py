"""When the datasets' assets run without anyone clicking, the Dagster way: automation conditions.

Each dataset's chain is declared rather than scheduled:

- the raw download on a cron from the dataset's udata frequency (Europe/Paris), where there was
  a hand-made schedule per dataset; frequencies with no rhythm have none (the source-change
  sensor, a conditional HEAD Dagster has no equivalent for, covers every dataset);
- cleaning and its quality check when its raw file changed, publication when its clean table
  changed and every blocking check upstream passed (`all_deps_blocking_checks_passed`): a table
  whose last check failed is not published by a later tick. With dagster 1.13 the publication is
  requested by the tick after the check passed, not in the cleaning's run (dinum_pipelines_tests/defs/
  test_automation.py); a run of the dataset's job (the source sensor's) still does all in one.

One automation sensor per administration evaluates its datasets, so that the runs it launches
carry the `dinum/organization` tag the run queue limits (dagster.yaml `tag_concurrency_limits`),
and the run-retry tags. They are off by default, as the schedules were: a deployment turns them on.

Retries at two levels: a failed download step is tried again with exponential backoff and
jitter (an administration's server down for a few minutes), unless the failure is permanent
(a 404, a file over the limit: `dg.Failure(allow_retries=False)`); a run whose process died is
launched again by the daemon (`run_retries` in dagster.yaml), but not a run whose step failed,
such as a publication a quality check refused: retrying that would only refuse it again.
"""

from __future__ import annotations

import re

import dagster as dg

from dinum_pipelines.lib.monitoring.freshness import cron_for_frequency
from dinum_pipelines.lib.declare.registry import DatasetSpec

TIMEZONE = "Europe/Paris"
ORGANIZATION_TAG = "dinum/organization"
# A download step: 3 more tries after 30 s, 60 s and 120 s, each ±50 %, so that datasets of one
# administration failing together do not all come back at the same second.
DOWNLOAD_RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
# Run retries (the daemon's `run_retries`, enabled in the instance's dagster.yaml): twice, only for
# a run that died without a step failing (its process or machine lost).
RUN_RETRY_TAGS = {"dagster/max_retries": "2", "dagster/retry_on_asset_or_op_failure": "false"}
CHANGED_UPSTREAM = dg.AutomationCondition.eager()
PUBLISH_WHEN_CHECKED = (dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()).with_label(
    "eager, all upstream blocking checks passed"
)


def raw_automation(spec: DatasetSpec) -> dg.AutomationCondition | None:
    cron = cron_for_frequency(spec.frequency)
    return None if cron is None else dg.AutomationCondition.on_cron(cron, TIMEZONE)


def run_tags(spec: DatasetSpec) -> dict[str, str]:
    """Tags of every run of a dataset's assets, whoever starts it (its job, its automation sensor)."""
    return {ORGANIZATION_TAG: spec.organization.slug, **RUN_RETRY_TAGS}


def sensor_name(organization_slug: str) -> str:
    return f"automation_{re.sub(r'[^A-Za-z0-9_]', '_', organization_slug)}"


def build_automation_sensors(registry: dict[str, DatasetSpec]) -> list[dg.AutomationConditionSensorDefinition]:
    by_organization: dict[str, list[DatasetSpec]] = {}
    for spec in registry.values():
        by_organization.setdefault(spec.organization.slug, []).append(spec)
    return [
        dg.AutomationConditionSensorDefinition(
            sensor_name(slug),
            target=dg.AssetSelection.groups(*(spec.slug for spec in specs)),
            run_tags=run_tags(specs[0]),
            default_status=dg.DefaultSensorStatus.STOPPED,
            description=f"Runs the datasets of {specs[0].organization.name} on their frequency and when upstream changed.",
        )
        for slug, specs in sorted(by_organization.items())
    ]
