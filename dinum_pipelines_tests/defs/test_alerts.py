"""Failure alerts: a real blocked run and a real crashed run, posted to a webhook receiver on loopback."""

import json

import dagster as dg
import pytest

from dinum_pipelines.defs.alerts import AlertWebhook
from dinum_pipelines.defs.keys import job_name
from dinum_pipelines.definitions import build_definitions
from dinum_pipelines.lib.monitoring.alerts import AlertDeliveryError, FailureAlert, post_webhook, webhook_message
from dinum_pipelines_tests.conftest import VALID_DATASET
from dinum_pipelines_tests.httpserver import Reply, ScriptedServer

SLUG = "codes_communes"
RULES = """\
columns:
  - {name: code_commune, type: string, pattern: '^(\\d{5}|2[AB]\\d{3})$'}
  - {name: population, type: integer}
"""
BAD_CODES = "code_commune;population\n01053;41000\n2C247;12\n75056;2100000\n".encode("cp1252")
SECRET_PATH = "/hooks/s3cr3t-t0ken"


@pytest.fixture
def source():
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def receiver():
    with ScriptedServer() as server:
        yield server


def run_failed_job(write_registry, monkeypatch, tmp_path, source):
    folder = write_registry({SLUG: VALID_DATASET.format(slug=SLUG, url=f"{source.url}/codes.csv") + RULES})
    monkeypatch.setenv("DINUM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DINUM_CATALOG_API_KEY", "unused-the-run-stops-before-publishing")
    defs = build_definitions(str(folder))
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def(job_name(SLUG)).execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    sensor = next(s for s in defs.sensors if s.name == "failure_alerts")
    return sensor, instance, result


def evaluate(sensor, instance, result, webhook: AlertWebhook) -> None:
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"alert_webhook": webhook},
    ).for_run_failure()
    sensor(context)


def posted_text(receiver) -> str:
    (request,) = receiver.requests
    assert request["method"] == "POST" and request["path"] == SECRET_PATH
    assert request["content-type"] == "application/json"
    body = json.loads(request["body"])
    assert body["username"] == "dinum_pipelines"
    return body["text"]


def test_blocked_publication_posts_the_failed_rule_to_the_webhook(write_registry, monkeypatch, tmp_path, source, receiver):
    source.plan(Reply(200, BAD_CODES, {"Content-Type": "text/csv"}))
    sensor, instance, result = run_failed_job(write_registry, monkeypatch, tmp_path, source)
    receiver.plan(Reply(200, b"ok"))
    evaluate(sensor, instance, result, AlertWebhook(url=receiver.url + SECRET_PATH, dagster_url="http://dagster.test"))

    text = posted_text(receiver)
    assert f"(`{SLUG}`) : publication bloquée par le contrôle qualité" in text
    assert "code_commune" in text and "2C247" in text
    assert f"http://dagster.test/runs/{result.run_id}" in text
    assert "étape" not in text  # the check's own words, not the generic step failure


def test_source_down_posts_the_step_error(write_registry, monkeypatch, tmp_path, source, receiver):
    source.plan(*[Reply(404, b"gone")] * 6)
    sensor, instance, result = run_failed_job(write_registry, monkeypatch, tmp_path, source)
    receiver.plan(Reply(200, b"ok"))
    evaluate(sensor, instance, result, AlertWebhook(url=receiver.url + SECRET_PATH))

    text = posted_text(receiver)
    assert "échec de la mise à jour" in text
    assert "HTTP 404" in text and f"{source.url}/codes.csv" in text


def test_no_webhook_configured_posts_nothing(write_registry, monkeypatch, tmp_path, source, receiver):
    source.plan(Reply(200, BAD_CODES))
    sensor, instance, result = run_failed_job(write_registry, monkeypatch, tmp_path, source)
    evaluate(sensor, instance, result, AlertWebhook())
    assert receiver.requests == []


def test_a_refusing_webhook_is_an_error_that_hides_the_secret(receiver):
    receiver.plan(Reply(403, b"invalid webhook"))
    with pytest.raises(AlertDeliveryError) as error:
        post_webhook(receiver.url + SECRET_PATH, webhook_message(FailureAlert(dataset=SLUG, run_id="r1")))
    assert "HTTP 403" in str(error.value) and "s3cr3t" not in str(error.value)


def test_an_unreachable_webhook_is_an_error_that_hides_the_secret():
    with pytest.raises(AlertDeliveryError) as error:
        post_webhook("http://127.0.0.1:9" + SECRET_PATH, {"text": "x"}, timeout=2)
    assert "unreachable" in str(error.value) and "s3cr3t" not in str(error.value)
    assert error.value.__suppress_context__  # tracebacks do not show the original error and its URL
