"""Has a source changed, how often should we look, and when is a dataset late? Cheap answers before any download.

Lateness has one rule (`update_window`, `is_late`): udata's "updated on time" quality criterion,
which the catalog scores and the pipeline's Dagster freshness policies follow, so that a dataset
late in the catalog is stale in Dagster, and the other way round.

The sensor asks each administration's server with a conditional HEAD request (our stored
`ETag` / `Last-Modified`), so an unchanged source costs one tiny request and no run. Servers that
ignore conditional requests are judged on the validators they send back; for a server that
sends none, only a changed length counts, and the dataset's cron (defs/automation.py) does the full download.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import requests

from dinum_pipelines.lib.storage.rawstore import RawVersion
from dinum_pipelines.lib.declare.vocabularies import FREQUENCIES

# udata tolerates one day of lateness (harvesting delays), whatever the frequency.
LATENESS_TOLERANCE = timedelta(days=1)
# Frequencies without a rhythm to keep: udata deems them always on time.
ALWAYS_ON_TIME = frozenset({"continuous", "irregular", "punctual"})

# udata frequency id -> cron (Europe/Paris). Frequencies with no rhythm (punctual, irregular,
# unknown, continuous...) get no cron: the change sensor covers them.
FREQUENCY_CRONS: dict[str, str] = {
    "oneMinute": "* * * * *",
    "fiveMinutes": "*/5 * * * *",
    "tenMinutes": "*/10 * * * *",
    "fifteenMinutes": "*/15 * * * *",
    "thirtyMinutes": "*/30 * * * *",
    "hourly": "0 * * * *",
    "bihourly": "0 */2 * * *",
    "trihourly": "0 */3 * * *",
    "twelveHours": "0 */12 * * *",
    "severalTimesADay": "0 */6 * * *",
    "threeTimesADay": "0 */8 * * *",
    "semidaily": "0 6,18 * * *",
    "daily": "0 6 * * *",
    "fiveTimesAWeek": "0 6 * * 1-5",
    "threeTimesAWeek": "0 6 * * 1,3,5",
    "semiweekly": "0 6 * * 1,4",
    "weekly": "0 6 * * 1",
    "biweekly": "0 6 1,15 * *",
    "threeTimesAMonth": "0 6 1,11,21 * *",
    "semimonthly": "0 6 1,15 * *",
    "monthly": "0 6 1 * *",
    "bimonthly": "0 6 1 */2 *",
    "quarterly": "0 6 1 */3 *",
    "threeTimesAYear": "0 6 1 */4 *",
    "semiannual": "0 6 1 */6 *",
    "annual": "0 6 1 1 *",
    "biennial": "0 6 1 1 *",
    "triennial": "0 6 1 1 *",
    "quadrennial": "0 6 1 1 *",
    "quinquennial": "0 6 1 1 *",
    "decennial": "0 6 1 1 *",
    "bidecennial": "0 6 1 1 *",
    "tridecennial": "0 6 1 1 *",
}


def cron_for_frequency(frequency: str) -> str | None:
    return FREQUENCY_CRONS.get(frequency)


@dataclass(frozen=True)
class UpdateWindow:
    """How long after its last update a dataset stays on time: its declared interval (an update is
    then due), plus udata's tolerance (past both, it is late)."""

    expected: timedelta
    tolerance: timedelta = LATENESS_TOLERANCE

    @property
    def late_after(self) -> timedelta:
        return self.expected + self.tolerance


def update_window(frequency: str | None) -> UpdateWindow | None:
    """The window of a udata frequency id; None for frequencies with no rhythm (never late)."""
    _label, expected = FREQUENCIES.get(frequency or "unknown", (None, None))
    return None if expected is None else UpdateWindow(expected)


def late_since(frequency: str | None, last_update: datetime | None) -> datetime | None:
    """From when a dataset last updated at `last_update` is late (None: it never is)."""
    window = update_window(frequency)
    return None if window is None or last_update is None else last_update + window.late_after


def is_late(frequency: str | None, last_update: datetime | None, now: datetime) -> bool:
    """udata's rule: late once `now` is past the last update plus the interval plus the tolerance."""
    deadline = late_since(frequency, last_update)
    return deadline is not None and now > deadline


def updated_on_time(frequency: str | None, last_update: datetime | None, now: datetime) -> bool:
    """udata's `update_fulfilled_in_time` criterion: not late; without a rhythm or a last update,
    only the frequencies that promise none count as on time."""
    if late_since(frequency, last_update) is None:
        return frequency in ALWAYS_ON_TIME
    return not is_late(frequency, last_update, now)


@dataclass(frozen=True)
class Probe:
    changed: bool
    reason: str
    # Identifies the version the server announced (for idempotent run keys); None if unknown.
    version_token: str | None = None


def probe_source(session: requests.Session, url: str, latest: RawVersion | None, timeout: float = 30) -> Probe:
    """Ask the server whether the source differs from `latest`, without downloading it."""
    if latest is None:
        return Probe(True, "never downloaded", "first")
    try:
        response = session.head(url, headers=latest.validators.request_headers(), timeout=timeout, allow_redirects=True)
    except requests.RequestException as exc:
        return Probe(False, f"server unreachable ({type(exc).__name__}); will retry at the next tick")
    if response.status_code == 304:
        return Probe(False, "304 Not Modified")
    if response.status_code >= 400:
        return Probe(False, f"HEAD answered HTTP {response.status_code}; will retry at the next tick")
    etag, modified = response.headers.get("etag"), response.headers.get("last-modified")
    length = response.headers.get("content-length")
    if etag or modified:
        same = (etag or None) == latest.headers.get("etag") and (modified or None) == latest.headers.get("last-modified")
        if same:
            return Probe(False, "same ETag and Last-Modified as the stored version")
        return Probe(True, f"validators changed (ETag {etag}, Last-Modified {modified})", etag or modified)
    if length is not None and length != latest.headers.get("content-length"):
        return Probe(True, f"no validators from the server, but the length changed to {length}", f"length:{length}")
    # Without validators, only a download can tell; that is the cron's job, not every tick's.
    return Probe(False, "the server sends no ETag or Last-Modified; left to the dataset's cron")
