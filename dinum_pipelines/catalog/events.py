"""The usage log: one row per dataset view and per file download, written by the request itself.

data.gouv.fr counts usage from its HTTP access logs (views, downloads, by channel); the catalog
records the same facts directly, so the metrics pipeline can aggregate them per day and month
without parsing logs. Rows are facts, never updated.

**A download is counted where the bytes are served, once.** The stable link
`/api/1/datasets/r/{rid}` redirects to the file; counting both the redirect and the file would
count one download twice. For a file the catalog hosts, the stable link therefore records
nothing and tags the redirect with `?via=permalink`, and the file endpoint records one download
on the "permalink" channel. For a remote resource (bytes served elsewhere) the stable link is
all the catalog sees, so it records the download itself. A client that keeps the tagged URL and
fetches it again is counted again, on the permalink channel, which is what it used.

**Event time** is the server's clock, except in a catalog started with the simulated clock
(`CatalogSettings.simulated_clock`, off by default) where a sysadmin's request may carry
`X-Dinum-Simulated-Time`: the load generator uses it to spread real requests over past days
(see metrics_api.SimulatedClock).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from dinum_pipelines.catalog.db import Database, datasets, events, utcnow
from dinum_pipelines.lib.metrics_schema import CHANNELS, DATASET_VIEW, RESOURCE_DOWNLOAD

__all__ = ["CHANNELS", "DATASET_VIEW", "PERMALINK_MARK", "RESOURCE_DOWNLOAD", "Events", "event_clock", "simulated_time"]

# The query parameter the stable link adds to the file URL it redirects to (see above).
PERMALINK_MARK = ("via", "permalink")
_EXPORT_BATCH = 5000

_simulated_now: ContextVar[datetime | None] = ContextVar("simulated_event_time", default=None)


@contextmanager
def simulated_time(when: datetime) -> Iterator[None]:
    """Within this block (this request), events are recorded as having happened at `when`."""
    if when.tzinfo is None:
        raise ValueError("a simulated time must carry its time zone")
    token = _simulated_now.set(when)
    try:
        yield
    finally:
        _simulated_now.reset(token)


def event_clock() -> datetime:
    return _simulated_now.get() or utcnow()


class Events:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
        self,
        kind: str,
        *,
        channel: str,
        user_agent: str | None,
        dataset_id: str | None = None,
        resource_id: str | None = None,
        organization_id: str | None = None,
    ) -> None:
        """Log one event; the organization defaults to the dataset's (looked up in the same insert)."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        organization: Any = organization_id
        if organization is None and dataset_id is not None:
            organization = select(datasets.c.organization_id).where(datasets.c.id == dataset_id).scalar_subquery()
        with self._db.write() as conn:
            conn.execute(
                insert(events).values(
                    occurred_at=event_clock(), kind=kind, channel=channel, user_agent=(user_agent or "")[:1000] or None,
                    dataset_id=dataset_id, resource_id=resource_id, organization_id=organization,
                )
            )

    def list(self, *, kind: str | None = None, since: datetime | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Events in the order they happened, optionally of one kind and after `since`."""
        query = select(events).order_by(events.c.id)
        if kind is not None:
            query = query.where(events.c.kind == kind)
        if since is not None:
            query = query.where(events.c.occurred_at > since)
        if limit is not None:
            query = query.limit(limit)
        with self._db.read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def between(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """Every event with `start <= occurred_at < end`, in id order, read in batches (keyset on
        id), so that an export of millions of rows neither holds one long read transaction nor
        loads them all."""
        last_id = 0
        while True:
            query = (
                select(events)
                .where(events.c.occurred_at >= start, events.c.occurred_at < end, events.c.id > last_id)
                .order_by(events.c.id)
                .limit(_EXPORT_BATCH)
            )
            with self._db.read() as conn:
                batch = [dict(row) for row in conn.execute(query).mappings()]
            yield from batch
            if len(batch) < _EXPORT_BATCH:
                return
            last_id = batch[-1]["id"]
