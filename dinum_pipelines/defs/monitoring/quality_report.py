"""The quality report asset: every dataset's check history as a dataset, published to the catalog.

It reads the evaluations Dagster stored for the datasets' checks (the instance is the record of
what ran), writes them as CSV and Parquet, and publishes them like any dataset, so the catalog's
quality page and anyone else can follow every dataset's status, blocked ones included.
"""

import os
from collections import Counter
from datetime import UTC, datetime

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from dinum_pipelines.defs.resources import Catalog, DataFolder
from dinum_pipelines.lib.publish.publishing import ProducedDataset, publish
from dinum_pipelines.lib.quality.history import (
    BLOCKED,
    COLUMNS,
    PASSED,
    QUALITY_REPORT_SLUG,
    QUALITY_REPORT_TAG,
    WARNING,
    CheckEvaluation,
    latest_by_dataset,
    report_rows,
    report_table,
)
from dinum_pipelines.lib.declare.registry import DatasetSpec, OrganizationSpec, SpatialCoverage
from dinum_pipelines.lib.clean.tables import write_csv, write_parquet

QUALITY_REPORT_KEY = dg.AssetKey(["monitoring", "quality_report"])
MONITORING_ORG_VAR = "DINUM_MONITORING_ORG"
# Who publishes the pipeline's own datasets (quality report, usage metrics): "slug:Name".
DEFAULT_MONITORING_ORG = "etalab:Etalab"
# Evaluations read per check; older ones drop out of the report.
HISTORY_LIMIT = 10_000
EVALUATED = frozenset({AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED})


def monitoring_organization() -> OrganizationSpec:
    slug, _, name = os.environ.get(MONITORING_ORG_VAR, DEFAULT_MONITORING_ORG).partition(":")
    return OrganizationSpec(slug=slug, name=name or slug)


def quality_report_dataset() -> ProducedDataset:
    columns = "\n".join(f"- `{name}` : {text}" for name, (_, text) in COLUMNS.items())
    return ProducedDataset(
        slug=QUALITY_REPORT_SLUG,
        title="Rapport de qualité des jeux de données republiés",
        description=(
            "Résultat de chaque vérification de qualité (Great Expectations) des jeux de données "
            "republiés par dinum_pipelines : une ligne par jeu de données et par exécution, y compris "
            "les versions dont la publication a été refusée.\n\nColonnes :\n" + columns
        ),
        organization=monitoring_organization(),
        frequency="continuous",
        tags=[QUALITY_REPORT_TAG, "qualite", "donnees-ouvertes"],
        spatial=SpatialCoverage(granularity="country"),
    )


def check_evaluations(instance: dg.DagsterInstance, check_keys: list[dg.AssetCheckKey]) -> list[CheckEvaluation]:
    """Every stored evaluation of `check_keys` (each key's asset path starts with the dataset slug)."""
    evaluations = []
    for key in check_keys:
        # Planned evaluations are left out: a run whose source was unchanged plans the check and skips it.
        for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=HISTORY_LIMIT, status=EVALUATED):
            evaluation = record.evaluation
            evaluations.append(
                CheckEvaluation(
                    dataset=key.asset_key.path[0],
                    check=key.name,
                    run_id=record.run_id,
                    evaluated_at=datetime.fromtimestamp(record.create_timestamp, UTC),
                    passed=evaluation.passed,
                    blocking=not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR,
                    metadata={name: getattr(value, "value", value) for name, value in evaluation.metadata.items()},
                    sequence=record.id,
                )
            )
    return evaluations


def build_quality_report_asset(registry: dict[str, DatasetSpec], check_keys: list[dg.AssetCheckKey]) -> dg.AssetsDefinition:
    datasets = {slug: (spec.title, spec.organization.slug) for slug, spec in registry.items()}

    @dg.asset(
        key=QUALITY_REPORT_KEY,
        group_name="monitoring",
        kinds={"parquet", "udata"},
        description="Every dataset's quality check results, one row per dataset and run, published to the catalog.",
    )
    def quality_report(context: dg.AssetExecutionContext, data_folder: DataFolder, catalog: Catalog) -> dg.MaterializeResult:
        rows = report_rows(check_evaluations(context.instance, check_keys), datasets)
        table = report_table(rows)
        folder = data_folder.layout().root / "monitoring" / QUALITY_REPORT_SLUG
        files = {"csv": folder / f"{QUALITY_REPORT_SLUG}.csv", "parquet": folder / f"{QUALITY_REPORT_SLUG}.parquet"}
        write_csv(table, files["csv"])
        write_parquet(table, files["parquet"])
        checked = [row["checked_at"].date() for row in rows]
        result = publish(
            catalog.client(),
            quality_report_dataset(),
            files,
            temporal_coverage=(min(checked), max(checked)) if checked else None,
            resource_descriptions={
                "csv": "Une ligne par jeu de données et par exécution, CSV UTF-8.",
                "parquet": "Une ligne par jeu de données et par exécution, Apache Parquet typé.",
            },
        )
        for action in result.actions:
            context.log.info(f"{QUALITY_REPORT_SLUG}: {action}")
        latest = Counter(line.status for line in latest_by_dataset(rows))
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": dg.MetadataValue.int(len(rows)),
                "datasets_passed": dg.MetadataValue.int(latest[PASSED]),
                "datasets_warning": dg.MetadataValue.int(latest[WARNING]),
                "datasets_blocked": dg.MetadataValue.int(latest[BLOCKED]),
                "dataset_id": result.dataset_id,
                "changed": dg.MetadataValue.bool(result.changed),
            }
        )

    return quality_report


def latest_evaluation_id(instance: dg.DagsterInstance, check_keys: list[dg.AssetCheckKey]) -> int:
    """The storage id of the newest evaluation of any of `check_keys` (0 when none ran)."""
    newest = 0
    for key in check_keys:
        records = instance.event_log_storage.get_asset_check_execution_history(key, limit=1, status=EVALUATED)
        if records:
            newest = max(newest, records[0].id)
    return newest


def build_quality_report_sensor(report_job: UnresolvedAssetJobDefinition, check_keys: list[dg.AssetCheckKey]) -> dg.SensorDefinition:
    @dg.sensor(
        name="quality_report_sensor",
        job=report_job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Republishes the quality report (and the catalog's quality page) after any quality check ran.",
    )
    def quality_report_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        newest = latest_evaluation_id(context.instance, check_keys)
        if newest <= int(context.cursor or 0):
            return dg.SkipReason("no quality check ran since the last report")
        return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"checks-up-to-{newest}")], cursor=str(newest))

    return quality_report_sensor
