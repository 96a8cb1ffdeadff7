"""The whole usage-metrics path, for real: simulated reusers over HTTP, Dagster materializations
of the daily partitions and roll-ups, then every published figure against what was generated."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from dinum_pipelines.catalog import Publisher, RunningCatalog
from dinum_pipelines.defs.metrics.assets import (
    USAGE_DATASET_SLUG,
    MetricsCatalog,
    UsageSettings,
    catalog_metrics,
    usage_daily,
    usage_events,
    usage_published,
    usage_tables,
)
from dinum_pipelines.defs.resources import Catalog, DataFolder
from dinum_pipelines.lib.metrics.usage import MetricsLayout
from dinum_pipelines.metrics_loadgen import UsageRecord, simulate
from dinum_pipelines_tests.catalog.conftest import Api
from dinum_pipelines_tests.metrics.conftest import catalog_figures, publish_sample_datasets

pytestmark = pytest.mark.slow

# Four days across a month boundary (and a DST change on 25 October is not among them: see the lib tests).
DAYS = [date(2026, 10, 30), date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 2)]
LATER_DAY = date(2026, 11, 3)


class Expected:
    """What the published figures must be, computed from the generator's record with plain counters."""

    def __init__(self, record: UsageRecord) -> None:
        self.humans: Counter[tuple[Any, ...]] = Counter()
        self.bots: Counter[str] = Counter()
        for (day, kind, channel, dataset_id, resource_id, organization_id, bot), count in record.counts.items():
            if bot:
                self.bots[day] += count
            else:
                self.humans[(day, kind, channel, dataset_id, resource_id, organization_id)] += count

    def count(self, *, period: str | None = None, kind: str, channel: str | None = None, **ids: str) -> int:
        positions = {"dataset_id": 3, "resource_id": 4, "organization_id": 5}
        return sum(
            count for key, count in self.humans.items()
            if key[1] == kind and (channel is None or key[2] == channel)
            and (period is None or key[0].startswith(period))
            and all(key[positions[name]] == value for name, value in ids.items())
        )

    def events_of(self, day: str) -> int:
        return sum(count for key, count in self.humans.items() if key[0] == day)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def resources(catalog: RunningCatalog, data_dir: Path, metrics_key: str, publisher_key: str) -> dict[str, Any]:
    return {
        "data_folder": DataFolder(root=str(data_dir)),
        "metrics_catalog": MetricsCatalog(base_url=catalog.url, api_key=metrics_key),
        "usage_settings": UsageSettings(),
        "catalog": Catalog(base_url=catalog.url, api_key=publisher_key),
    }


def materialize_days(days: list[date], instance: dg.DagsterInstance, run_resources: dict[str, Any]) -> list[dg.ExecuteInProcessResult]:
    return [
        dg.materialize([usage_events, usage_daily], partition_key=day.isoformat(), resources=run_resources, instance=instance)
        for day in days
    ]


def roll_up(instance: dg.DagsterInstance, run_resources: dict[str, Any], raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [usage_tables, usage_published, catalog_metrics], resources=run_resources, instance=instance, raise_on_error=raise_on_error
    )


def metadata_of(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict[str, Any]:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {name: value.value for name, value in event.materialization.metadata.items()}


def published_tables(anonymous: Api, admin_token: str) -> dict[str, pd.DataFrame]:
    """The usage dataset's CSV files, downloaded from the catalog."""
    [usage] = [d for d in anonymous.get("/organizations/etalab/datasets/").json()["data"] if d["extras"]["dinum:slug"] == USAGE_DATASET_SLUG]
    tables = {}
    for resource in usage["resources"]:
        if resource["title"].endswith(".csv"):
            text = anonymous.get(resource["url"]).text
            tables[resource["title"].removesuffix(".csv")] = pd.read_csv(io.StringIO(text), dtype={"day": str, "metric_month": str})
    return tables


def check_everything(expected: Expected, datasets: list[dict[str, Any]], anonymous: Api, admin_token: str, data_dir: Path) -> None:
    """Daily files, published daily and monthly tables, objects' metrics and the metric API, against `expected`."""
    layout = MetricsLayout(data_dir)
    days = sorted({key[0] for key in expected.humans})
    for day in days:
        counts = pq.read_table(layout.daily_file(date.fromisoformat(day))).to_pandas()
        assert counts["count"].sum() == expected.events_of(day), day

    tables = published_tables(anonymous, admin_token)
    organization_id = datasets[0]["organization"]["id"]
    months = sorted({day[:7] for day in days})
    for dataset in datasets:
        daily = tables["usage_datasets_daily"].set_index(["day", "dataset_id"])
        monthly = tables["usage_datasets_monthly"].set_index(["metric_month", "dataset_id"])
        for day in days:
            row = daily.loc[(day, dataset["id"])]
            assert row["visit"] == expected.count(period=day, kind="dataset.view", dataset_id=dataset["id"])
            for channel in ("web", "api"):
                assert row[f"visit_{channel}"] == expected.count(period=day, kind="dataset.view", channel=channel, dataset_id=dataset["id"])
            for channel in ("web", "api", "permalink", "tabular"):
                assert row[f"download_resource_{channel}"] == expected.count(
                    period=day, kind="resource.download", channel=channel, dataset_id=dataset["id"]
                )
        for month in months:
            row = monthly.loc[(month, dataset["id"])]
            assert row["monthly_visit"] == expected.count(period=month, kind="dataset.view", dataset_id=dataset["id"])
            assert row["monthly_download_resource"] == expected.count(period=month, kind="resource.download", dataset_id=dataset["id"])

        document = anonymous.get(f"/datasets/{dataset['id']}/").json()
        metrics = document["metrics"]
        assert metrics["views"] == expected.count(kind="dataset.view", dataset_id=dataset["id"])
        assert metrics["resources_downloads"] == expected.count(kind="resource.download", dataset_id=dataset["id"])
        for month in months:
            assert metrics["resources_downloads_by_months"][month] == expected.count(
                period=month, kind="resource.download", dataset_id=dataset["id"]
            )
            assert metrics["views_by_months"][month] == expected.count(period=month, kind="dataset.view", dataset_id=dataset["id"])
        rows = anonymous.get("/api/datasets/data/", params={"dataset_id__exact": dataset["id"], "metric_month__sort": "desc"}).json()["data"]
        assert [row["metric_month"] for row in rows] == months[::-1]
        for row in rows:
            assert row["monthly_visit"] == expected.count(period=row["metric_month"], kind="dataset.view", dataset_id=dataset["id"])
            assert row["monthly_download_resource_permalink"] == expected.count(
                period=row["metric_month"], kind="resource.download", channel="permalink", dataset_id=dataset["id"]
            )

        resources_daily = tables["usage_resources_daily"].set_index(["day", "resource_id"])
        for resource in document["resources"]:
            assert resource["metrics"]["views"] == expected.count(kind="resource.download", resource_id=resource["id"])
            for day in days:
                wanted = expected.count(period=day, kind="resource.download", resource_id=resource["id"])
                found = resources_daily.loc[(day, resource["id"])]["download_resource"] if (day, resource["id"]) in resources_daily.index else 0
                assert found == wanted, (day, resource["title"])
            total = anonymous.get("/api/resources_total/data/", params={"resource_id__exact": resource["id"]}).json()["data"]
            assert [row["download_resource"] for row in total] == ([expected.count(kind="resource.download", resource_id=resource["id"])] if total else [])

    org = anonymous.get(f"/organizations/{organization_id}/").json()["metrics"]
    assert org["views"] == expected.count(kind="dataset.view", organization_id=organization_id)
    assert org["resources_downloads"] == expected.count(kind="resource.download", organization_id=organization_id)
    org_monthly = tables["usage_organizations_monthly"].set_index(["metric_month", "organization_id"])
    for month in months:
        assert org_monthly.loc[(month, organization_id)]["monthly_visit_dataset"] == expected.count(
            period=month, kind="dataset.view", organization_id=organization_id
        )


def test_published_figures_equal_the_generated_usage_and_reruns_change_nothing(
    catalog: RunningCatalog, api: Api, anonymous: Api, publisher: Publisher, sysadmin: Publisher,
    instance: dg.DagsterInstance, tmp_path: Path,
) -> None:
    datasets = publish_sample_datasets(api, publisher)
    record = simulate(catalog.url, sysadmin.token, DAYS, seed=7, datasets=[d["id"] for d in datasets])
    expected = Expected(record)
    assert record.refused == 0 and sum(expected.bots.values()) > 0
    assert {key[2] for key in expected.humans} == {"web", "api", "permalink"}
    data_dir = tmp_path / "data"
    run_resources = resources(catalog, data_dir, sysadmin.token, sysadmin.token)

    first_days = materialize_days(DAYS, instance, run_resources)
    for day, result in zip(DAYS, first_days, strict=True):
        daily = metadata_of(result, usage_daily.key)
        assert daily["bot_events_excluded"] == expected.bots[day.isoformat()]
        assert daily["views"] + daily["downloads"] == expected.events_of(day.isoformat())
    rolled = roll_up(instance, run_resources)
    tables_metadata = metadata_of(rolled, usage_tables.key)
    assert tables_metadata["days"] == len(DAYS)
    assert tables_metadata["views"] == expected.count(kind="dataset.view")
    assert tables_metadata["downloads"] == expected.count(kind="resource.download")
    check_everything(expected, datasets, anonymous, sysadmin.token, data_dir)
    figures = catalog_figures(anonymous, datasets)
    daily_files = {path.name: path.read_bytes() for path in MetricsLayout(data_dir).daily_files()}

    # Materializing the same days again (a re-run, or a backfill over them) changes nothing.
    materialize_days(DAYS, instance, run_resources)
    again = roll_up(instance, run_resources)
    assert metadata_of(again, usage_published.key)["changed"] is False
    # The first run's publication created the usage dataset after or while its push ran, so this
    # push may have given it (and only it) its zero metrics; the next one has nothing left to change.
    updated = metadata_of(again, catalog_metrics.key)
    assert updated["datasets_updated"] <= 1 and updated["organizations_updated"] == 0
    third = metadata_of(roll_up(instance, run_resources), catalog_metrics.key)
    assert {name: value for name, value in third.items() if name.endswith("_updated")} == {
        "datasets_updated": 0, "resources_updated": 0, "organizations_updated": 0
    }
    assert catalog_figures(anonymous, datasets) == figures
    assert {path.name: path.read_bytes() for path in MetricsLayout(data_dir).daily_files()} == daily_files
    check_everything(expected, datasets, anonymous, sysadmin.token, data_dir)

    # A later day is counted, but the catalog refuses the push (a key without sysadmin rights):
    # the run fails and every figure the catalog shows is the previous one.
    later = simulate(catalog.url, sysadmin.token, [LATER_DAY], seed=8, datasets=[d["id"] for d in datasets])
    assert sum(later.counts.values()) > 0
    materialize_days([LATER_DAY], instance, run_resources)
    refused = roll_up(instance, resources(catalog, data_dir, publisher.token, sysadmin.token), raise_on_error=False)
    assert not refused.success
    [failure] = refused.get_step_failure_events()
    error = failure.event_specific_data.error.to_string()
    assert "HTTP 403" in error and publisher.token not in error
    assert catalog_figures(anonymous, datasets) == figures

    # With the right key, the next run publishes the four days and the later one.
    roll_up(instance, run_resources)
    combined = UsageRecord(counts=record.counts + later.counts)
    check_everything(Expected(combined), datasets, anonymous, sysadmin.token, data_dir)
