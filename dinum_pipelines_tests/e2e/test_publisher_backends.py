"""The pipeline's publisher (lib/publishing) against the catalog on each database backend.

The same publication must behave the same on the default SQLite catalog and on a shared
PostgreSQL one: files download byte-identical through their stable links, a second publication
of the same files changes nothing, and a changed file replaces the resource's file in place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from dinum_pipelines.catalog import RunningCatalog, bootstrap_publisher, serve_in_thread
from dinum_pipelines.lib.publish.catalog_client import UdataClient
from dinum_pipelines.lib.publish.publishing import ProducedDataset, publish
from dinum_pipelines.lib.declare.registry import OrganizationSpec, TemporalCoverage
from dinum_pipelines_tests.catalog.conftest import BACKENDS, postgres_database, settings_for  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

SPEC = ProducedDataset(
    slug="population_communes",
    title="Population des communes",
    description="Population légale des communes, republiée propre et validée. " * 3,
    organization=OrganizationSpec(slug="insee", name="Insee"),
    tags=["population", "communes"],
    temporal_coverage=TemporalCoverage(start="2021-01-01", end="2021-12-31"),
)


@pytest.fixture(params=BACKENDS)
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningCatalog]:
    with serve_in_thread(settings_for(request.param, tmp_path / "catalog", request)) as running:
        yield running


@pytest.fixture
def client(catalog: RunningCatalog) -> UdataClient:
    publisher = bootstrap_publisher(
        catalog.store, org_slug="insee", org_name="Insee", email="bot@insee.fr", name="Insee Bot", role="editor"
    )
    return UdataClient(catalog.url, publisher.token)


def clean_files(folder: Path, populations: list[int]) -> dict[str, Path]:
    """A CSV (with non-ASCII text and leading zeros) and a Parquet file of the same table."""
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({
        "code_commune": [f"0{1000 + i}" for i in range(len(populations))],
        "nom": [f"Saint-Étienne-{i}" for i in range(len(populations))],
        "population": populations,
    })
    csv_path = folder / "population_communes.csv"
    lines = ["code_commune,nom,population"] + [
        f"{code},{name},{population}" for code, name, population in zip(*(table[c].to_pylist() for c in table.column_names))
    ]
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    parquet_path = folder / "population_communes.parquet"
    pq.write_table(table, parquet_path)
    return {"csv": csv_path, "parquet": parquet_path}


def download(resource_id: str, catalog: RunningCatalog) -> bytes:
    response = requests.get(f"{catalog.api_url}/datasets/r/{resource_id}", timeout=30)
    response.raise_for_status()
    return response.content


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_publish_download_republish_and_replace(catalog: RunningCatalog, client: UdataClient, tmp_path: Path) -> None:
    files = clean_files(tmp_path / "v1", [1200, 345_000, 87])
    first = publish(client, SPEC, files)
    assert first.actions[0].startswith("created dataset") and first.changed
    for role, path in files.items():
        assert sha256(download(first.resource_ids[role], catalog)) == sha256(path.read_bytes())

    dataset = client.get_dataset(first.dataset_id)
    assert dataset["license"] == "lov2" and dataset["tags"] == ["population", "communes"]
    assert {r["format"] for r in dataset["resources"]} == {"csv", "parquet"}
    found = requests.get(f"{catalog.api_url}/datasets/", params={"format": "parquet", "license": "lov2", "tag": "communes"}, timeout=10)
    assert [d["id"] for d in found.json()["data"]] == [first.dataset_id]

    # The same files again: nothing is sent, nothing moves.
    again = publish(client, SPEC, files)
    assert not again.changed, again.actions
    assert again.resource_ids == first.resource_ids
    unchanged = client.get_dataset(first.dataset_id)
    assert unchanged["last_modified"] == dataset["last_modified"]
    assert [(r["id"], r["url"], r["last_modified"]) for r in unchanged["resources"]] == [
        (r["id"], r["url"], r["last_modified"]) for r in dataset["resources"]
    ]

    # New data: the same resources get the new files; the stable links serve them.
    changed_files = clean_files(tmp_path / "v2", [1201, 345_100, 88, 5])
    replaced = publish(client, SPEC, changed_files)
    assert replaced.resource_ids == first.resource_ids
    assert sorted(a.split(" of resource")[0] for a in replaced.actions if a.startswith("replaced")) == [
        "replaced csv file", "replaced parquet file",
    ]
    for role, path in changed_files.items():
        assert sha256(download(first.resource_ids[role], catalog)) == sha256(path.read_bytes())
    assert len(client.get_dataset(first.dataset_id)["resources"]) == 2
