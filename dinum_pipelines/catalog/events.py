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
(see metrics_api.SimulatedClock). The time is taken when the request records the event, not when
the row is written.

**Rows are written off the request path, in groups.** Every API read of a dataset is a view, so
a write transaction per GET made views the catalog's bottleneck (on SQLite all writers take one
lock: bench/README.md). A request only appends its event to this process's queue; one writer
thread inserts everything queued in one transaction (on PostgreSQL, one COPY: _DriverInsert),
then waits `commit_interval` (5 ms on SQLite, 20 ms on PostgreSQL) to let the next group gather. What that
guarantees:

- in this process, reading the log (`list`, `between`, hence the export `GET /api/1/events/`)
  first waits until every event queued before the read is committed: a test or the metrics
  pipeline sees exactly what was recorded before it asked;
- closing the store (the server's lifespan shutdown, `RunningCatalog.stop`) drains the queue:
  a clean shutdown loses nothing;
- **a crash can lose the last few milliseconds of events**: a `kill -9`, an out-of-memory kill or
  a power loss drops what was queued but not yet committed (at most one `commit_interval` plus
  one insert, typically a few tens of ms of views). Usage counts tolerate that; they were never exact
  (data.gouv.fr drops log lines at the proxy too);
- with several worker processes (`serve --workers N`) each has its own queue: an export served by
  one worker sees the other workers' events once their writer has committed them, a few tens
  of milliseconds later. The metrics pipeline exports closed windows (the previous day), which
  are complete long before.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, insert, select
from sqlalchemy.engine import Connection, Dialect

from dinum_pipelines.catalog.db import Database, datasets, events, utcnow
from dinum_pipelines.lib.metrics.schema import CHANNELS, DATASET_VIEW, RESOURCE_DOWNLOAD

__all__ = ["CHANNELS", "DATASET_VIEW", "PERMALINK_MARK", "RESOURCE_DOWNLOAD", "Events", "event_clock", "simulated_time"]

# The query parameter the stable link adds to the file URL it redirects to (see above).
PERMALINK_MARK = ("via", "permalink")
_EXPORT_BATCH = 5000
_log = logging.getLogger(__name__)

# The writer's pause before a group (see above), SQLite's and PostgreSQL's. A PostgreSQL commit
# costs the server ~0.4 ms whatever its size: at 7,500 views a second a worker's groups of 5 ms
# (~40 events) cost it 12 µs an event, groups of 100 or more 5 µs (bench/README.md).
SQLITE_COMMIT_INTERVAL = 0.005
POSTGRESQL_COMMIT_INTERVAL = 0.02

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
    """The usage log of one process: `record` queues, a writer thread commits in groups (see above)."""

    def __init__(self, db: Database, *, commit_interval: float | None = None) -> None:
        self._db = db
        if commit_interval is None:
            on_postgresql = db.engine.dialect.name == "postgresql"
            commit_interval = POSTGRESQL_COMMIT_INTERVAL if on_postgresql else SQLITE_COMMIT_INTERVAL
        self._commit_interval = commit_interval
        self._insert = _DriverInsert(db.engine.dialect)
        self._changed = threading.Condition()
        self._pending: list[dict[str, Any]] = []
        self._queued = 0  # events ever queued, in this process
        self._settled = 0  # events ever committed or given up on (after a failed insert)
        self._hurry = False  # a reader is waiting: skip the gathering pause
        self._closing = False
        self._writer: threading.Thread | None = None

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
        """Queue one event, dated now (or at the simulated time); the organization defaults to the dataset's."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        row = {
            "occurred_at": event_clock(), "kind": kind, "channel": channel,
            "user_agent": (user_agent or "")[:1000] or None, "dataset_id": dataset_id, "resource_id": resource_id,
            "given_organization_id": organization_id, "organization_of_dataset": dataset_id,
        }
        with self._changed:
            if self._closing:
                raise RuntimeError("the usage log is closed")
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_groups, name="catalog-events-writer", daemon=True)
                self._writer.start()
            self._pending.append(row)
            self._queued += 1
            if len(self._pending) == 1:  # the writer waits for a first event; a group's pause is not cut short
                self._changed.notify_all()

    def flush(self) -> None:
        """Return once every event queued so far (in this process) is in the database."""
        with self._changed:
            target = self._queued
            self._hurry = True
            self._changed.notify_all()
            while self._settled < target:
                self._changed.wait()

    def close(self) -> None:
        """Write what is queued, then stop the writer; later `record` calls fail."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
            writer = self._writer
        if writer is not None:
            writer.join()

    def _write_groups(self) -> None:
        while True:
            with self._changed:
                while not self._pending and not self._closing:
                    self._changed.wait()
                if not self._pending:
                    return  # closing, and nothing left
                # Let the group gather; only a flush or close cuts the pause short (each event
                # woke the writer before: a transaction per event or two under load).
                deadline = time.monotonic() + self._commit_interval
                while not (self._hurry or self._closing) and (left := deadline - time.monotonic()) > 0:
                    self._changed.wait(left)
                group, self._pending = self._pending, []
                self._hurry = False
            try:
                with self._db.write(changes_data=False) as conn:
                    self._insert.execute_many(conn, group)
            except Exception:
                _log.exception("usage log: %d events could not be written and are lost", len(group))
            with self._changed:
                self._settled += len(group)
                self._changed.notify_all()

    def list(self, *, kind: str | None = None, since: datetime | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Events in the order they happened, optionally of one kind and after `since`."""
        self.flush()
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
        loads them all. Events queued before the call are written first."""
        self.flush()
        return self._read_between(start, end)

    def _read_between(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
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


# The fields of a queued event (the rows `record` makes), each with the type its column has.
_FIELDS = {
    **{name: events.c[name].type for name in ("occurred_at", "kind", "channel", "user_agent", "dataset_id", "resource_id")},
    "given_organization_id": events.c.organization_id.type,
    "organization_of_dataset": datasets.c.id.type,
}


def _event_values(field: Callable[[str], ColumnElement[Any]]) -> dict[str, ColumnElement[Any]]:
    """The columns of an event's row, from its fields as `field(name)` reads them in SQL: as
    recorded, but the organization is the dataset's unless one is given, looked up by the insert
    itself."""
    values = {name: field(name) for name in _FIELDS if name in events.c}
    values["organization_id"] = func.coalesce(
        field("given_organization_id"),
        select(datasets.c.organization_id).where(datasets.c.id == field("organization_of_dataset")).scalar_subquery(),
    )
    return values


class _DriverInsert:
    """A group's rows written by the driver in one pass, converted by SQLAlchemy's own bind
    processors for the fields' types.

    `Connection.execute(insert, rows)` built each row's parameters through the compiler's generic
    path (~20 µs a row in Python). At thousands of views per second, the writer thread held the
    GIL long enough to stall the event loop that answers the cached reads: their p99 was 20-58 ms,
    ~10 ms with no views recorded, 18-24 ms with this (bench/README.md).

    SQLite is sent the rows with one `executemany` of an `INSERT ... VALUES` whose organization
    is looked up by the insert itself (`_event_values`). PostgreSQL is sent them by one binary
    `COPY` into the table, after one `SELECT` of the organizations of the group's datasets, in
    the same transaction: the same values as the INSERT. It was one `INSERT ... SELECT` from
    `json_to_recordset` with the lookup as a subquery; at 14,000 cached dataset GETs a second
    (2 workers, 2 cores, bench/README.md) that cost PostgreSQL ~21 µs a view, 15% of the
    machine, and the GETs' p99 rose from 9 ms without views to 25-120 ms. Per 20,000 events in
    groups of 400 the server spends 90 ms on COPY against 240 ms on the INSERT, and psycopg's
    C writer adds each row without JSON.
    """

    def __init__(self, dialect: Dialect) -> None:
        self._convert = {
            name: processor
            for name, type_ in _FIELDS.items()
            if (processor := type_.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        self._copies = dialect.name == "postgresql"
        if self._copies:
            copied = [name for name in _FIELDS if name in events.c]
            self._copied = [*copied, "organization_id"]
            # psycopg names types as PostgreSQL does, without a length: "character varying"
            self._copy_types = [re.sub(r"\(.*\)", "", events.c[name].type.compile(dialect=dialect)).lower() for name in self._copied]
            self.sql = f"COPY {events.name} ({', '.join(self._copied)}) FROM STDIN (FORMAT BINARY)"
            self._organizations_sql = str(
                select(datasets.c.id, datasets.c.organization_id)
                .where(datasets.c.id == func.any(bindparam("ids")))
                .compile(dialect=dialect)
            )
            return
        statement = insert(events).inline().values(_event_values(lambda name: bindparam(name, type_=_FIELDS[name])))
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self._positional = compiled.positiontup  # parameter names in order, or None (named style)

    def execute_many(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        convert = self._convert
        driver_rows: list[Any] = [
            {name: convert[name](value) if name in convert else value for name, value in row.items()} for row in rows
        ]
        if self._copies:
            self._copy(connection, driver_rows)
            return
        if self._positional is not None:
            driver_rows = [tuple(row[name] for name in self._positional) for row in driver_rows]
        connection.exec_driver_sql(self.sql, driver_rows)

    def _copy(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        looked_up = {
            row["organization_of_dataset"] for row in rows
            if row["given_organization_id"] is None and row["organization_of_dataset"] is not None
        }
        organization_of = dict(connection.exec_driver_sql(self._organizations_sql, {"ids": list(looked_up)}).all()) if looked_up else {}
        fields = self._copied[:-1]
        with connection.connection.driver_connection.cursor() as cursor, cursor.copy(self.sql) as copy:
            copy.set_types(self._copy_types)
            for row in rows:
                given = row["given_organization_id"]
                organization = given if given is not None else organization_of.get(row["organization_of_dataset"])
                copy.write_row([*(row[name] for name in fields), organization])
