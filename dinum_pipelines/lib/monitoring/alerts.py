"""Telling people when a dataset was not published, or is late: a message to a chat incoming webhook.

Etalab teams read Mattermost and Tchap. Both accept the same incoming-webhook body, a JSON
object whose `text` is Markdown (Mattermost natively; Tchap/Matrix through its hookshot bridge),
with an optional `username`. So one payload serves both.

A webhook URL is a secret: whoever holds it can post to the channel. It is read from the
environment, and errors name only its scheme and host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

import requests

WEBHOOK_USERNAME = "dinum_pipelines"
# A chat message stays readable: long explanations are cut, the run page has the rest.
MAX_DETAIL_CHARS = 600


class AlertDeliveryError(RuntimeError):
    """The webhook could not be reached or refused the message (the URL's secret part is not shown)."""


@dataclass(frozen=True)
class FailedCheck:
    name: str
    description: str


@dataclass(frozen=True)
class FailedStep:
    step: str
    message: str


@dataclass(frozen=True)
class FailureAlert:
    """Why one run of one dataset did not publish."""

    dataset: str
    run_id: str
    title: str | None = None
    run_url: str | None = None
    # Blocking quality checks that failed (the data was wrong): publication was refused.
    blocked_by: list[FailedCheck] = field(default_factory=list)
    # Steps that crashed (source down, unreadable file...), besides the blocked checks.
    errors: list[FailedStep] = field(default_factory=list)

    @property
    def headline(self) -> str:
        what = "publication bloquée par le contrôle qualité" if self.blocked_by else "échec de la mise à jour"
        name = f"{self.title} (`{self.dataset}`)" if self.title else f"`{self.dataset}`"
        return f"{name} : {what}"


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"


def webhook_message(alert: FailureAlert) -> dict[str, str]:
    """The Mattermost / Tchap incoming-webhook body for `alert`."""
    lines = [f"#### :rotating_light: {alert.headline}"]
    for check in alert.blocked_by:
        lines.append(f"- contrôle `{check.name}` : {_shorten(check.description)}")
    for error in alert.errors:
        lines.append(f"- étape `{error.step}` : {_shorten(error.message)}")
    lines.append("La version publiée précédente reste en ligne, inchangée.")
    lines.append(f"Run [{alert.run_id[:8]}]({alert.run_url})" if alert.run_url else f"Run `{alert.run_id}`")
    return {"username": WEBHOOK_USERNAME, "text": "\n".join(lines)}


@dataclass(frozen=True)
class LateAlert:
    """A dataset past its declared frequency plus udata's tolerance (lib/monitoring/freshness.py)."""

    dataset: str
    title: str
    frequency: str
    last_update: datetime
    late_since: datetime
    asset_url: str | None = None

    @property
    def headline(self) -> str:
        return f"{self.title} (`{self.dataset}`) : mise à jour en retard"


def late_message(alert: LateAlert) -> dict[str, str]:
    """The Mattermost / Tchap incoming-webhook body for a late dataset."""
    lines = [
        f"#### :hourglass: {alert.headline}",
        f"- fréquence déclarée : `{alert.frequency}`",
        f"- dernière publication : {alert.last_update:%d/%m/%Y %H:%M} UTC",
        f"- en retard depuis le {alert.late_since:%d/%m/%Y %H:%M} UTC (fréquence plus un jour de tolérance, comme data.gouv.fr)",
    ]
    if alert.asset_url:
        lines.append(f"[Voir dans Dagster]({alert.asset_url})")
    return {"username": WEBHOOK_USERNAME, "text": "\n".join(lines)}


def redacted(url: str) -> str:
    """`https://chat.example/hooks/<secret>` -> `https://chat.example/…`."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/…"


def post_webhook(url: str, message: dict[str, str], *, session: requests.Session | None = None, timeout: float = 10.0) -> None:
    """POST `message` as JSON to the incoming webhook at `url`; any failure is an AlertDeliveryError."""
    poster = session or requests.Session()
    try:
        response = poster.post(url, json=message, timeout=timeout)
    except requests.RequestException as exc:
        # The exception's text holds the full URL: only its class is kept.
        raise AlertDeliveryError(f"webhook at {redacted(url)} unreachable ({type(exc).__name__})") from None
    if not 200 <= response.status_code < 300:
        raise AlertDeliveryError(f"webhook at {redacted(url)} answered HTTP {response.status_code}")
