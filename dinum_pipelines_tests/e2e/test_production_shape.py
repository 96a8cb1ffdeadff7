"""The production shape: Dagster's instance from deploy/dagster.postgres.yaml and the catalog, both on PostgreSQL.

The demo's datasets run on an instance built from the shipped deployment file (storage on a
throwaway PostgreSQL database of the local server) and publish to a catalog on another one.
What reads the instance's history (the "unchanged" summary, the quality report) runs against
PostgreSQL's event log, not SQLite's.
"""

from __future__ import annotations

import shutil

import dagster as dg
import pytest
from sqlalchemy.engine import make_url

from dinum_pipelines.catalog import CatalogSettings, serve_in_thread
from dinum_pipelines.demo.runner import bootstrap_demo_publisher, run_datasets, run_quality_report
from dinum_pipelines.demo.server import serve_administrations
from dinum_pipelines.definitions import build_definitions
from dinum_pipelines.lib.declare.registry import load_registry
from dinum_pipelines_tests.catalog.conftest import create_postgres_database, drop_postgres_database
from dinum_pipelines_tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

DEPLOYED_INSTANCE = REPO_ROOT / "deploy" / "dagster.postgres.yaml"


@pytest.fixture
def postgres_instance(tmp_path, monkeypatch):
    server_url, database_url = create_postgres_database("dinum_dagster_test")
    url = make_url(database_url)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(DEPLOYED_INSTANCE, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_HOST", url.host)
    monkeypatch.setenv("DAGSTER_PG_USER", url.username)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password or "")
    monkeypatch.setenv("DAGSTER_PG_DB", url.database)
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        yield instance
    finally:
        instance.dispose()
        drop_postgres_database(server_url, database_url)


@pytest.fixture
def postgres_catalog(tmp_path):
    server_url, database_url = create_postgres_database("dinum_catalog_test")
    try:
        with serve_in_thread(CatalogSettings(database_url, tmp_path / "files")) as catalog:
            yield catalog
    finally:
        drop_postgres_database(server_url, database_url)


def test_demo_on_a_postgres_instance_and_a_postgres_catalog(postgres_instance, postgres_catalog, tmp_path, monkeypatch):
    assert type(postgres_instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    registry = load_registry()
    organizations = {spec.organization.slug: spec.organization.name for spec in registry.values()} | {"etalab": "Etalab"}
    key = bootstrap_demo_publisher(postgres_catalog.store, "publisher@test.local", organizations)
    with serve_administrations() as administrations:
        monkeypatch.setenv("DINUM_DEMO_ADMIN_URL", administrations.url)
        monkeypatch.setenv("DINUM_CATALOG_URL", postgres_catalog.url)
        monkeypatch.setenv("DINUM_CATALOG_API_KEY", key)
        monkeypatch.setenv("DINUM_DATA_DIR", str(tmp_path / "data"))
        defs = build_definitions()
        first = {o.slug: o.status for o in run_datasets(defs, registry, postgres_instance)}
        again = {o.slug: o for o in run_datasets(defs, registry, postgres_instance)}
        report_id = run_quality_report(defs, postgres_instance)

    assert first == {
        "subventions_associations": "published", "bornes_recharge": "published", "fontaines_eau": "published",
        "effectifs_ecoles": "blocked",
    }
    assert again["subventions_associations"].status == "unchanged" and again["effectifs_ecoles"].status == "blocked"
    assert "304 Not Modified" in again["bornes_recharge"].detail
    runs = postgres_instance.get_run_records()
    assert len(runs) == 9  # 2 x 4 datasets + the quality report, stored in PostgreSQL
    assert report_id is not None
    report = postgres_catalog.store.datasets.get(report_id)
    assert report is not None and report["extras"]["dinum:slug"] == "quality_report"
