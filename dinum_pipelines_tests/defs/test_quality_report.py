"""The quality report: real runs (one blocked, one published), the sensor, and the published table."""

import io
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
import requests

from dinum_pipelines.catalog import CatalogSettings, serve_in_thread
from dinum_pipelines.defs.chains import QUALITY_REPORT_JOB
from dinum_pipelines.defs.keys import job_name
from dinum_pipelines.defs.monitoring.quality_report import EVALUATED
from dinum_pipelines.definitions import build_definitions
from dinum_pipelines.demo.runner import bootstrap_demo_publisher
from dinum_pipelines_tests import browser
from dinum_pipelines_tests.conftest import VALID_DATASET
from dinum_pipelines_tests.defs.test_alerts import BAD_CODES, RULES, SLUG
from dinum_pipelines_tests.httpserver import Reply, ScriptedServer

GOOD_CODES = "code_commune;population\n01053;41000\n2A004;70000\n75056;2100000\n".encode("cp1252")


@pytest.fixture
def setup(write_registry, monkeypatch, tmp_path):
    with ScriptedServer() as source, serve_in_thread(CatalogSettings.in_directory(tmp_path / "catalog")) as catalog:
        key = bootstrap_demo_publisher(catalog.store, "bot@test.local", {"org-test": "Organisation de test", "etalab": "Etalab"})
        folder = write_registry({SLUG: VALID_DATASET.format(slug=SLUG, url=f"{source.url}/codes.csv") + RULES})
        monkeypatch.setenv("DINUM_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("DINUM_CATALOG_URL", catalog.url)
        monkeypatch.setenv("DINUM_CATALOG_API_KEY", key)
        with dg.instance_for_test() as instance:
            yield source, catalog, build_definitions(str(folder)), instance


def tick(defs, instance, cursor=None):
    sensor = next(s for s in defs.sensors if s.name == "quality_report_sensor")
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    return sensor(context), context


def test_every_run_becomes_a_row_of_the_published_report_and_of_the_quality_page(setup):
    browser.ensure_chromium()
    source, catalog, defs, instance = setup
    dataset_job = defs.resolve_job_def(job_name(SLUG))
    result, _ = tick(defs, instance)
    assert isinstance(result, dg.SkipReason)  # no check ran yet

    source.plan(Reply(200, BAD_CODES))
    assert not dataset_job.execute_in_process(instance=instance, raise_on_error=False).success
    source.plan(Reply(200, GOOD_CODES))
    assert dataset_job.execute_in_process(instance=instance).success
    source.plan(Reply(200, GOOD_CODES))  # unchanged: the check is planned, then skipped, and makes no row
    assert dataset_job.execute_in_process(instance=instance).success

    result, context = tick(defs, instance)
    (request,) = result.run_requests
    assert request.run_key == f"checks-up-to-{result.cursor}"
    assert next(s for s in defs.sensors if s.name == "quality_report_sensor").job_name == QUALITY_REPORT_JOB
    report_run = defs.resolve_job_def(QUALITY_REPORT_JOB).execute_in_process(instance=instance)
    assert report_run.success
    assert isinstance(tick(defs, instance, cursor=result.cursor)[0], dg.SkipReason)  # nothing new since

    (docs,) = report_run.asset_materializations_for_node("monitoring__data_docs")
    index = docs.metadata["index"].value
    assert docs.metadata["validations"].value == 2 and "2C247" in "".join(
        page.read_text(encoding="utf-8") for page in Path(index).parent.glob("validations/**/*.html")
    )
    check_key = dg.AssetCheckKey(dg.AssetKey([SLUG, "clean"]), "quality_rules")
    (latest,) = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=1, status=EVALUATED)
    assert latest.evaluation.metadata["data_docs"].value == index  # the check links the site

    (materialization,) = report_run.asset_materializations_for_node("monitoring__quality_report")
    metadata = {name: value.value for name, value in materialization.metadata.items()}
    assert (metadata["datasets_passed"], metadata["datasets_blocked"], metadata["dagster/row_count"]) == (1, 0, 2)

    dataset = requests.get(f"{catalog.url}/api/1/datasets/{metadata['dataset_id']}/", timeout=10).json()
    assert dataset["organization"]["slug"] == "etalab"
    assert "`failed_columns`" in dataset["description"]  # every column is described
    assert dataset["quality"]["score"] == 1.0, dataset["quality"]  # temporal coverage from the checks, spatial: France
    parquet = next(r for r in dataset["resources"] if r["title"].endswith(".parquet"))
    content = requests.get(f"{catalog.url}/api/1/datasets/r/{parquet['id']}", timeout=10).content
    rows = pq.read_table(io.BytesIO(content)).to_pylist()
    assert [(r["dataset"], r["status"], r["failed_columns"]) for r in rows] == [
        (SLUG, "blocked", "code_commune"),
        (SLUG, "passed", ""),
    ]
    blocked, passed = rows
    assert blocked["blocking_failures"] == 1 and blocked["row_count"] == 3 and passed["success_percent"] == 100.0
    assert blocked["checked_at"] <= passed["checked_at"]  # stored to the second; the order comes from the storage

    # The catalog's quality page, as a browser shows it: the latest run of the dataset and its trend.
    page = browser.dump_dom(f"{catalog.url}/qualite/")
    (row,) = page.find_all("tr", class_="quality-row")
    assert row.attrs["data-dataset"] == SLUG and row.attrs["data-status"] == "passed"
    assert "Conforme" in row.text and "100.0 %" in row.text
    assert page.by_id("count-passed").text == "1" and page.by_id("count-blocked").text == "0"
    assert row.find("title").text.endswith(f"{blocked['success_percent']:.0f} %, 100 %")  # oldest first
    (trend,) = row.find_all("polyline")
    assert len(trend.attrs["points"].split()) == 2  # two runs

    # Nothing ran since: the report is the same and the catalog is left alone.
    again = defs.resolve_job_def(QUALITY_REPORT_JOB).execute_in_process(instance=instance)
    (materialization,) = again.asset_materializations_for_node("monitoring__quality_report")
    assert materialization.metadata["changed"].value is False


def test_the_quality_page_says_when_no_report_was_published(tmp_path):
    with serve_in_thread(CatalogSettings.in_directory(tmp_path / "catalog")) as catalog:
        response = requests.get(f"{catalog.url}/qualite/", timeout=10)
    assert response.status_code == 200
    assert 'id="no-report"' in response.text and "quality-row" not in response.text
