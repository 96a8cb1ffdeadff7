"""Freshness with a simulated clock: a real publication, then the same instants in Dagster (its
freshness daemon) and in the catalog (the quality page and udata's criterion): on time within the
frequency plus the tolerance, late past it, and one alert posted to a webhook receiver on loopback."""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import requests
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget, freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._daemon.freshness import FreshnessDaemon

from dinum_pipelines.catalog import CatalogSettings, serve_in_thread
from dinum_pipelines.defs.alerts import AlertWebhook
from dinum_pipelines.defs.chains import QUALITY_REPORT_JOB
from dinum_pipelines.defs.keys import job_name, published_key
from dinum_pipelines.defs.monitoring.freshness import freshness_policy
from dinum_pipelines.definitions import build_definitions
from dinum_pipelines.demo.runner import bootstrap_demo_publisher
from dinum_pipelines.lib.monitoring.freshness import LATENESS_TOLERANCE, update_window
from dinum_pipelines_tests import browser
from dinum_pipelines_tests.conftest import VALID_DATASET
from dinum_pipelines_tests.defs.test_alerts import RULES, SECRET_PATH, SLUG
from dinum_pipelines_tests.defs.test_quality_report import GOOD_CODES
from dinum_pipelines_tests.httpserver import Reply, ScriptedServer

MONTHLY = update_window("monthly")  # the frequency of VALID_DATASET
# The clocks are moved an hour clear of the boundary: Dagster counts from the materialization's
# event, the catalog from the dataset's last_update, written a moment before during the same step.
MARGIN = timedelta(hours=1)


@pytest.fixture
def setup(write_registry, monkeypatch, tmp_path):
    with (
        ScriptedServer() as source,
        ScriptedServer() as receiver,
        serve_in_thread(CatalogSettings.in_directory(tmp_path / "catalog")) as catalog,
    ):
        key = bootstrap_demo_publisher(catalog.store, "bot@test.local", {"org-test": "Organisation de test", "etalab": "Etalab"})
        folder = write_registry({SLUG: VALID_DATASET.format(slug=SLUG, url=f"{source.url}/codes.csv") + RULES})
        monkeypatch.setenv("DINUM_SOURCES_DIR", str(folder))  # for the code location the daemon loads
        monkeypatch.setenv("DINUM_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("DINUM_CATALOG_URL", catalog.url)
        monkeypatch.setenv("DINUM_CATALOG_API_KEY", key)
        with dg.instance_for_test() as instance:
            yield source, receiver, catalog, build_definitions(str(folder)), instance


def evaluate_freshness(instance: dg.DagsterInstance, now: datetime) -> FreshnessState:
    """One iteration of Dagster's freshness daemon at `now`, on the code location as Dagster loads
    it; the published asset's state as the instance (and so the UI) records it."""
    origin = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="dinum_pipelines.definitions", attribute="defs"))
    with WorkspaceProcessContext(instance, InProcessTestWorkspaceLoadTarget(origin)) as workspace, freeze_time(now):
        list(FreshnessDaemon().run_iteration(workspace))
    return instance.get_freshness_state_records([published_key(SLUG)])[published_key(SLUG)].freshness_state


def quality_page_row(catalog, monkeypatch, now: datetime):
    """The quality page's row of the dataset, the catalog's clock at `now`."""
    monkeypatch.setattr("dinum_pipelines.catalog.pages.utcnow", lambda: now)
    page = browser.parse_html(requests.get(f"{catalog.url}/qualite/", timeout=10).text)
    (row,) = page.find_all("tr", class_="quality-row")
    return row, page.by_id("count-late").text


def test_a_dataset_past_its_frequency_plus_tolerance_is_stale_in_dagster_and_the_catalog_and_alerted_once(setup, monkeypatch):
    source, receiver, catalog, defs, instance = setup
    policy = freshness_policy("monthly")
    assert policy.warn_window.to_timedelta() == MONTHLY.expected == timedelta(days=31)
    assert policy.fail_window.to_timedelta() == MONTHLY.expected + LATENESS_TOLERANCE

    source.plan(Reply(200, GOOD_CODES))
    published = defs.resolve_job_def(job_name(SLUG)).execute_in_process(instance=instance)
    assert published.success
    assert defs.resolve_job_def(QUALITY_REPORT_JOB).execute_in_process(instance=instance).success
    published_at = datetime.fromtimestamp(instance.get_latest_materialization_event(published_key(SLUG)).timestamp, UTC)
    dataset_id = published.asset_materializations_for_node(f"{SLUG}__published")[0].metadata["dataset_id"].value

    sensor = next(s for s in defs.sensors if s.name == "freshness_alerts")
    webhook = AlertWebhook(url=receiver.url + SECRET_PATH, dagster_url="http://dagster.test")

    def alert_tick(cursor):
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"alert_webhook": webhook})
        sensor(context)
        return context.cursor

    # A day after the publication: fresh everywhere, nothing posted.
    assert evaluate_freshness(instance, published_at + timedelta(days=1)) == FreshnessState.PASS
    cursor = alert_tick(None)
    assert receiver.requests == []

    # Past the month but within udata's day of tolerance: due (WARN in Dagster), not late anywhere.
    due = published_at + MONTHLY.expected + MARGIN
    assert evaluate_freshness(instance, due) == FreshnessState.WARN
    row, count = quality_page_row(catalog, monkeypatch, due)
    assert row.attrs["data-late"] == "false" and count == "0" and "À temps" in row.text
    cursor = alert_tick(cursor)
    assert receiver.requests == []

    # Past the month and the tolerance: FAIL in Dagster, late on the quality page and in the
    # dataset's udata quality criterion, each by its own clock set to the same instant.
    late = published_at + MONTHLY.late_after + MARGIN
    assert evaluate_freshness(instance, late) == FreshnessState.FAIL
    row, count = quality_page_row(catalog, monkeypatch, late)
    assert row.attrs["data-late"] == "true" and count == "1"
    assert "En retard" in row.text and f"{published_at + MONTHLY.late_after:%d/%m/%Y}" in row.text
    monkeypatch.setattr("dinum_pipelines.catalog.render.utcnow", lambda: late)
    quality = requests.get(f"{catalog.url}/api/1/datasets/{dataset_id}/", timeout=10).json()["quality"]
    assert quality["update_fulfilled_in_time"] is False and quality["update_frequency"] is True

    # One alert, however many times freshness and the sensor are evaluated.
    receiver.plan(Reply(200, b"ok"))
    cursor = alert_tick(cursor)
    assert evaluate_freshness(instance, late + timedelta(hours=1)) == FreshnessState.FAIL
    cursor = alert_tick(cursor)
    (request,) = receiver.requests
    assert request["method"] == "POST" and request["path"] == SECRET_PATH
    text = json.loads(request["body"])["text"]
    assert f"(`{SLUG}`) : mise à jour en retard" in text and "`monthly`" in text
    assert f"http://dagster.test/assets/{SLUG}/published" in text
    assert json.loads(cursor) == [SLUG]

    # A new version published (Dagster's clock still simulated): fresh again, it leaves the cursor,
    # and its next lateness is announced again.
    republished_at = late + timedelta(hours=2)
    source.plan(Reply(200, GOOD_CODES + b"13055;870000\n"))
    with freeze_time(republished_at):
        assert defs.resolve_job_def(job_name(SLUG)).execute_in_process(instance=instance).success
    assert evaluate_freshness(instance, republished_at + timedelta(hours=1)) == FreshnessState.PASS
    cursor = alert_tick(cursor)
    assert json.loads(cursor) == [] and len(receiver.requests) == 1
    receiver.plan(Reply(200, b"ok"))
    assert evaluate_freshness(instance, republished_at + MONTHLY.late_after + MARGIN) == FreshnessState.FAIL
    alert_tick(cursor)
    assert len(receiver.requests) == 2


def test_a_refused_alert_is_posted_again_at_the_next_tick_and_never_shows_the_secret(setup, capfd):
    _source, receiver, _catalog, defs, instance = setup
    # The published asset's last materialization 40 days ago (a runless event at a simulated time).
    published_at = datetime.now(UTC) - timedelta(days=40)
    with freeze_time(published_at):
        instance.report_runless_asset_event(dg.AssetMaterialization(published_key(SLUG)))
    assert evaluate_freshness(instance, datetime.now(UTC)) == FreshnessState.FAIL

    sensor = next(s for s in defs.sensors if s.name == "freshness_alerts")
    webhook = AlertWebhook(url=receiver.url + SECRET_PATH)
    receiver.plan(Reply(500, b"down"), Reply(200, b"ok"))
    cursors = []
    for _ in range(3):
        context = dg.build_sensor_context(instance=instance, cursor=cursors[-1] if cursors else None, resources={"alert_webhook": webhook})
        sensor(context)
        cursors.append(context.cursor)
    assert [json.loads(cursor) for cursor in cursors] == [[], [SLUG], [SLUG]]
    assert len(receiver.requests) == 2  # refused, then delivered; nothing at the third tick
    logged = capfd.readouterr().err
    assert "late, alert not posted, will retry at the next tick" in logged and "HTTP 500" in logged
    assert "s3cr3t" not in logged
