"""Dagster side of the usage metrics (the rules are in lib/metrics/usage.py):

    usage/events  (daily partitions)  the day's access events, exported by the catalog
    usage/daily   (daily partitions)  the day's counts, bots excluded: one Parquet file per day
    usage/tables                      daily, monthly and total tables from every daily file
    usage/published                   the "usage metrics" dataset (CSV + Parquet) in the catalog
    usage/catalog_metrics             objects' `metrics` and the metric API, pushed all or nothing

A day is a Europe/Paris day and becomes a partition once it is over; re-materializing a day
replaces its files, so backfills and re-runs never double-count. The roll-ups are not
partitioned: they are recomputed from all the daily files, and run after any day changes
(eager automation). A schedule exports and counts yesterday every morning.
"""


import json
import os
import tempfile
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from dinum_pipelines.defs.monitoring.quality_report import monitoring_organization
from dinum_pipelines.defs.resources import DEFAULT_CATALOG_URL, Catalog, DataFolder
from dinum_pipelines.lib.metrics.usage import (
    LEVELS,
    PUBLISHED_PERIODS,
    TIMEZONE,
    BotFilter,
    MetricsLayout,
    UsageTables,
    catalog_payload,
    count_day,
    day_bounds,
    read_daily_counts,
    read_events_csv,
    write_atomically,
    write_parquet,
    write_published_files,
)
from dinum_pipelines.lib.metrics.catalog import MetricsClient
from dinum_pipelines.lib.metrics.schema import DATASET_VIEW, RESOURCE_DOWNLOAD, column_descriptions
from dinum_pipelines.lib.publish.publishing import ProducedDataset, publish
from dinum_pipelines.lib.declare.registry import SpatialCoverage

METRICS_API_KEY_VAR = "DINUM_CATALOG_METRICS_API_KEY"
START_DATE_VAR = "DINUM_METRICS_START_DATE"
DEFAULT_START_DATE = "2026-01-01"
GROUP = "usage"
EVENTS_KEY = dg.AssetKey([GROUP, "events"])
DAILY_KEY = dg.AssetKey([GROUP, "daily"])
TABLES_KEY = dg.AssetKey([GROUP, "tables"])
PUBLISHED_KEY = dg.AssetKey([GROUP, "published"])
CATALOG_METRICS_KEY = dg.AssetKey([GROUP, "catalog_metrics"])
USAGE_DATASET_SLUG = "usage_metrics"
DAILY_JOB = "usage_daily_job"
ROLLUP_JOB = "usage_rollup_job"


class MetricsCatalog(dg.ConfigurableResource):
    """The catalog as the metrics pipeline sees it: a sysadmin's key, to read the log and push figures."""

    base_url: str
    api_key: str

    def client(self) -> MetricsClient:
        return MetricsClient(self.base_url, self.api_key)


class UsageSettings(dg.ConfigurableResource):
    """The bot list (None: $DINUM_METRICS_BOTS_FILE, else lib/metrics/bots.yaml)."""

    bots_file: str | None = None

    def bots(self) -> BotFilter:
        return BotFilter.from_file(self.bots_file)


def usage_partitions() -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(
        start_date=os.environ.get(START_DATE_VAR, DEFAULT_START_DATE), timezone=TIMEZONE.key
    )


def _partition_day(context: dg.AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


def usage_dataset() -> ProducedDataset:
    sections = []
    for name, level in LEVELS.items():
        for period, word in PUBLISHED_PERIODS.items():
            described = "\n".join(f"  - `{column}`: {text}" for column, text in column_descriptions(level, period).items())
            sections.append(f"- `usage_{name}_{word}` ({word} figures per {level.noun}):\n{described}")
    return ProducedDataset(
        slug=USAGE_DATASET_SLUG,
        title="Statistiques d'usage du catalogue",
        description=(
            "Visites et téléchargements des jeux de données du catalogue, par jour et par mois, par jeu de "
            "données, par fichier et par organisation, et selon le canal (page web, API, lien stable). "
            "Calculés chaque jour à partir du journal d'accès du catalogue ; les robots d'indexation sont "
            "exclus. Chaque table est publiée en CSV et en Parquet.\n\nFiles and columns:\n" + "\n".join(sections)
        ),
        organization=monitoring_organization(),
        frequency="daily",
        tags=["statistiques", "usage", "monitoring"],
        spatial=SpatialCoverage(granularity="country"),
    )


def _resource_descriptions() -> dict[str, str]:
    descriptions = {}
    for name, level in LEVELS.items():
        for period, word in PUBLISHED_PERIODS.items():
            columns = "; ".join(f"{column}: {text}" for column, text in column_descriptions(level, period).items())
            for fmt in ("csv", "parquet"):
                descriptions[f"{name}_{word}_{fmt}"] = f"Usage {word}, per {level.noun}. Columns: {columns}."
    return descriptions


@dg.asset(
    key=EVENTS_KEY,
    group_name=GROUP,
    partitions_def=usage_partitions(),
    kinds={"parquet"},
    description="The day's access events (Europe/Paris day), exported by the catalog's sysadmin-only /api/1/events/.",
)
def usage_events(context: dg.AssetExecutionContext, data_folder: DataFolder, metrics_catalog: MetricsCatalog) -> dg.MaterializeResult:
    day = _partition_day(context)
    start, end = day_bounds(day)
    target = MetricsLayout(data_folder.layout().root).events_file(day)
    with tempfile.TemporaryDirectory() as scratch:
        exported = Path(scratch) / "events.csv"
        metrics_catalog.client().download_events(start, end, exported)
        events = read_events_csv(exported)
    write_parquet(events, target)
    return dg.MaterializeResult(metadata={"events": dg.MetadataValue.int(events.num_rows), "path": dg.MetadataValue.path(str(target))})


@dg.asset(
    key=DAILY_KEY,
    deps=[EVENTS_KEY],
    group_name=GROUP,
    partitions_def=usage_partitions(),
    kinds={"parquet"},
    description="The day's visits and downloads per (kind, channel, organization, dataset, resource), bots excluded.",
)
def usage_daily(context: dg.AssetExecutionContext, data_folder: DataFolder, usage_settings: UsageSettings) -> dg.MaterializeResult:
    day = _partition_day(context)
    layout = MetricsLayout(data_folder.layout().root)
    counted = count_day(pq.read_table(layout.events_file(day)), day, usage_settings.bots())
    write_parquet(counted.table, layout.daily_file(day))
    by_kind = {kind: 0 for kind in (DATASET_VIEW, RESOURCE_DOWNLOAD)}
    for kind, count in zip(counted.table["kind"].to_pylist(), counted.table["count"].to_pylist(), strict=True):
        by_kind[kind] += count
    return dg.MaterializeResult(
        metadata={
            "views": dg.MetadataValue.int(by_kind[DATASET_VIEW]),
            "downloads": dg.MetadataValue.int(by_kind[RESOURCE_DOWNLOAD]),
            "bot_events_excluded": dg.MetadataValue.int(counted.bot_events),
            "events": dg.MetadataValue.int(counted.events),
            "path": dg.MetadataValue.path(str(layout.daily_file(day))),
        }
    )


def catalog_payload_file(layout: MetricsLayout) -> Path:
    """The push `usage/tables` prepares and `usage/catalog_metrics` sends."""
    return layout.root / "metrics" / "catalog_payload.json"


@dg.asset(
    key=TABLES_KEY,
    deps=[DAILY_KEY],
    group_name=GROUP,
    kinds={"parquet", "csv"},
    automation_condition=dg.AutomationCondition.eager(),
    description="Daily, monthly and total tables per dataset, resource and organization, from every daily file.",
)
def usage_tables(context: dg.AssetExecutionContext, data_folder: DataFolder) -> dg.MaterializeResult:
    layout = MetricsLayout(data_folder.layout().root)
    daily_files = layout.daily_files()
    if not daily_files:
        # Pushing empty tables would reset every figure in the catalog: refuse instead.
        raise dg.Failure("no daily usage file yet: materialize some usage/daily partitions first")
    tables = UsageTables.from_counts(read_daily_counts(daily_files))
    write_published_files(tables, layout.published_dir)
    payload = catalog_payload(tables, datetime.now(TIMEZONE).date())
    write_atomically(catalog_payload_file(layout), lambda path: path.write_text(json.dumps(payload), encoding="utf-8"))
    days = tables.days()
    return dg.MaterializeResult(
        metadata={
            "views": dg.MetadataValue.int(tables.total("datasets", "visit")),
            "downloads": dg.MetadataValue.int(tables.total("datasets", "download_resource")),
            "days": dg.MetadataValue.int(len(days)),
            "first_day": days[0] if days else "",
            "last_day": days[-1] if days else "",
            "datasets_with_usage": dg.MetadataValue.int(len(tables[("datasets", None)])),
        }
    )


@dg.asset(
    key=PUBLISHED_KEY,
    deps=[TABLES_KEY],
    group_name=GROUP,
    kinds={"udata"},
    automation_condition=dg.AutomationCondition.eager(),
    description="The usage metrics dataset in the catalog: daily and monthly tables, CSV and Parquet.",
)
def usage_published(context: dg.AssetExecutionContext, data_folder: DataFolder, catalog: Catalog) -> dg.MaterializeResult:
    layout = MetricsLayout(data_folder.layout().root)
    files = {role: layout.published_dir / name for role, name in _published_names().items()}
    days = sorted(date.fromisoformat(path.stem) for path in layout.daily_files())
    result = publish(
        catalog.client(), usage_dataset(), files,
        temporal_coverage=(days[0], days[-1]) if days else None,
        resource_descriptions=_resource_descriptions(),
    )
    for action in result.actions:
        context.log.info(action)
    metadata = {"dataset_id": result.dataset_id, "changed": dg.MetadataValue.bool(result.changed)}
    if result.dataset_url:
        metadata["dataset_page"] = dg.MetadataValue.url(result.dataset_url)
    return dg.MaterializeResult(metadata=metadata)


def _published_names() -> dict[str, str]:
    return {
        f"{name}_{word}_{fmt}": f"usage_{name}_{word}.{fmt}"
        for name in LEVELS
        for word in PUBLISHED_PERIODS.values()
        for fmt in ("csv", "parquet")
    }


@dg.asset(
    key=CATALOG_METRICS_KEY,
    deps=[TABLES_KEY],
    group_name=GROUP,
    kinds={"udata"},
    automation_condition=dg.AutomationCondition.eager(),
    description="Datasets', resources' and organizations' `metrics` and the metric API, replaced in one transaction.",
)
def catalog_metrics(context: dg.AssetExecutionContext, data_folder: DataFolder, metrics_catalog: MetricsCatalog) -> dg.MaterializeResult:
    payload = json.loads(catalog_payload_file(MetricsLayout(data_folder.layout().root)).read_text(encoding="utf-8"))
    summary = metrics_catalog.client().push_metrics(payload)
    metadata: dict[str, dg.RawMetadataValue] = {
        f"{kind}_updated": dg.MetadataValue.int(count) for kind, count in summary["updated"].items()
    }
    metadata.update({f"{name}_rows": dg.MetadataValue.int(count) for name, count in summary["tables"].items()})
    unknown = sum(summary["unknown"].values())
    if unknown:
        context.log.warning(f"{unknown} object(s) with usage are no longer in the catalog (deleted): their rows stay in the metric API")
    return dg.MaterializeResult(metadata=metadata)


def build_metrics_defs() -> dg.Definitions:
    daily_job = dg.define_asset_job(
        DAILY_JOB, selection=[EVENTS_KEY, DAILY_KEY], partitions_def=usage_partitions(),
        description="Export and count one day of the catalog's usage log.",
    )
    rollup_job = dg.define_asset_job(
        ROLLUP_JOB, selection=[TABLES_KEY, PUBLISHED_KEY, CATALOG_METRICS_KEY],
        description="Roll the daily files up, publish the usage dataset and push the figures to the catalog.",
    )
    return dg.Definitions(
        assets=[usage_events, usage_daily, usage_tables, usage_published, catalog_metrics],
        jobs=[daily_job, rollup_job],
        schedules=[dg.build_schedule_from_partitioned_job(daily_job, hour_of_day=6, minute_of_hour=15)],
        resources={
            "metrics_catalog": MetricsCatalog(
                base_url=os.environ.get("DINUM_CATALOG_URL", DEFAULT_CATALOG_URL), api_key=dg.EnvVar(METRICS_API_KEY_VAR)
            ),
            "usage_settings": UsageSettings(),
        },
    )
