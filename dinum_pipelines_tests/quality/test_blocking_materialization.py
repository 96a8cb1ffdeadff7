"""A real Dagster materialization: personal data in the new file blocks publication, and the
catalog keeps serving the previous file byte for byte; declaring the column public lets it through."""

from __future__ import annotations

import hashlib

import dagster as dg
import pytest
import requests
import yaml

from dinum_pipelines.catalog import CatalogSettings, serve_in_thread
from dinum_pipelines.defs.clean.assets import build_clean_asset
from dinum_pipelines.defs.ingest.assets import build_raw_asset
from dinum_pipelines.defs.keys import QUALITY_CHECK_NAME, clean_key, published_key
from dinum_pipelines.defs.publish.assets import build_published_asset
from dinum_pipelines.defs.quality.checks import build_quality_check
from dinum_pipelines.defs.resources import default_resources
from dinum_pipelines.demo.runner import bootstrap_demo_publisher
from dinum_pipelines.lib.declare.registry import parse_dataset_file
from dinum_pipelines_tests.conftest import VALID_DATASET
from dinum_pipelines_tests.httpserver import Reply, ScriptedServer

SLUG = "elus_contacts"
COLUMNS = {"columns": [{"name": "commune", "required": True}, {"name": "email_elu", "required": True}]}
PUBLIC = {"personal_data": [{"column": "email_elu", "kinds": ["email"], "legal_basis": "Code général des collectivités territoriales, art. L. 2121-..."}]}
FUNCTIONAL = "commune;email_elu\nLyon;contact@mairie-lyon.fr\nBrest;accueil@mairie-brest.fr\n".encode()
PERSONAL = "commune;email_elu\nLyon;jean.dupont@gmail.com\nBrest;m.martin@mairie-brest.fr\n".encode()


@pytest.fixture
def running(write_registry, monkeypatch, tmp_path):
    with ScriptedServer() as source, serve_in_thread(CatalogSettings.in_directory(tmp_path / "catalog")) as catalog:
        key = bootstrap_demo_publisher(catalog.store, "bot@test.local", {"org-test": "Organisation de test"})
        monkeypatch.setenv("DINUM_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("DINUM_CATALOG_URL", catalog.url)
        monkeypatch.setenv("DINUM_CATALOG_API_KEY", key)

        def materialize(body: bytes, extra: dict, instance):
            text = VALID_DATASET.format(slug=SLUG, url=f"{source.url}/elus.csv") + yaml.safe_dump({**COLUMNS, **extra})
            spec = parse_dataset_file(write_registry({SLUG: text}) / f"{SLUG}.yaml")
            source.plan(Reply(200, body))
            return dg.materialize(
                [build_raw_asset(spec), build_clean_asset(spec), build_published_asset(spec), build_quality_check(spec)],
                resources=default_resources(),
                instance=instance,
                raise_on_error=False,
            )

        with dg.instance_for_test() as instance:
            yield lambda body, extra={}: materialize(body, extra, instance), catalog


def published_csv_sha256(catalog) -> str:
    datasets = requests.get(f"{catalog.url}/api/1/datasets/?page_size=10", timeout=10).json()["data"]
    (resource,) = [r for d in datasets for r in d["resources"] if r["title"].endswith(".csv")]
    return hashlib.sha256(requests.get(f"{catalog.url}/api/1/datasets/r/{resource['id']}", timeout=10).content).hexdigest()


def check_of(result) -> dg.AssetCheckEvaluation:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == QUALITY_CHECK_NAME]
    return evaluation


def test_personal_emails_are_blocked_and_the_published_file_stays_the_same(running):
    materialize, catalog = running
    first = materialize(FUNCTIONAL)
    assert first.success and check_of(first).passed
    published = published_csv_sha256(catalog)

    blocked = materialize(PERSONAL)
    check = check_of(blocked)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["failed_columns"].value == "email_elu"
    assert check.metadata["failed_personal_data_rules"].value == 1
    (failure,) = check.metadata["failed_expectations"].value
    assert failure["samples"] == ["jean.dupont@gmail.com", "m.martin@mairie-brest.fr"] and failure["rows"] == [1, 2]
    materialized = {e.asset_key for e in blocked.get_asset_materialization_events()}
    assert clean_key(SLUG) in materialized and published_key(SLUG) not in materialized
    assert published_csv_sha256(catalog) == published

    # The administration adds a row (a new file, so a new raw version) and the YAML now declares the column.
    declared = materialize(PERSONAL + "Nice;c.durand@ville-nice.fr\n".encode(), PUBLIC)
    assert check_of(declared).passed
    assert published_key(SLUG) in {e.asset_key for e in declared.get_asset_materialization_events()}
    assert published_csv_sha256(catalog) != published
