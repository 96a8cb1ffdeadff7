"""X-Accel-Redirect mode: the catalog checks the request and counts the download, and hands the
sending of the bytes to nginx. (bench/test_bench_catalog.py runs it behind a real nginx.)"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from dinum_pipelines.catalog import CatalogSettings, RunningCatalog, bootstrap_publisher, serve_in_thread
from dinum_pipelines.catalog.events import RESOURCE_DOWNLOAD
from dinum_pipelines_tests.catalog.conftest import Api

PREFIX = "/_files/"


@pytest.fixture
def accel_catalog(catalog_settings: CatalogSettings) -> Iterator[RunningCatalog]:
    with serve_in_thread(dataclasses.replace(catalog_settings, accel_redirect_prefix=PREFIX)) as running:
        yield running


def test_download_answers_with_the_redirect_and_counts_it(accel_catalog: RunningCatalog) -> None:
    publisher = bootstrap_publisher(accel_catalog.store, org_slug="insee", org_name="Insee", email="bot@insee.fr", name="Insee Bot")
    api = Api(accel_catalog, publisher.token)
    dataset = api.create_dataset(organization=publisher.organization_id)
    resource = api.upload(dataset["id"], "communes été.csv", b"code,nom\n75056,Paris\n").json()
    key = resource["url"].split("/resources/", 1)[1]

    response = requests.get(resource["url"], timeout=10)
    assert response.status_code == 200
    assert response.content == b""  # nginx adds the body
    assert response.headers["x-accel-redirect"] == PREFIX + quote(key)
    assert response.headers["content-type"].startswith("text/csv")
    assert Path(accel_catalog.settings.files_dir, key).read_bytes() == b"code,nom\n75056,Paris\n"
    assert [e["resource_id"] for e in accel_catalog.store.events.list(kind=RESOURCE_DOWNLOAD)] == [resource["id"]]

    # Only current files are redirected to: an unknown key is still the catalog's 404.
    assert requests.get(resource["url"] + "x", timeout=10).status_code == 404


def test_settings_read_the_prefix_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DINUM_CATALOG_ACCEL_REDIRECT_PREFIX", PREFIX)
    assert CatalogSettings.from_env(files_dir=tmp_path).accel_redirect_prefix == PREFIX
    monkeypatch.delenv("DINUM_CATALOG_ACCEL_REDIRECT_PREFIX")
    assert CatalogSettings.from_env(files_dir=tmp_path).accel_redirect_prefix is None
