"""A real catalog with the simulated clock on, a publisher, and a sysadmin for the metrics pipeline."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from dinum_pipelines.catalog import Publisher, RunningCatalog, bootstrap_publisher, serve_in_thread
# The catalog suite's fixtures; `publisher` and `api` then use this module's `catalog`.
from dinum_pipelines_tests.catalog.conftest import (  # noqa: F401
    BACKENDS,
    Api,
    anonymous,
    api,
    postgres_database,
    publisher,
    settings_for,
)


@pytest.fixture(params=BACKENDS)
def catalog(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[RunningCatalog]:
    """On SQLite and on PostgreSQL (the push's single transaction and the metric API's SQL must hold on both)."""
    settings = dataclasses.replace(settings_for(request.param, tmp_path / "catalog", request), simulated_clock=True)
    with serve_in_thread(settings) as running:
        yield running


@pytest.fixture
def sysadmin(catalog: RunningCatalog) -> Publisher:
    """Member of the organization publishing the pipeline's own datasets, and sysadmin."""
    admin = bootstrap_publisher(
        catalog.store, org_slug="etalab", org_name="Etalab", email="metrics@etalab.fr", name="Usage Metrics"
    )
    catalog.store.accounts.grant_sysadmin(admin.user_id)
    return admin


@pytest.fixture
def admin_api(catalog: RunningCatalog, sysadmin: Publisher) -> Api:
    return Api(catalog, sysadmin.token)


def publish_sample_datasets(api: Api, publisher: Publisher) -> list[dict[str, Any]]:
    """Two datasets: one with two hosted files, one with a hosted file and a remote one."""
    first = api.create_dataset(title="Communes", organization=publisher.organization_id)
    second = api.create_dataset(title="Écoles", organization=publisher.organization_id)
    for dataset, names in ((first, ("communes.csv", "communes.parquet")), (second, ("ecoles.csv",))):
        for name in names:
            assert api.upload(dataset["id"], name, f"code\n{name}\n".encode()).status_code == 201
    remote = api.post(
        f"/datasets/{second['id']}/resources/",
        json={"title": "API écoles", "url": "https://example.org/ecoles.json", "filetype": "remote"},
    )
    assert remote.status_code == 201, remote.text
    return [api.get(f"/datasets/{dataset['id']}/").json() for dataset in (first, second)]


def catalog_figures(anonymous: Api, datasets: list[dict[str, Any]]) -> dict[str, Any]:
    """Every figure the catalog shows: objects' metrics and every metric API table, as CSV."""
    figures: dict[str, Any] = {}
    for dataset in datasets:
        document = anonymous.get(f"/datasets/{dataset['id']}/").json()
        figures[dataset["id"]] = document["metrics"]
        for resource in document["resources"]:
            figures[resource["id"]] = resource["metrics"]
    figures["org"] = anonymous.get(f"/organizations/{datasets[0]['organization']['id']}/").json()["metrics"]
    for model in ("datasets", "resources", "organizations", "datasets_total", "resources_total", "organizations_total"):
        figures[model] = anonymous.get(f"/api/{model}/data/csv/").text
    return figures
