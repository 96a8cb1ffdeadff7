"""Alerts: a chat message when a dataset's run fails, whether its data was blocked or a step crashed.

A blocking quality check that fails with ERROR fails the run, so one run-failure sensor covers
both a refused publication and a source that could not be fetched or read. The message is built
from the run's own events (the failed checks' descriptions, the steps' errors), so it says what
the Dagster UI says. Without a webhook URL the sensor only logs that it has nowhere to post.
"""

import os

import dagster as dg
from dagster_shared.error import SerializableErrorInfo

from dinum_pipelines.defs.keys import job_name
from dinum_pipelines.lib.monitoring.alerts import FailedCheck, FailedStep, FailureAlert, post_webhook, webhook_message
from dinum_pipelines.lib.declare.registry import DatasetSpec

ALERT_WEBHOOK_VAR = "DINUM_ALERT_WEBHOOK_URL"
DAGSTER_URL_VAR = "DINUM_DAGSTER_URL"
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"


class AlertWebhook(dg.ConfigurableResource):
    """Where failure alerts go: a Mattermost or Tchap incoming webhook (empty: alerts only logged)."""

    url: str = ""
    # The Dagster UI's address, for the link to the failed run.
    dagster_url: str = DEFAULT_DAGSTER_URL


def alert_webhook_from_env() -> AlertWebhook:
    dagster_url = os.environ.get(DAGSTER_URL_VAR, DEFAULT_DAGSTER_URL)
    if os.environ.get(ALERT_WEBHOOK_VAR):
        return AlertWebhook(url=dg.EnvVar(ALERT_WEBHOOK_VAR), dagster_url=dagster_url)
    return AlertWebhook(dagster_url=dagster_url)


def _root_cause(error: SerializableErrorInfo) -> str:
    """The user code's own message rather than Dagster's "error occurred while executing op" wrapper."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def failure_alert(context: dg.RunFailureSensorContext, spec: DatasetSpec, dagster_url: str) -> FailureAlert:
    run = context.dagster_run
    evaluations = [
        record.dagster_event.event_specific_data
        for record in context.instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    ]
    blocked = [e for e in evaluations if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    # A blocked check also fails its step with a generic message; the check's own description says more.
    blocked_steps = {f"{'__'.join(e.asset_key.path)}_{e.check_name}" for e in blocked}
    errors = [
        FailedStep(event.step_key or "run", _root_cause(event.event_specific_data.error))
        for event in context.get_step_failure_events()
        if event.event_specific_data and event.event_specific_data.error and event.step_key not in blocked_steps
    ]
    if not blocked and not errors:
        errors = [FailedStep("run", context.failure_event.message or "the run failed")]
    return FailureAlert(
        dataset=spec.slug,
        title=spec.title,
        run_id=run.run_id,
        run_url=f"{dagster_url.rstrip('/')}/runs/{run.run_id}",
        blocked_by=[FailedCheck(e.check_name, e.description or "failed") for e in blocked],
        errors=errors,
    )


def build_failure_alert_sensor(registry: dict[str, DatasetSpec]) -> dg.SensorDefinition:
    specs_by_job = {job_name(slug): spec for slug, spec in registry.items()}

    @dg.run_failure_sensor(
        name="failure_alerts",
        description="Posts a message to the team's chat webhook when a dataset's run fails or is blocked.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def failure_alerts(context: dg.RunFailureSensorContext, alert_webhook: AlertWebhook) -> None:
        spec = specs_by_job.get(context.dagster_run.job_name)
        if spec is None:
            return  # not a dataset's job (metrics, ad-hoc runs): their failures show in the UI
        alert = failure_alert(context, spec, alert_webhook.dagster_url)
        if not alert_webhook.url:
            context.log.info(f"no {ALERT_WEBHOOK_VAR} set; not posted: {alert.headline}")
            return
        post_webhook(alert_webhook.url, webhook_message(alert))
        context.log.info(f"alert posted: {alert.headline}")

    return failure_alerts
