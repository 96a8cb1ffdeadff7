"""A real catalog per test: uvicorn on a free loopback port, SQLite and files in `tmp_path`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from dinum_pipelines.catalog import CatalogSettings, Publisher, RunningCatalog, bootstrap_publisher, serve_in_thread


class Api:
    """`requests` against the catalog, as the pipeline's publisher uses it: paths are relative
    to /api/1 unless they start with /api/ or http."""

    def __init__(self, catalog: RunningCatalog, token: str | None = None) -> None:
        self.catalog = catalog
        self.session = requests.Session()
        if token:
            self.session.headers["X-API-KEY"] = token

    def url(self, path: str) -> str:
        if path.startswith("http"):
            return path
        return self.catalog.url + (path if path.startswith("/api/") else f"/api/1{path}")

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, self.url(path), **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def create_dataset(self, **fields: Any) -> dict[str, Any]:
        payload = {"title": "Base Sirene", "description": "Les entreprises françaises.", **fields}
        response = self.post("/datasets/", json=payload)
        assert response.status_code == 201, response.text
        return response.json()

    def upload(self, dataset_id: str, name: str, content: bytes, resource_id: str | None = None) -> requests.Response:
        path = f"/datasets/{dataset_id}/" + (f"resources/{resource_id}/upload/" if resource_id else "upload/")
        return self.post(path, files={"file": (name, content)})


@pytest.fixture
def catalog(tmp_path: Any) -> Iterator[RunningCatalog]:
    with serve_in_thread(CatalogSettings.in_directory(tmp_path / "catalog")) as running:
        yield running


@pytest.fixture
def publisher(catalog: RunningCatalog) -> Publisher:
    return bootstrap_publisher(
        catalog.store, org_slug="insee", org_name="Insee", email="bot@insee.fr", name="Insee Bot", role="editor"
    )


@pytest.fixture
def api(catalog: RunningCatalog, publisher: Publisher) -> Api:
    """A member of the `insee` organization."""
    return Api(catalog, publisher.token)


@pytest.fixture
def anonymous(catalog: RunningCatalog) -> Api:
    return Api(catalog)


@pytest.fixture
def outsider(catalog: RunningCatalog) -> Api:
    """A valid user who belongs to another organization."""
    other = bootstrap_publisher(
        catalog.store, org_slug="dgfip", org_name="DGFiP", email="bot@dgfip.fr", name="DGFiP Bot"
    )
    return Api(catalog, other.token)


@pytest.fixture
def dataset(api: Api, publisher: Publisher) -> dict[str, Any]:
    return api.create_dataset(organization=publisher.organization_id)
