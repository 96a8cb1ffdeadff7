"""The usage log: one row per dataset view and per file download, written by the request itself.

data.gouv.fr counts usage from its HTTP access logs (views, downloads, by channel); the catalog
records the same facts directly, so the metrics pipeline can aggregate them per day and month
without parsing logs. Rows are facts, never updated.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from dinum_pipelines.catalog.db import Database, datasets, events, utcnow

DATASET_VIEW = "dataset.view"
RESOURCE_DOWNLOAD = "resource.download"
CHANNELS = ("web", "api", "permalink")


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
                    occurred_at=utcnow(), kind=kind, channel=channel, user_agent=(user_agent or "")[:1000] or None,
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
