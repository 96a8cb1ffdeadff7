"""The publisher's change summary against a real catalog on loopback: computed from the file the
catalog serves, sent with each new data file only, and left out (the publication going on) when
the served file cannot be read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import requests

from dinum_pipelines.catalog import RunningCatalog, bootstrap_publisher, serve_in_thread
from dinum_pipelines.catalog.events import RESOURCE_DOWNLOAD
from dinum_pipelines.catalog.settings import CatalogSettings
from dinum_pipelines.lib.publish.catalog_client import UdataClient
from dinum_pipelines.lib.publish.changes import table_changes
from dinum_pipelines.lib.metrics.usage import DEFAULT_BOTS_FILE, BotFilter
from dinum_pipelines.lib.publish.publishing import (
    CHANGES_EXTRA,
    COMPARISON_USER_AGENT,
    ProducedDataset,
    PublicationResult,
    publish,
)
from dinum_pipelines.lib.declare.registry import OrganizationSpec

SPEC = ProducedDataset(
    slug="communes", title="Communes", description="Les communes, leur code et leur population. " * 3,
    organization=OrganizationSpec(slug="insee", name="Insee"),
)


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[RunningCatalog]:
    with serve_in_thread(CatalogSettings.in_directory(tmp_path / "catalog")) as running:
        yield running


@pytest.fixture
def client(catalog: RunningCatalog) -> UdataClient:
    publisher = bootstrap_publisher(catalog.store, org_slug="insee", org_name="Insee", email="bot@insee.fr", name="Bot")
    return UdataClient(catalog.url, publisher.token)


def files(folder: Path, codes: list[str], population: list[int]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({"code": codes, "population": population})
    pacsv.write_csv(table, folder / "communes.csv")
    pq.write_table(table, folder / "communes.parquet")
    return {"csv": folder / "communes.csv", "parquet": folder / "communes.parquet"}


def publish_table(client: UdataClient, published: dict[str, Path]) -> PublicationResult:
    return publish(client, SPEC, published, compare_tables=lambda before, after: table_changes(before, after, ["code"]).as_extra())


def versions(client: UdataClient, result: PublicationResult, role: str) -> list[dict]:
    url = f"{client.base_url}/api/1/datasets/{result.dataset_id}/resources/{result.resource_ids[role]}/versions/"
    return requests.get(url, timeout=10).json()


def test_each_new_file_carries_what_changed_since_the_served_one(
    client: UdataClient, catalog: RunningCatalog, tmp_path: Path
) -> None:
    first = publish_table(client, files(tmp_path / "v1", ["01", "02", "03"], [10, 20, 30]))
    assert first.changes is None  # nothing published before

    second = publish_table(client, files(tmp_path / "v2", ["01", "02", "04"], [10, 25, 40]))
    assert second.changes == {
        "key": ["code"], "rows_before": 3, "rows_after": 3, "rows_added": 1, "rows_removed": 1, "rows_modified": 1,
        "columns_added": [], "columns_removed": [],
    }
    for role in ("csv", "parquet"):
        assert [version["changes"] for version in versions(client, second, role)] == [second.changes, None]
    # The publisher read the served Parquet once, as a bot the usage metrics leave out.
    catalog.store.events.flush()
    [read] = [event for event in catalog.store.events.list(kind=RESOURCE_DOWNLOAD) if event["resource_id"] == second.resource_ids["parquet"]]
    assert read["user_agent"] == COMPARISON_USER_AGENT and BotFilter.from_file(DEFAULT_BOTS_FILE).is_bot(read["user_agent"])

    again = publish_table(client, files(tmp_path / "v2-again", ["01", "02", "04"], [10, 25, 40]))
    assert again.changes is None and not again.changed
    assert [len(versions(client, again, role)) for role in ("csv", "parquet")] == [2, 2]


def test_a_served_file_that_cannot_be_read_leaves_the_summary_out(
    client: UdataClient, catalog: RunningCatalog, tmp_path: Path
) -> None:
    first = publish_table(client, files(tmp_path / "v1", ["01", "02"], [10, 20]))
    parquet = catalog.store.datasets.resource(first.resource_ids["parquet"])
    catalog.store.files.path(parquet["file_key"]).unlink()  # the served file lost: a 404

    second = publish_table(client, files(tmp_path / "v2", ["01"], [10]))
    assert second.changes is None
    assert any(action.startswith("no change summary: the published parquet file could not be read") for action in second.actions)
    for role in ("csv", "parquet"):
        newest, _ = versions(client, second, role)
        assert newest["changes"] is None and newest["latest"]
    resource = client.get_dataset(second.dataset_id)["resources"][0]
    assert CHANGES_EXTRA not in resource["extras"]
