"""Stale datasets in Dagster: a freshness policy on each published asset, and one alert per lateness.

Why a `FreshnessPolicy` (the 1.11+ kind) rather than freshness asset checks: Dagster's freshness
daemon (run by `dagster dev` and `dagster-daemon run`, on unless the instance sets
`freshness: enabled: false`) evaluates every policy and records each asset's freshness state
(PASS, WARN, FAIL) in the instance; the UI shows it on the asset's page and in the asset catalog,
with no run to launch. Freshness checks (`build_last_update_freshness_checks`) would need a
sensor to run them, and their failures would land in the quality report among the data's own
checks, where a source that is merely late would read as bad data.

The policy is udata's "updated on time" rule (lib/monitoring/freshness.py, the function the catalog's
quality criterion uses): WARN once the declared interval has passed since the last publication
(an update is due), FAIL past the interval plus udata's one-day tolerance (late). Dagster counts
from the published asset's last materialization, the catalog from the dataset's `last_update`:
both move only when the pipeline publishes changed data, within the same step. (Dagster fails at
the deadline's instant, udata just past it: the same second.)

The alert sensor reads those states, so it says what the UI says, and posts one message when a
dataset turns late; its cursor remembers which datasets were announced, until they are fresh again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg
from dagster._core.definitions.freshness import FreshnessState  # not exported by dagster 1.13

from dinum_pipelines.defs.alerts import ALERT_WEBHOOK_VAR, AlertWebhook
from dinum_pipelines.defs.keys import published_key
from dinum_pipelines.lib.monitoring.alerts import AlertDeliveryError, LateAlert, late_message, post_webhook
from dinum_pipelines.lib.monitoring.freshness import late_since, update_window
from dinum_pipelines.lib.declare.registry import DatasetSpec

FRESHNESS_SENSOR_INTERVAL_SECONDS = 5 * 60


def freshness_policy(frequency: str) -> dg.FreshnessPolicy | None:
    """The published asset's policy for a udata frequency; None for frequencies with no rhythm."""
    window = update_window(frequency)
    if window is None:
        return None
    return dg.FreshnessPolicy.time_window(fail_window=window.late_after, warn_window=window.expected)


def asset_url(dagster_url: str, key: dg.AssetKey) -> str:
    return f"{dagster_url.rstrip('/')}/assets/{'/'.join(key.path)}"


def late_alert(instance: dg.DagsterInstance, spec: DatasetSpec, dagster_url: str) -> LateAlert | None:
    key = published_key(spec.slug)
    event = instance.get_latest_materialization_event(key)
    if event is None:
        return None
    last_update = datetime.fromtimestamp(event.timestamp, UTC)
    deadline = late_since(spec.frequency, last_update)
    if deadline is None:
        return None
    return LateAlert(spec.slug, spec.title, spec.frequency, last_update, deadline, asset_url(dagster_url, key))


def build_freshness_alert_sensor(registry: dict[str, DatasetSpec]) -> dg.SensorDefinition:
    watched = {published_key(slug): spec for slug, spec in registry.items() if freshness_policy(spec.frequency)}

    @dg.sensor(
        name="freshness_alerts",
        minimum_interval_seconds=FRESHNESS_SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Posts one message to the team's chat webhook when a dataset's publication is late (its freshness fails).",
    )
    def freshness_alerts(context: dg.SensorEvaluationContext, alert_webhook: AlertWebhook) -> dg.SkipReason:
        announced = set(json.loads(context.cursor)) if context.cursor else set()
        states = context.instance.get_freshness_state_records(list(watched))
        late = {watched[key].slug for key, record in states.items() if record.freshness_state == FreshnessState.FAIL}
        posted = []
        for spec in watched.values():
            if spec.slug not in late or spec.slug in announced:
                continue
            alert = late_alert(context.instance, spec, alert_webhook.dagster_url)
            if alert is None:
                continue
            if not alert_webhook.url:
                context.log.info(f"no {ALERT_WEBHOOK_VAR} set; not posted: {alert.headline}")
            else:
                try:
                    post_webhook(alert_webhook.url, late_message(alert))
                except AlertDeliveryError as error:  # its message hides the webhook's secret
                    context.log.error(f"{spec.slug}: late, alert not posted, will retry at the next tick: {error}")
                    continue
                context.log.info(f"alert posted: {alert.headline}")
            posted.append(spec.slug)
        # A dataset fresh again leaves the cursor: its next lateness is announced again.
        context.update_cursor(json.dumps(sorted((announced & late) | set(posted))))
        if posted:
            return dg.SkipReason(f"late, announced: {', '.join(posted)}")
        return dg.SkipReason(f"{len(late)} late dataset(s), all already announced" if late else "no dataset is late")

    return freshness_alerts
