"""Automation the Dagster way: the declared conditions evaluated by Dagster at simulated times,
with real runs in between; the download retry policy; the run tags the queue limits."""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from dinum_pipelines.catalog import CatalogSettings, serve_in_thread
from dinum_pipelines.defs.automation import DOWNLOAD_RETRY_POLICY, RUN_RETRY_TAGS, sensor_name
from dinum_pipelines.defs.keys import QUALITY_CHECK_NAME, clean_key, job_name, published_key, raw_key
from dinum_pipelines.definitions import build_definitions
from dinum_pipelines.demo.runner import bootstrap_demo_publisher
from dinum_pipelines.lib.monitoring.freshness import cron_for_frequency
from dinum_pipelines.lib.declare.registry import load_registry
from dinum_pipelines_tests.conftest import VALID_DATASET
from dinum_pipelines_tests.defs.test_alerts import BAD_CODES, RULES, SLUG
from dinum_pipelines_tests.defs.test_quality_report import GOOD_CODES
from dinum_pipelines_tests.httpserver import Reply, ScriptedServer

PARIS = ZoneInfo("Europe/Paris")
CHAIN = (raw_key(SLUG), clean_key(SLUG), published_key(SLUG))
CHECK = dg.AssetCheckKey(clean_key(SLUG), QUALITY_CHECK_NAME)


@pytest.fixture
def setup(write_registry, monkeypatch, tmp_path):
    with ScriptedServer() as source, serve_in_thread(CatalogSettings.in_directory(tmp_path / "catalog")) as catalog:
        key = bootstrap_demo_publisher(catalog.store, "bot@test.local", {"org-test": "Organisation de test"})
        folder = write_registry({SLUG: VALID_DATASET.format(slug=SLUG, url=f"{source.url}/codes.csv") + RULES})
        monkeypatch.setenv("DINUM_SOURCES_DIR", str(folder))
        monkeypatch.setenv("DINUM_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("DINUM_CATALOG_URL", catalog.url)
        monkeypatch.setenv("DINUM_CATALOG_API_KEY", key)
        with dg.instance_for_test() as instance:
            yield source, build_definitions(str(folder)), instance


def requested(result) -> set[dg.AssetKey | dg.AssetCheckKey]:
    return {r.key for r in result.results if r.key in (*CHAIN, CHECK) and r.true_subset.size}


def gates(result) -> tuple[bool, bool]:
    """Whether the published asset's two conditions hold: (its clean table changed, the checks passed)."""
    (published,) = [r for r in result.results if r.key == published_key(SLUG)]
    changed, checked = published.serializable_evaluation.child_evaluations
    return changed.true_subset.size > 0, checked.true_subset.size > 0


def test_the_chain_runs_on_its_frequency_and_publishes_only_what_passed_its_checks(setup):
    source, defs, instance = setup
    job = defs.resolve_job_def(job_name(SLUG))
    assert cron_for_frequency("monthly") == "0 6 1 * *"  # the dataset's frequency

    def tick(result, *when):
        return dg.evaluate_automation_conditions(
            defs, instance, cursor=result.cursor if result else None, evaluation_time=datetime(*when, tzinfo=PARIS)
        )

    result = tick(None, 2026, 11, 30, 12)
    assert requested(result) == set()
    # The 1st at 06:00 Paris time: the download, cleaning and its check in one run; publication
    # waits for the check's verdict.
    result = tick(result, 2026, 12, 1, 6, 1)
    assert requested(result) == {raw_key(SLUG), clean_key(SLUG), CHECK}
    assert requested(tick(result, 2026, 12, 1, 6, 2)) == set()  # one request per tick of the cron

    # That run, for real, with data a blocking check refuses: the table changed, but is not published.
    source.plan(Reply(200, BAD_CODES))
    refused = job.execute_in_process(instance=instance, asset_selection=[raw_key(SLUG), clean_key(SLUG)], raise_on_error=False)
    assert not refused.success and refused.asset_materializations_for_node(f"{SLUG}__clean")
    result = tick(result, 2026, 12, 1, 6, 3)
    assert requested(result) == set() and gates(result) == (True, False)

    # The administration fixes its file: the table passes its checks, and the next tick publishes it.
    source.plan(Reply(200, GOOD_CODES))
    assert job.execute_in_process(instance=instance, asset_selection=[raw_key(SLUG), clean_key(SLUG)]).success
    result = tick(result, 2026, 12, 1, 6, 4)
    assert requested(result) == {published_key(SLUG)} and gates(result) == (True, True)

    # A whole run of the job (as the source-change sensor starts it) leaves nothing for the next tick.
    source.plan(Reply(200, GOOD_CODES + b"13055;870000\n"))
    assert job.execute_in_process(instance=instance).success
    assert requested(tick(result, 2026, 12, 1, 6, 5)) == set()

    # The runs' tags: the per-administration limit of the run queue, and run retries.
    assert refused.dagster_run.tags["dinum/organization"] == "org-test"
    assert {name: refused.dagster_run.tags[name] for name in RUN_RETRY_TAGS} == RUN_RETRY_TAGS


def test_downloads_retry_with_backoff_and_jitter_but_not_a_permanent_failure(setup, monkeypatch):
    source, defs, instance = setup
    raw = next(a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and raw_key(SLUG) in a.keys)
    policy = raw.op.retry_policy
    assert policy is DOWNLOAD_RETRY_POLICY
    assert (policy.backoff, policy.jitter, policy.max_retries, policy.delay) == (dg.Backoff.EXPONENTIAL, dg.Jitter.PLUS_MINUS, 3, 30)
    # A 404 stops at once: the step fails without a retry (and without waiting for one).
    source.plan(Reply(404, b"gone"))
    result = defs.resolve_job_def(job_name(SLUG)).execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success and retries(result) == 0
    assert len([r for r in source.requests if r["method"] == "GET"]) == 1

    # A download cut short is tried again, and the second attempt stores the file (the same
    # policy with a delay of a fifth of a second rather than 30 s, for the test's sake).
    monkeypatch.setattr(
        "dinum_pipelines.defs.ingest.assets.DOWNLOAD_RETRY_POLICY",
        dg.RetryPolicy(max_retries=3, delay=0.2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
    )
    quick = build_definitions()  # the registry of DINUM_SOURCES_DIR
    source.plan(Reply(200, GOOD_CODES[:20], declared_length=len(GOOD_CODES)), Reply(200, GOOD_CODES))
    result = quick.resolve_job_def(job_name(SLUG)).execute_in_process(instance=instance, asset_selection=[raw_key(SLUG)])
    assert result.success and retries(result) == 1
    (stored,) = result.asset_materializations_for_node(f"{SLUG}__raw")
    assert stored.metadata["size_bytes"].value == len(GOOD_CODES)


def retries(result) -> int:
    return sum(event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for event in result.all_events)


def test_one_automation_sensor_per_administration_tags_its_runs():
    registry = load_registry()
    defs = build_definitions()
    sensors = {s.name: s for s in defs.sensors if isinstance(s, dg.AutomationConditionSensorDefinition)}
    organizations = {spec.organization.slug for spec in registry.values()}
    assert set(sensors) == {sensor_name(slug) for slug in organizations}
    for slug in organizations:
        sensor = sensors[sensor_name(slug)]
        assert sensor.run_tags == {"dinum/organization": slug, **RUN_RETRY_TAGS}
        assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    dataset_jobs = {job_name(slug) for slug in registry}
    assert not [s for s in defs.schedules or [] if s.job_name in dataset_jobs]  # no hand-made schedule left
