"""A real catalog per test: uvicorn on a free loopback port, files in `tmp_path`, and each test
twice, once per database backend: a SQLite file in `tmp_path`, and a PostgreSQL database created
for the session on the server at $DINUM_TEST_POSTGRES_URL (default: postgres@127.0.0.1:5432),
emptied before each test and dropped at the end. An unreachable server fails those tests (CI has
PostgreSQL): a backend that is silently skipped is a backend nobody tests.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import OperationalError

from dinum_pipelines.catalog import (
    CatalogSettings,
    Publisher,
    RunningCatalog,
    bootstrap_publisher,
    serve_in_thread,
)
from dinum_pipelines.catalog.db import metadata
from dinum_pipelines_tests import browser

POSTGRES_URL_ENV = "DINUM_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgresql")


def postgres_server_url() -> URL:
    url = make_url(os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL)
    return url.set(drivername="postgresql+psycopg") if url.drivername == "postgresql" else url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """SQLAlchemy's deprecations fail the catalog's tests (the project's settings ignore
    DeprecationWarning): each one is a warning issued per call, on the request path (a
    `Result.tuples()` in every search cost its frame walk and went unseen)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.filterwarnings("error::sqlalchemy.exc.SADeprecationWarning"))


@dataclass
class PostgresDatabase:
    """A throwaway database on the test server; `url` for the catalog, `reset()` empties it."""

    url: str
    engine: Engine

    def terminate_other_connections(self) -> int:
        """Make the server drop every connection to this database but the caller's (as a restart
        or an idle timeout would), waiting up to 5 s for each; how many it dropped."""
        with self.engine.connect() as admin:
            return admin.execute(text(
                "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )).scalar()

    def reset(self) -> None:
        """Empty every catalog table and restart its sequences (the schema, alembic's version
        included, stays). DELETE, children first, not TRUNCATE: a test leaves a few rows, and
        TRUNCATE gives each table new files (half a second a test on the whole schema)."""
        with self.engine.begin() as connection:
            existing = {name for (name,) in connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))}
            for table in reversed(metadata.sorted_tables):
                if table.name in existing:
                    connection.execute(table.delete())
            sequences = connection.execute(text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")).scalars().all()
            for sequence in sequences:
                connection.execute(text("SELECT setval(:name, 1, false)"), {"name": f'public."{sequence}"'})


def create_postgres_database(prefix: str = "dinum_catalog_test") -> tuple[URL, str]:
    """Create `<prefix>_<random>` on the test server; returns (server URL, new database URL).

    Fails the test, with the URL tried and how to point elsewhere, when the server is not there."""
    server_url = postgres_server_url()
    name = f"{prefix}_{secrets.token_hex(4)}"
    server = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
            # A throwaway database: its commits need not wait for the disk.
            connection.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    except OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {server_url.render_as_string(hide_password=True)}: "
            f"{exc.orig}. These tests need it; set {POSTGRES_URL_ENV} to a server where the user may "
            f"create databases (e.g. postgresql://postgres@127.0.0.1:5432/postgres).",
            pytrace=False,
        )
    finally:
        server.dispose()
    return server_url, server_url.set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(server_url: URL, database_url: str) -> None:
    server = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(database_url).database}" WITH (FORCE)'))
    finally:
        server.dispose()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[PostgresDatabase]:
    server_url, database_url = create_postgres_database()
    engine = create_engine(database_url)
    try:
        yield PostgresDatabase(database_url, engine)
    finally:
        engine.dispose()
        drop_postgres_database(server_url, database_url)


def settings_for(backend: str, home: Path, request: pytest.FixtureRequest) -> CatalogSettings:
    """Catalog settings with files in `home`, on SQLite there too (a copy of the session's
    migrated database) or on the session's PostgreSQL database."""
    if backend == "sqlite":
        settings = CatalogSettings.in_directory(home)
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), home / "catalog.db")
        return settings
    database: PostgresDatabase = request.getfixturevalue("postgres_database")
    database.reset()
    return CatalogSettings(database.url, home / "files")


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


@pytest.fixture(params=BACKENDS)
def catalog_settings(request: pytest.FixtureRequest, tmp_path: Path) -> CatalogSettings:
    return settings_for(request.param, tmp_path / "catalog", request)


@pytest.fixture
def catalog(catalog_settings: CatalogSettings) -> Iterator[RunningCatalog]:
    with serve_in_thread(catalog_settings) as running:
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


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Headless Chromium for the page tests (installed from Debian's package when missing)."""
    try:
        return browser.ensure_chromium()
    except browser.BrowserUnavailable as exc:
        pytest.fail(f"headless Chromium is needed for the page tests: {exc}")
