"""Schema migrations on SQLite and PostgreSQL: the revisions build exactly the tables db.py
declares, and databases from before (made by `metadata.create_all`, or at an older revision)
are upgraded in place with their data."""

from __future__ import annotations

import json

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import JSON, column, create_engine, insert, inspect, select, table, text
from sqlalchemy.engine import Engine

from dinum_pipelines.catalog import CatalogSettings, CatalogStore
from dinum_pipelines.catalog.__main__ import main as catalog_cli
from dinum_pipelines.catalog.listing import DatasetQuery
from dinum_pipelines.catalog.db import (
    alembic_config,
    current_revision,
    datasets,
    head_revision,
    metadata,
    open_engine,
)
from dinum_pipelines_tests.catalog.conftest import BACKENDS, create_postgres_database, drop_postgres_database

NOW = datetime(2026, 1, 2, 3, 4, 5)  # naive UTC, as stored
OLD_DATASET_DOC = {
    "license": "lov2", "frequency": "monthly", "tags": ["communes"], "extras": {"dinum:slug": "communes"},
    "metrics": {"views": 12},
}
OLD_RESOURCE_DOC = {"title": "communes.csv", "format": "CSV", "filetype": "file", "type": "main"}


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no table at all, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    server_url, database_url = create_postgres_database("dinum_catalog_migration_test")
    try:
        yield database_url
    finally:
        drop_postgres_database(server_url, database_url)


def schema_differences(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        opts = {"compare_type": True}
        return compare_metadata(MigrationContext.configure(connection, opts=opts), metadata)


@pytest.fixture
def migrated_engine(empty_database_url: str) -> Iterator[Engine]:
    """An engine on the empty database, opened (hence upgraded to the latest revision)."""
    engine = open_engine(empty_database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def test_revisions_build_exactly_the_declared_tables(migrated_engine: Engine) -> None:
    assert schema_differences(migrated_engine) == []
    with migrated_engine.connect() as connection:
        assert current_revision(connection) == head_revision()


def test_the_comparison_sees_a_missing_index(migrated_engine: Engine) -> None:
    """The check above can fail: drop one index and it reports it."""
    with migrated_engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_datasets_listed_with_license"))
    assert [difference[0] for difference in schema_differences(migrated_engine)] == ["add_index"]


# The tables as the code of revisions 0001/0002 wrote them (no `license` or `format` column yet).
OLD_USERS = table("users", *(column(name) for name in ("id", "email", "slug", "first_name", "last_name", "created_at")))
OLD_ORGANIZATIONS = table("organizations", *(column(name) for name in ("id", "slug", "name", "description", "created_at")))
OLD_DATASETS = table(
    "datasets",
    *(column(name) for name in ("id", "slug", "title", "description", "search_text", "organization_id", "private",
                                "created_at", "last_modified", "last_update")),
    column("doc", JSON),
)
OLD_RESOURCES = table(
    "resources", *(column(name) for name in ("id", "dataset_id", "position", "file_key", "created_at", "last_modified")),
    column("doc", JSON),
)


def build_old_database(url: str, revision: str, *, keep_version_table: bool) -> None:
    """The schema of `revision` and rows as the code of that time wrote them.

    Without the version table it is what `metadata.create_all` made before the catalog used alembic."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), revision)
            if not keep_version_table:
                connection.execute(text("DROP TABLE alembic_version"))
            connection.execute(insert(OLD_USERS).values(
                id="u" * 24, email="bot@insee.fr", slug="insee-bot", first_name="Insee", last_name="Bot", created_at=NOW))
            connection.execute(insert(OLD_ORGANIZATIONS).values(
                id="o" * 24, slug="insee", name="Insee", description="", created_at=NOW))
            connection.execute(insert(OLD_DATASETS).values(
                id="d" * 24, slug="communes", title="Communes", description="Les communes.",
                search_text="communes\nles communes.", organization_id="o" * 24, private=False,
                created_at=NOW, last_modified=NOW, last_update=NOW, doc=OLD_DATASET_DOC))
            connection.execute(insert(OLD_RESOURCES).values(
                id="r" * 36, dataset_id="d" * 24, position=0, file_key="key/communes.csv",
                created_at=NOW, last_modified=NOW, doc=OLD_RESOURCE_DOC))
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("revision", "keep_version_table"),
    [("0001_initial", False), ("0002_usage_metrics", False), ("0002_usage_metrics", True)],
    ids=["created-before-metrics", "created-before-alembic", "at-an-older-revision"],
)
def test_opening_an_older_database_upgrades_it_and_keeps_its_data(
    empty_database_url: str, tmp_path: Path, revision: str, keep_version_table: bool
) -> None:
    build_old_database(empty_database_url, revision, keep_version_table=keep_version_table)

    with CatalogStore(CatalogSettings(empty_database_url, tmp_path / "files")) as store:
        with store.db.read() as connection:
            assert current_revision(connection) == head_revision()
        assert schema_differences(store.db.engine) == []
        dataset = store.datasets.require("communes")
        assert (dataset["id"], dataset["title"], dataset["license"]) == ("d" * 24, "Communes", "lov2")
        assert dataset["tags"] == ["communes"] and dataset["extras"] == {"dinum:slug": "communes"}
        assert [(r["id"], r["format"], r["file_key"]) for r in dataset["resources"]] == [("r" * 36, "CSV", "key/communes.csv")]
        assert dataset["organization"]["slug"] == "insee"
        assert store.accounts.require_user("bot@insee.fr")["id"] == "u" * 24
        # The new columns were backfilled: the filters that use them find the old dataset.
        assert store.datasets.search(DatasetQuery(license="lov2", format="csv"))[1] == 1
        assert store.datasets.search(DatasetQuery(license="odc-odbl"))[1] == 0
        # The search index and the views column were filled from the existing rows too.
        assert store.datasets.search(DatasetQuery(q="commune"))[1] == 1
        assert store.datasets.search(DatasetQuery(q="absent"))[1] == 0
        # and the words' copy of the filters (revision 0017)
        assert store.datasets.search(DatasetQuery(q="commune", license="lov2", format="csv", organization_id="o" * 24))[1] == 1
        assert [store.datasets.search(DatasetQuery(q="commune", **wrong))[1] for wrong in ({"format": "json"}, {"license": "cc-by"})] == [0, 0]
        # No stored document (revision 0016) until the catalog stores the missing ones.
        assert store.datasets.get_document("communes") is None
        assert store.datasets.store_missing_documents() == 1
        visibility, body = store.datasets.get_document("communes")
        assert visibility["id"] == "d" * 24 and json.loads(body)["title"] == "Communes"
        with store.db.read() as connection:
            assert connection.scalar(select(datasets.c.views)) == 12


def test_migrate_command_upgrades_and_prints_the_revision(
    empty_database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert catalog_cli(["migrate", "--database-url", empty_database_url, "--files-dir", str(tmp_path / "files")]) == 0
    assert capsys.readouterr().out.strip() == head_revision()
    engine = create_engine(empty_database_url)
    try:
        assert {"datasets", "resources", "alembic_version"} <= set(inspect(engine).get_table_names())
        assert schema_differences(engine) == []
    finally:
        engine.dispose()
