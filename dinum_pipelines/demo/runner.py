"""What `make demo` does: serve the demo administrations and a catalog, run every dataset, report.

The runs go through Dagster for real (each dataset's job on a persistent instance), so what the
summary prints is what the Dagster UI shows afterwards. The summary reads the run results and,
for datasets skipped because their source is unchanged, the instance's history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg

from dinum_pipelines.catalog.admin import create_token, ensure_organization, ensure_user
from dinum_pipelines.catalog.store import CatalogStore
from dinum_pipelines.defs.chains import QUALITY_REPORT_JOB
from dinum_pipelines.defs.keys import QUALITY_CHECK_NAME, clean_key, job_name, published_key, raw_key
from dinum_pipelines.defs.monitoring.quality_report import EVALUATED, QUALITY_REPORT_KEY
from dinum_pipelines.defs.metrics.assets import DAILY_JOB, PUBLISHED_KEY, ROLLUP_JOB
from dinum_pipelines.lib.metrics.usage import TIMEZONE
from dinum_pipelines.lib.declare.registry import DatasetSpec, OrganizationSpec
from dinum_pipelines.metrics_loadgen import simulate

# The console shows our summary; Dagster's own event log is in the UI.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def bootstrap_demo_publisher(store: CatalogStore, email: str, organizations: dict[str, str]) -> str:
    """One publishing user, member of every producer organization of the registry; a fresh key."""
    user = ensure_user(store, email, "Publication Démo")
    for slug, name in organizations.items():
        organization = ensure_organization(store, slug, name)
        store.accounts.set_member(organization["id"], user["id"], "admin")
    token, _record = create_token(store, email, "demo publisher")
    return token


@dataclass(frozen=True)
class DatasetOutcome:
    slug: str
    title: str
    # published | unchanged | blocked | failed
    status: str
    detail: str
    dataset_id: str | None = None
    # True when the check passed, warnings included (see `check_warnings`); False when it blocked.
    check_passed: bool | None = None
    run_id: str | None = None
    check_warnings: bool = False
    # The source judged against its Table Schema: fault counts by code (None: no schema, or not run).
    conformance: dict[str, int] | None = None


def _metadata_value(metadata: dict, key: str):
    value = metadata.get(key)
    return getattr(value, "value", value)


def _latest_check(instance: dg.DagsterInstance, slug: str):
    key = dg.AssetCheckKey(clean_key(slug), QUALITY_CHECK_NAME)
    records = instance.event_log_storage.get_asset_check_execution_history(key, limit=1, status=EVALUATED)
    if not records or records[0].event is None or records[0].event.dagster_event is None:
        return None
    return records[0].event.dagster_event.event_specific_data


def _latest_dataset_id(instance: dg.DagsterInstance, slug: str) -> str | None:
    event = instance.get_latest_materialization_event(published_key(slug))
    if event is None or event.asset_materialization is None:
        return None
    return _metadata_value(event.asset_materialization.metadata, "dataset_id")


def outcome_of_run(spec: DatasetSpec, result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance) -> DatasetOutcome:
    slug = spec.slug
    checks = [e for e in result.get_asset_check_evaluations() if e.asset_key == clean_key(slug)]
    check = checks[-1] if checks else None
    materialized = {e.asset_key: e.materialization for e in result.get_asset_materialization_events()}
    common: dict = {"slug": slug, "title": spec.title, "run_id": result.run_id}
    if clean_key(slug) in materialized:
        common["conformance"] = _metadata_value(materialized[clean_key(slug)].metadata, "conformance_counts")
    if check is not None and not check.passed and check.severity == dg.AssetCheckSeverity.WARN:
        common["check_warnings"] = True
    if published_key(slug) in materialized:
        metadata = materialized[published_key(slug)].metadata
        changed = _metadata_value(metadata, "changed")
        return DatasetOutcome(
            status="published",
            detail="new version uploaded" if changed else "already up to date in the catalog",
            dataset_id=_metadata_value(metadata, "dataset_id"),
            check_passed=(check.passed or common.get("check_warnings", False)) if check else None,
            **common,
        )
    if check is not None and not check.passed and check.severity == dg.AssetCheckSeverity.ERROR:
        return DatasetOutcome(status="blocked", detail=check.description or "quality check failed", check_passed=False, **common)
    failures = result.get_step_failure_events()
    if failures:
        error = failures[0].event_specific_data.error
        while error.cause is not None and error.cls_name == "DagsterExecutionStepExecutionError":
            error = error.cause  # Dagster's wrapper says which op; its cause says what went wrong
        return DatasetOutcome(status="failed", detail=f"{failures[0].step_key}: {error.message.strip()}", **common)
    if raw_key(slug) not in materialized:
        observations = [
            e.event_specific_data.asset_observation
            for e in result.all_events
            if e.is_asset_observation and e.event_specific_data.asset_observation.asset_key == raw_key(slug)
        ]
        reason = _metadata_value(observations[-1].metadata, "unchanged") if observations else "no new version"
        last_check = _latest_check(instance, slug)
        previous = ""
        blocked = last_check is not None and not last_check.passed and last_check.severity == dg.AssetCheckSeverity.ERROR
        if last_check is not None:
            previous = f"; last check failed: {last_check.description}" if blocked else "; last check passed"
            common["check_warnings"] = not last_check.passed and not blocked
        return DatasetOutcome(
            status="blocked" if blocked else "unchanged",
            detail=f"source unchanged ({reason}){previous}",
            dataset_id=_latest_dataset_id(instance, slug),
            check_passed=not blocked if last_check is not None else None,
            **common,
        )
    return DatasetOutcome(status="failed", detail="the run ended without publishing", **common)


def run_datasets(
    defs: dg.Definitions, registry: dict[str, DatasetSpec], instance: dg.DagsterInstance
) -> list[DatasetOutcome]:
    """Run each dataset's job in turn on `instance`; one dataset's failure does not stop the others."""
    outcomes = []
    for slug, spec in registry.items():
        job = defs.resolve_job_def(job_name(slug))
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET_RUN_CONFIG)
        outcomes.append(outcome_of_run(spec, result, instance))
    return outcomes


def run_quality_report(defs: dg.Definitions, instance: dg.DagsterInstance) -> str | None:
    """Publish the quality report now (a sensor does it in a deployment); its catalog dataset id."""
    result = defs.resolve_job_def(QUALITY_REPORT_JOB).execute_in_process(
        instance=instance, raise_on_error=False, run_config=QUIET_RUN_CONFIG
    )
    for event in result.get_asset_materialization_events():
        if event.asset_key == QUALITY_REPORT_KEY:
            return _metadata_value(event.materialization.metadata, "dataset_id")
    return None


def bootstrap_metrics_sysadmin(store: CatalogStore, email: str, organization: OrganizationSpec) -> str:
    """The metrics pipeline's account: sysadmin (log export, metrics push), member of the
    organization publishing the usage dataset; a fresh key."""
    user = ensure_user(store, email, "Statistiques Démo")
    store.accounts.grant_sysadmin(user["id"])
    store.accounts.set_member(ensure_organization(store, organization.slug, organization.name)["id"], user["id"], "admin")
    token, _record = create_token(store, email, "demo usage metrics")
    return token


def run_usage_metrics(defs: dg.Definitions, instance: dg.DagsterInstance, catalog_url: str, api_key: str, days: int = 7) -> dict:
    """Simulate `days` days of reusers (ending yesterday), count each day, roll up, publish and push."""
    end = datetime.now(TIMEZONE).date() - timedelta(days=1)
    chosen = [end - timedelta(days=offset) for offset in range(days - 1, -1, -1)]
    record = simulate(catalog_url, api_key, chosen)
    daily_job = defs.resolve_job_def(DAILY_JOB)
    for day in chosen:
        daily_job.execute_in_process(partition_key=day.isoformat(), instance=instance, run_config=QUIET_RUN_CONFIG)
    rollup = defs.resolve_job_def(ROLLUP_JOB).execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET_RUN_CONFIG)
    published = [e for e in rollup.get_asset_materialization_events() if e.asset_key == PUBLISHED_KEY]
    return {
        "first_day": chosen[0].isoformat(), "last_day": end.isoformat(),
        "generated": record.generated, "bots": record.by_bots,
        "success": rollup.success,
        "dataset_id": _metadata_value(published[0].materialization.metadata, "dataset_id") if published else None,
    }


def format_summary(outcomes: list[DatasetOutcome], catalog_url: str) -> str:
    lines = ["", "Summary", "======="]
    for outcome in outcomes:
        check = {True: "check passed", False: "check FAILED", None: "check not run"}[outcome.check_passed]
        if outcome.check_passed and outcome.check_warnings:
            check = "check passed with warnings"
        lines.append(f"- {outcome.slug}: {outcome.status.upper()} ({check})")
        lines.append(f"    {outcome.detail}")
        if outcome.conformance is not None:
            faults = sum(outcome.conformance.values())
            counts = ", ".join(f"{code} {count}" for code, count in outcome.conformance.items())
            verdict = "conformant" if not faults else f"NOT conformant, {faults} fault(s): {counts}"
            lines.append(f"    source file vs its Table Schema: {verdict}")
            if outcome.dataset_id and outcome.status in ("published", "unchanged"):
                lines.append(f"    conformance report: {catalog_url}/datasets/{outcome.dataset_id}/conformite/")
        if outcome.dataset_id:
            lines.append(f"    {catalog_url}/api/1/datasets/{outcome.dataset_id}/")
    in_catalog = sum(o.dataset_id is not None for o in outcomes)
    blocked = sum(o.check_passed is False for o in outcomes)
    passed = sum(o.check_passed is True for o in outcomes)
    lines.append("")
    lines.append(f"{in_catalog} dataset(s) in the catalog; checks: {passed} passed, {blocked} failed.")
    return "\n".join(lines)
