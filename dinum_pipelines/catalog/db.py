"""The catalog's tables, the engine that opens them, and the two kinds of transaction we use.

SQLAlchemy Core with portable types only, so the same code runs on the default SQLite file and on
PostgreSQL for a shared deployment (chosen by URL). Columns that are filtered, sorted, joined or
unique are real columns; the rest of a dataset's or resource's udata document lives in a JSON
column, so adding a udata field needs no migration. The schema is alembic's (catalog/migrations/):
opening a database upgrades it to the latest revision, so a change to the tables below needs a
new revision too (test_migrations.py fails until the two agree).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from select import POLLIN, POLLPRI, poll
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection, Dialect, Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.types import TypeDecorator

from dinum_pipelines.catalog.memo import BoundedMemo
from dinum_pipelines.lib.metrics.schema import METRIC_MODELS

_log = logging.getLogger(__name__)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in the database.

    SQLite has no time zones and PostgreSQL's `timestamp` has none either: storing naive UTC
    everywhere makes both behave the same, and callers never see a naive datetime.
    """

    impl = DateTime()
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the catalog only stores aware datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


metadata = MetaData()

ID = String(24)  # ObjectId-shaped ids (see ids.py)
DEFAULT_LICENSE = "notspecified"  # udata's built-in default licence
LISTING_SORT_COLUMNS = ("created_at", "last_update", "last_modified", "title", "views")
# `id`: the ids that `tag`, `format` and `q` select, checked as live and public (revision 0009).
LISTING_FILTER_COLUMNS = ("organization_id", "license", "id")
# The filters' columns after `id`'s: a search checks each of its matches against them without
# reading the match's row (revision 0011; q with a licence: 3x faster at 100,000 datasets).
_BY_ID_COLUMNS = {"id": ("organization_id", "license")}
_LIVE = text("deleted_at IS NULL")  # not soft-deleted
# Off the public listing: private or soft-deleted. Few, as a rule: a filter's count subtracts them
# (listing.public_members). A query must write the condition as this text for SQLite to use the index.
UNLISTED = text("(private OR deleted_at IS NOT NULL)")  # parenthesized: it is ANDed with other conditions
UNLISTED_INDEX = "ix_datasets_unlisted"  # SQLite's queries name it (INDEXED BY): listing.public_members


def listing_index(column: str) -> str:
    """The name of the listing's index on `column` (one per LISTING_FILTER_COLUMNS)."""
    return f"ix_datasets_listed_with_{column}"

RESOURCE_ID = String(36)  # UUID strings

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("email", String(255), nullable=False, unique=True),
    Column("slug", String(255), nullable=False, unique=True),
    Column("first_name", String(255), nullable=False),
    Column("last_name", String(255), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("deleted_at", UtcDateTime),
)

organizations = Table(
    "organizations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("slug", String(255), nullable=False, unique=True),
    Column("name", String(350), nullable=False),
    Column("acronym", String(128)),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
    Column("deleted_at", UtcDateTime),
    Column("url", String(255)),
    Column("extras", JSON),
)

organization_members = Table(
    "organization_members",
    metadata,
    Column("organization_id", ID, ForeignKey("organizations.id"), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id"), primary_key=True, index=True),
    Column("role", String(16), nullable=False),  # admin | editor
    Column("since", UtcDateTime, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    # The first characters of the token, to let its owner recognise it in a list.
    Column("token_prefix", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
    Column("last_used_at", UtcDateTime),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", ID, primary_key=True),
    Column("slug", String(255), nullable=False, unique=True),
    Column("title", String(350), nullable=False),
    Column("description", Text, nullable=False),
    Column("organization_id", ID, ForeignKey("organizations.id")),
    Column("owner_id", ID, ForeignKey("users.id"), index=True),
    Column("private", Boolean, nullable=False, default=False),
    Column("deleted_at", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_modified", UtcDateTime, nullable=False),
    Column("last_update", UtcDateTime, nullable=False),
    # udata's `license` filter; the licence id lives here, not in `doc`.
    Column("license", String(64), nullable=False, server_default=DEFAULT_LICENSE),
    Column("doc", JSON, nullable=False),
    # A copy of doc["metrics"]["views"] (pushed by the metrics pipeline) for `sort=-views`.
    Column("views", BigInteger, nullable=False, server_default="0"),
    # The public listing (private = false, deleted_at IS NULL) in each column sort order, id last as
    # the tie-breaker: a page and its count read one index range, never the wide rows (see
    # bench/README.md: 10,000 datasets, 40 ms -> 1 ms per listing on SQLite). Partial, live rows
    # only: PostgreSQL reads an index in order only after equalities, and IS NULL is not one.
    *[
        Index(f"ix_datasets_live_by_{name}", "private", name, "id", sqlite_where=_LIVE, postgresql_where=_LIVE)
        for name in LISTING_SORT_COLUMNS
    ],
    # The filters on a column, listing columns next: without statistics SQLite prefers an index
    # matching two equalities to one matching one, so `organization = ?` alone lost to a listing
    # index and the count read every row (18 ms at 10,000 datasets; revision 0006).
    *[
        Index(listing_index(name), name, "private", "deleted_at", *_BY_ID_COLUMNS.get(name, ()))
        for name in LISTING_FILTER_COLUMNS
    ],
    Index(UNLISTED_INDEX, "id", sqlite_where=UNLISTED, postgresql_where=UNLISTED),
)

TERMS_BY_WORD_INDEX = "ix_dataset_terms_by_word"  # SQLite's queries name it (INDEXED BY): search.Match
# The index behind `q` (revision 0015, catalog/search.py): each dataset's searchable words, with
# their weight in it and whether it is on the public listing (search.index_dataset writes them).
# The ranked index reads a word's datasets in rank order; the key finds a dataset's own words.
dataset_terms = Table(
    "dataset_terms",
    metadata,
    Column("dataset_id", ID, ForeignKey("datasets.id"), primary_key=True),
    Column("term", String(64), primary_key=True),
    Column("listed", Boolean, nullable=False),
    Column("in_title", Boolean, nullable=False),
    Column("weight", Float, nullable=False),
    # The dataset's filters (revision 0017), copied as `listed` is (search.set_filters), for a search
    # with q to check each match in the word's index instead of looking it up (4.6 -> 0.4 ms for a
    # word and an organization at 100,000 datasets): its organization, its licence, and its
    # resources' formats, each between two search.FORMAT_SEPARATORs.
    Column("organization_id", ID),
    Column("license", String(64)),
    Column("formats", Text),
    Index("ix_dataset_terms_ranked", "term", "listed", "in_title", "weight", "dataset_id", "organization_id", "license", "formats"),
    # A search's other words, looked up for each match of the first (revision 0018): one word's rows
    # side by side, where the key spreads them over the whole table (two words at 100,000 datasets:
    # 8.7 -> 2.2 ms on SQLite).
    Index(TERMS_BY_WORD_INDEX, "term", "dataset_id", "in_title", "weight"),
    sqlite_with_rowid=False,
)
# How many listed datasets hold each word (revision 0019), kept with `dataset_terms` by the writes
# that change it (search.py): a one-word search's total and a several-word search's weights read
# in a row each, where counting a word's range of the ranked index took up to 38 ms for a common
# one at 100,000 datasets on PostgreSQL (bench/README.md).
term_counts = Table(
    "term_counts",
    metadata,
    Column("term", String(64), primary_key=True),
    Column("listed", Integer, nullable=False),
    sqlite_with_rowid=False,
)

# Each dataset's udata document as the API shows it, rendered by the transaction that last wrote
# the dataset (catalog/documents.py, revision 0016): a first answer reads it instead of the
# dataset's rows and resources and rendering them. `valid_until`: when its one clock-dependent
# field (the quality's `update_fulfilled_in_time`) turns; null if it never will. A dataset without
# a row here is rendered when read.
dataset_documents = Table(
    "dataset_documents",
    metadata,
    Column("dataset_id", ID, ForeignKey("datasets.id"), primary_key=True),
    Column("body", Text, nullable=False),
    Column("valid_until", UtcDateTime),
)


# One row per (dataset, tag): the portable way to filter on tags (no JSON operators needed).
dataset_tags = Table(
    "dataset_tags",
    metadata,
    Column("dataset_id", ID, ForeignKey("datasets.id"), primary_key=True),
    Column("tag", String(96), primary_key=True, index=True),
)

resources = Table(
    "resources",
    metadata,
    Column("id", RESOURCE_ID, primary_key=True),
    Column("dataset_id", ID, ForeignKey("datasets.id"), nullable=False),
    Column("position", Integer, nullable=False),
    # Storage key of a hosted file (filetype "file"); NULL for remote resources.
    Column("file_key", String(512), unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_modified", UtcDateTime, nullable=False),
    # A copy of `doc["format"]`, lower-cased, for udata's `format` filter on datasets.
    Column("format", String(64)),
    Column("doc", JSON, nullable=False),
    Index("ix_resources_dataset_position", "dataset_id", "position"),
    # Covering for the filter's subquery (format -> dataset ids) without reading the wide rows.
    Index("ix_resources_format_dataset", "format", "dataset_id"),
)

# Every file a hosted resource has had, the current one included (catalog/versions.py): a
# replaced file stays stored and downloadable at its version's URL (revision 0012).
resource_versions = Table(
    "resource_versions",
    metadata,
    Column("resource_id", RESOURCE_ID, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("dataset_id", ID, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("file_key", String(512), nullable=False, unique=True),
    Column("sha1", String(40), nullable=False),
    Column("sha256", String(64)),
    Column("filesize", BigInteger, nullable=False),
    Column("mime", String(255)),
    Column("format", String(64)),
    Column("changes", JSON),  # the publisher's summary of what changed since the version before
)

# Raw usage log, one row per dataset view or file download, written in the request itself. The
# metrics pipeline aggregates it (as data.gouv.fr aggregates its HAProxy logs); no foreign keys,
# so events outlive the objects they mention.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("occurred_at", UtcDateTime, nullable=False, index=True),
    # Read by time window only (events.py): other indexes would only slow the inserts (revision 0009).
    Column("kind", String(32), nullable=False),  # dataset.view | resource.download
    Column("dataset_id", ID),
    Column("resource_id", RESOURCE_ID),
    Column("organization_id", ID),
    Column("channel", String(16), nullable=False),  # web | api | permalink
    Column("user_agent", Text),
)

# Users with udata's sysadmin powers (export the usage log, push usage metrics). A table of its
# own rather than a column on `users`.
# One row counting the writes to what the API shows (not the usage log): a reader that finds the
# same number has nothing new to see, whichever process wrote (see catalog/response_cache.py).
data_version = Table(
    "data_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)

sysadmins = Table(
    "sysadmins",
    metadata,
    Column("user_id", ID, ForeignKey("users.id"), primary_key=True),
    Column("granted_at", UtcDateTime, nullable=False),
)

# Usage metrics pushed by the metrics pipeline (catalog/metrics_api.py), each table replaced whole
# by a push: the metric API's tables (columns named in lib/metrics/schema.py) and the
# organizations' `metrics` (datasets and resources keep theirs in `doc`).
metric_tables = {
    model.name: Table(
        f"metric_{model.name}",
        metadata,
        Column("row_id", Integer, primary_key=True, autoincrement=True),
        *[
            Column(name, BigInteger if name in model.count_columns else String(36), nullable=False, index=name in model.keys)
            for name in model.columns
        ],
        UniqueConstraint(*model.keys),
    )
    for model in METRIC_MODELS.values()
}
organization_metrics = Table(
    "organization_metrics",
    metadata,
    Column("organization_id", ID, primary_key=True),
    Column("metrics", JSON, nullable=False),
)

# Change notifications (catalog/notifications.py, webhooks.py, feeds.py; revision 0013): one row
# per publication (a file uploaded or replaced, a remote resource added or moved, a dataset
# created, changed or deleted), read by the Atom feeds; the reusers' webhook subscriptions; and
# one delivery per publication and subscription, which the delivery thread claims when it is due.
changes = Table(
    "changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("event", String(32), nullable=False),
    Column("dataset_id", ID, nullable=False, index=True),
    Column("organization_id", ID, index=True),
    Column("resource_id", RESOURCE_ID),
    # Whether the dataset was public and live when it changed: only those changes are in the feeds.
    Column("public", Boolean, nullable=False),
    # The webhook body (URLs absolute, as the publishing request named the catalog).
    Column("payload", JSON, nullable=False),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id"), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("dataset_id", ID, index=True),  # exactly one of the two
    Column("organization_id", ID, index=True),
    # The HMAC-SHA256 key of the signatures, kept to sign: shown to the subscriber once, never again.
    Column("secret", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", RESOURCE_ID, primary_key=True),  # a UUID: the X-Dinum-Delivery header
    Column("webhook_id", ID, ForeignKey("webhooks.id"), nullable=False, index=True),
    Column("change_id", Integer, ForeignKey("changes.id"), nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    # One {"at", "status_code", "error", "duration_ms"} per attempt, oldest first.
    Column("attempts", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # When a pending delivery is due; a claim moves it past the attempt (a lease), so that a
    # delivery claimed by a process that died is tried again once the lease is over.
    Column("next_attempt_at", UtcDateTime),
    Column("delivered_at", UtcDateTime),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

# Connections kept open per process: one per request thread (app.REQUEST_THREADS) plus the
# usage-log writer and a spare. SQLAlchemy's default (5, and 10 more opened and closed on demand)
# under 40 request threads made requests queue for a connection and reopen one (SQLite: its
# PRAGMAs each time): a third of a GET's time at 50 clients. The overflow serves other threads.
POOL_SIZE = 18
POOL_OVERFLOW = 8

# How often a process reads the data version while requests ask for it, and how old a reading
# it still answers from (_DataVersionWatch): another process's write reaches its
# anonymous readers after one poll, 10 ms, and never after more than the age limit. The margin
# is for a loaded machine, where a poll can wait tens of milliseconds for a core or a database
# backend: an older reading sends every request to the uncached path (PostgreSQL, 2 cores:
# warm GET p99 20 -> 90 ms with a 20 ms limit).
DATA_VERSION_POLL_SECONDS = 0.01
DATA_VERSION_MAX_AGE_SECONDS = 0.25

# The option write transactions set to take SQLite's write lock up front (see _configure_sqlite).
SQLITE_BEGIN_OPTION = "sqlite_begin"


def open_engine(database_url: str) -> Engine:
    """Engine for `database_url`, with the schema upgraded to the latest revision."""
    url = make_url(database_url)
    is_sqlite = url.get_backend_name() == "sqlite"
    connect_args: dict[str, Any] = {}
    if is_sqlite:
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # The server handles requests in worker threads; wait for locks instead of failing at once.
        connect_args = {"check_same_thread": False, "timeout": 30}
    else:
        # No parallel plans: the catalog runs many short queries at once on few cores, and a search
        # of a few thousand matches planned with two workers took 85 ms against 48 ms without them
        # at 100,000 datasets, before the workers' start-up competed with the other requests.
        connect_args = {"options": "-c max_parallel_workers_per_gather=0"}
    engine = create_engine(url, connect_args=connect_args, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
    if is_sqlite:
        _configure_sqlite(engine)
    else:
        _replace_dropped_connections(engine)
    upgrade_to_head(engine)
    return engine


MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Databases created by `metadata.create_all` before alembic: the revision each shape matches,
# recognised by its newest table (most recent first).
_PRE_ALEMBIC_REVISIONS = (("sysadmins", "0002_usage_metrics"), ("datasets", "0001_initial"))
# Any constant: concurrent starts against one PostgreSQL database migrate one after the other.
_MIGRATION_LOCK_KEY = 0x64696E756D  # "dinum"


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    """Alembic's configuration for the catalog's revisions, run on `connection` if given."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, f"no revision in {MIGRATIONS_DIR}"
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine) -> None:
    """Apply the revisions the database lacks, in one transaction (all or nothing).

    A database from before alembic is first stamped with the revision its tables match. The
    transaction holds SQLite's write lock or a PostgreSQL advisory lock, so two catalogs starting
    on the same database do not both run a revision.
    """
    with engine.connect() as connection:
        connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            current = current_revision(connection)
            if current == head_revision():
                return
            config = alembic_config(connection)
            if current is None:
                tables = set(inspect(connection).get_table_names())
                legacy = next((revision for table, revision in _PRE_ALEMBIC_REVISIONS if table in tables), None)
                if legacy is not None:
                    command.stamp(config, legacy)
            command.upgrade(config, "head")


SQLITE_MMAP_BYTES = 2**34  # SQLite caps it at its compile-time maximum (2 GB in the usual builds)


def _replace_dropped_connections(engine: Engine) -> None:
    """A pooled PostgreSQL connection the server has dropped (a restart, an idle timeout, a
    terminated backend) is replaced before it is lent, so no request after a restart fails.

    The server closes the socket when it drops a connection, after a last error message: an idle
    connection whose socket has something to read is one it has dropped (or, rarely, one it sent a
    notice; replacing that costs one connection). Checking costs a poll of the socket, where
    SQLAlchemy's `pool_pre_ping` costs a round trip for every request (0.08 ms on loopback, and a
    wait for the GIL when it comes back, on a loaded worker). A server that vanishes without
    closing (a network partition) hangs the ping and the query alike.
    """

    @event.listens_for(engine, "checkout")
    def refuse_dropped(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_connection.closed or dbapi_connection.broken or _has_input(dbapi_connection.fileno()):
            raise DisconnectionError("the database server has closed this connection")  # the pool connects anew


def _has_input(fd: int) -> bool:
    poller = poll()
    poller.register(fd, POLLIN | POLLPRI)
    return bool(poller.poll(0))


def _configure_sqlite(engine: Engine) -> None:
    """WAL (readers never block the writer), foreign keys on, and explicit BEGIN statements.

    pysqlite opens transactions lazily, as DEFERRED: a transaction that reads and then writes can
    fail with "database is locked" without waiting when another writer got in between. Write
    transactions therefore ask for BEGIN IMMEDIATE (SQLAlchemy's documented recipe: hand BEGIN
    over to SQLAlchemy by turning pysqlite's own transaction handling off).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Pages read through a memory map of the file (the OS's page cache, shared by the worker
        # processes) rather than a read() call each into every connection's own 2 MB cache: at
        # 100,000 datasets the listings' first answers took 15 % less CPU (bench/README.md).
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


_AFTER_COMMIT = "dinum_after_commit"
_BEFORE_COMMIT = "dinum_before_commit"


def before_commit(connection: Connection, key: Hashable, callback: Callable[[], None]) -> None:
    """Run `callback` at the end of the Database.write transaction of `connection`, inside it,
    once per `key` however often it is registered: what must follow every change of a kind
    within the same transaction (a dataset's stored document), written once whatever the number
    of changes."""
    connection.info.setdefault(_BEFORE_COMMIT, {}).setdefault(key, callback)


def after_commit(connection: Connection, callback: Callable[[], None]) -> None:
    """Run `callback` once the Database.write transaction of `connection` has committed (never if
    it rolls back): what a transaction wants others to know of only once it is there to be seen."""
    connection.info.setdefault(_AFTER_COMMIT, []).append(callback)


def _run_before_commit(connection: Connection) -> None:
    """What `before_commit` registered, including what those callbacks register in turn."""
    done: set[Hashable] = set()
    while pending := [(key, callback) for key, callback in connection.info.get(_BEFORE_COMMIT, {}).items() if key not in done]:
        for key, callback in pending:
            done.add(key)
            callback()


class VersionedReads:
    """Results of reads kept for as long as the data version they were read at is current.

    Every write to what the API shows moves the data version in its own transaction (`write`), so
    a result read at the version a request has just read (`Database.data_version`, one query) is
    the one a read would give now. For the lookups every keyed request makes (its key, its user,
    the resource and dataset it asks for, its role): one query instead of four or five. Bounded;
    the oldest entries go first. Values are shared: callers copy what they change.
    """

    def __init__(self, size: int = 4096) -> None:
        self._memo = BoundedMemo(size)  # key -> (version read at, value)

    def get(self, version: int, key: Hashable, read: Callable[[], Any]) -> Any:
        return self._memo.get(key, lambda: (version, read()), valid=lambda entry: entry[0] == version)[1]


class Database:
    """An engine plus `read()` and `write()` transactions (write ones lock SQLite up front)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time. Writers of this process queue on a lock rather than on
        # SQLite's busy handler, which polls with sleeps of up to 100 ms: under 50 concurrent
        # clients recording views, those sleeps made the p99 latency (bench/README.md).
        self._write_lock: AbstractContextManager[Any] = (
            threading.RLock() if engine.dialect.name == "sqlite" else nullcontext()
        )
        self._plain_reads = _PlainReads(engine)
        self._plain_statements: dict[Select[Any], PlainRead] = {}
        self._version = _DataVersionWatch(self)
        self.reads = VersionedReads()

    @classmethod
    def open(cls, database_url: str) -> Database:
        return cls(open_engine(database_url))

    @contextmanager
    def read(self, *, snapshot: bool = True) -> Iterator[Connection]:
        """A connection whose statements share one snapshot of the database (one transaction,
        rolled back). Without `snapshot`, for reads whose statements need not agree with each
        other, on PostgreSQL each statement sees what was committed when it starts and there is
        no transaction to open and end: two round trips fewer (BEGIN and ROLLBACK), half of a
        dataset's read at 100,000 datasets (bench/README.md). SQLite keeps its transaction: it
        costs no round trip, and switching a connection's isolation and back cost more (0.5 ms
        against 0.2 ms a dataset)."""
        with self.engine.connect() as connection:
            if not snapshot and self.engine.dialect.name != "sqlite":
                connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection

    @contextmanager
    def write(self, *, changes_data: bool = True) -> Iterator[Connection]:
        """A transaction committed on normal exit, rolled back on an exception.

        It moves the data version unless `changes_data` is False (the usage log's inserts), and
        runs what `after_commit` registered once it has committed.
        """
        with self._write_lock, self.engine.connect() as connection:
            connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            try:
                with connection.begin():
                    yield connection
                    _run_before_commit(connection)
                    version = _bump_data_version(connection) if changes_data else None
                committed = connection.info.get(_AFTER_COMMIT, [])
            finally:
                # the DBAPI connection goes back to the pool
                connection.info.pop(_AFTER_COMMIT, None)
                connection.info.pop(_BEFORE_COMMIT, None)
        if version is not None:
            self._version.saw(version)
        for callback in committed:
            callback()

    def data_version(self) -> int:
        """The number of writes to what the API shows, as committed now (one query). A failed
        plain read is read again through the pool, whose ping replaces a dead connection."""
        try:
            return self._plain_reads.version()
        except Exception:
            with self.read() as connection:
                return connection.execute(_DATA_VERSION_READ).scalar() or 0

    def plain_row(self, statement: Select[Any], values: dict[str, Any]) -> dict[str, Any] | None:
        """The first row of `statement` (a module's constant: its compiled form is kept) with
        `values` bound, as a plain read (PlainRead); None if none. Each statement sees what was
        committed when it starts, as `read(snapshot=False)`. A failed plain read is read again
        through the pool, as `data_version`'s."""
        plain = self._plain_statements.get(statement)
        if plain is None:
            plain = self._plain_statements.setdefault(statement, PlainRead(statement, self.engine.dialect))
        try:
            return plain.row(self._plain_reads.fetch_one(plain.sql, plain.parameters(values)))
        except Exception:
            with self.read(snapshot=False) as connection:
                row = connection.execute(statement, values).mappings().first()
                return None if row is None else dict(row)

    def open_plain_reads(self) -> int:
        """Open every connection kept for plain reads now, rather than at the first reads that
        need them (a worker's warm-up: warm_up.py); how many there are. Reads then take them in
        turn, the longest idle first."""
        return self._plain_reads.open_all()

    def current_data_version(self) -> int | None:
        """The data version as this process knows it without a query; None if its reading is too
        old (see _DataVersionWatch). For the event loop, before every anonymous answer."""
        return self._version.current()

    def fresh_data_version(self) -> int | None:
        """current_data_version(), or the version read now when that is None (None if the read
        fails). For worker threads, which may wait for the database."""
        return self._version.fresh()

    def close(self) -> None:
        self._version.close()
        self._plain_reads.close()
        self.engine.dispose()


class _DataVersionWatch:
    """What one process knows of the data version, kept current off the request path.

    The event loop asks before every anonymous answer (response_cache.py), so a query each time
    would cost more than the answer. This process's own writes move the number as they commit
    (`saw`). A watcher thread reads it every DATA_VERSION_POLL_SECONDS while callers keep asking,
    and sleeps once nobody has asked for that long (a process serving downloads, or idle, polls
    nothing). A reading older than DATA_VERSION_MAX_AGE_SECONDS is not used: `current` says None
    and `fresh` reads. So a write made in another process reaches anonymous readers after one
    10 ms poll, 250 ms at the very most.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._version: int | None = None
        self._read_at = float("-inf")  # time.monotonic() when the last read started
        self._asked_at = float("-inf")
        self._polling = False  # else the watcher waits for _wanted
        self._wanted = threading.Event()
        self._closing = threading.Event()
        self._closed = False
        self._watcher: threading.Thread | None = None

    def current(self) -> int | None:
        with self._lock:
            if self._closed:
                return None
            now = time.monotonic()
            self._asked_at = now
            if not self._polling:
                self._polling = True
                if self._watcher is None:
                    self._watcher = threading.Thread(target=self._watch, name="catalog-data-version", daemon=True)
                    self._watcher.start()
                self._wanted.set()
            return self._version if now - self._read_at <= DATA_VERSION_MAX_AGE_SECONDS else None

    def fresh(self) -> int | None:
        version = self.current()
        if version is not None:
            return version
        started = time.monotonic()
        try:
            read = self._db.data_version()
        except Exception:
            _log.warning("the data version could not be read; this answer is not cached", exc_info=True)
            return None
        self._record(read, started)
        return self.current()

    def saw(self, version: int) -> None:
        """This process committed `version`: no need to wait for a read to know it."""
        with self._lock:
            self._version = max(version, self._version or 0)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            watcher = self._watcher
        self._closing.set()
        self._wanted.set()
        if watcher is not None:
            watcher.join()

    def _watch(self) -> None:
        failing = False
        while True:
            self._wanted.wait()
            self._wanted.clear()
            while not self._closing.is_set():
                started = time.monotonic()
                try:
                    self._record(self._db._plain_reads.version(), started)
                    failing = False
                except Exception:
                    if not failing:  # once per outage, not at every poll
                        _log.exception("the data version could not be read; anonymous answers are not cached until it can")
                    failing = True
                with self._lock:
                    if started - self._asked_at > DATA_VERSION_POLL_SECONDS:
                        self._polling = False  # nobody asked since the last poll: sleep until asked
                        break
                self._closing.wait(DATA_VERSION_POLL_SECONDS)
            if self._closing.is_set():
                return

    def _record(self, version: int, read_started_at: float) -> None:
        with self._lock:
            self._version = max(version, self._version or 0)
            self._read_at = max(read_started_at, self._read_at)


class PlainRead:
    """A SELECT compiled once for the engine's driver, run on the connections kept for plain
    reads (`Database.plain_row`): where a pooled SQLAlchemy read of one row costs its checkout,
    execution context and result set, 0.4 ms of CPU at 100,000 datasets on PostgreSQL, this
    costs 0.16 (bench/README.md). Its row comes back as SQLAlchemy's would, each value through
    its column type's result processing (aware datetimes, SQLite's booleans). Its parameters
    must need no conversion (strings, numbers) and none may be a list (IN): it says so when
    built otherwise."""

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        refused = [
            name for name, bind in compiled.binds.items()
            if bind.expanding or bind.type.dialect_impl(dialect).bind_processor(dialect)
        ]
        if refused:
            raise ValueError(f"a plain read cannot bind the parameters {refused} (converted or lists): read it through SQLAlchemy")
        self._compiled = compiled
        self.sql = compiled.string
        self._positions = compiled.positiontup  # the parameters' order for a positional paramstyle (SQLite's)
        columns = list(statement.selected_columns)
        self._keys = [column.key for column in columns]
        self._processors = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]

    def parameters(self, values: dict[str, Any]) -> Any:
        """`values` with the statement's own constants (literals), in the driver's paramstyle."""
        bound = self._compiled.construct_params(values)
        return bound if self._positions is None else tuple(bound[name] for name in self._positions)

    def row(self, raw: Any) -> dict[str, Any] | None:
        if raw is None:
            return None
        return {
            key: value if processor is None else processor(value)
            for key, value, processor in zip(self._keys, raw, self._processors, strict=True)
        }


class _PlainReads:
    """Driver connections kept for plain reads: the data version, read by every keyed request
    (Database.data_version) and up to 100 times a second by the watcher, and the statements of
    `PlainRead`. A pooled SQLAlchemy read (checkout, BEGIN, query, rollback) of the version
    costs ten times as much. Connections are taken from the pool once (its set-up applied:
    SQLite's PRAGMAs), detached from it, in autocommit (each read sees the latest commit, no
    transaction left open). At most CONNECTIONS exist: a read waits for one rather than open
    another (opening and closing them per burst of requests made PostgreSQL fork a backend for
    each). One whose read fails is closed, and replaced by the next read that needs it."""

    CONNECTIONS = 4

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._version_sql = str(_DATA_VERSION_READ.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._opened = 0
        self._closed = False

    def version(self) -> int:
        row = self.fetch_one(self._version_sql, None)
        return int(row[0]) if row else 0

    def fetch_one(self, sql: str, parameters: Any) -> Any:
        """The first row `sql` reads (a tuple), None if none."""
        connection = self._take()
        try:
            cursor = connection.cursor()
            try:
                if parameters is None:
                    cursor.execute(sql)
                else:
                    cursor.execute(sql, parameters)
                row = cursor.fetchone()
            finally:
                cursor.close()
        except BaseException:
            self._discard(connection)
            raise
        with self._lock:
            closed = self._closed
        if closed:
            self._discard(connection)
        else:
            self._idle.put(connection)
        return row

    def open_all(self) -> int:
        taken: list[Any] = []
        try:
            while len(taken) < self.CONNECTIONS:
                taken.append(self._take())
        finally:
            for connection in taken:
                self._idle.put(connection)
        return len(taken)

    def _take(self) -> Any:
        while True:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the database is closed")
                opening = self._idle.empty() and self._opened < self.CONNECTIONS
                if opening:
                    self._opened += 1
            if opening:
                try:
                    return self._connect()
                except BaseException:
                    with self._lock:
                        self._opened -= 1
                    raise
            try:
                return self._idle.get(timeout=0.05)  # then again: a failed read may have freed a place
            except queue.Empty:
                continue

    def _discard(self, connection: Any) -> None:
        _close_quietly(connection)
        with self._lock:
            self._opened -= 1

    def _connect(self) -> Any:
        pooled = self._engine.raw_connection()
        connection = pooled.driver_connection
        pooled.detach()  # ours until closed, never handed to another caller
        if self._engine.dialect.name == "postgresql":
            connection.autocommit = True  # SQLite's is in autocommit already (_configure_sqlite)
        return connection

    def close(self) -> None:
        with self._lock:
            self._closed = True
        while not self._idle.empty():
            _close_quietly(self._idle.get_nowait())


def _close_quietly(connection: Any) -> None:
    try:
        connection.close()
    except Exception:
        _log.debug("closing a data-version connection failed", exc_info=True)


_DATA_VERSION_READ = select(data_version.c.version).where(data_version.c.id == 1)


def dialect_insert(connection: Connection, table: Table) -> Any:
    """An INSERT of the connection's dialect, the one that has `on_conflict_do_update` (an upsert)."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _bump_data_version(connection: Connection) -> int:
    """version + 1, creating the row if needed (an upsert: concurrent first writers cannot collide).

    The version only ever grows (processes keep the highest they saw): a database put back from a
    backup needs its catalog processes restarted."""
    statement = dialect_insert(connection, data_version).values(id=1, version=1)
    upsert = statement.on_conflict_do_update(index_elements=[data_version.c.id], set_={"version": data_version.c.version + 1})
    return int(connection.execute(upsert.returning(data_version.c.version)).scalar_one())


_MAX_SUFFIX = 12  # "-" and up to 11 digits


def unique_slug(connection: Connection, column: Column[str], base: str) -> str:
    """`base`, or `base-1`, `base-2`... the first one not yet in `column` (deleted rows included).

    Call it in the transaction that inserts the slug. On PostgreSQL it takes a transaction lock on
    the base first: without it, writers creating the same title concurrently all read the same
    taken slugs and pick the same next one (SQLite's write transactions are serialized already).
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"{column}:{base}"})
    # A suffix shortens the base rather than pass the column's length (a 500 on PostgreSQL for the
    # second title of 255 slug characters); every candidate starts with `root`.
    limit = column.type.length or len(base) + _MAX_SUFFIX  # type: ignore[attr-defined]
    root = base[: limit - _MAX_SUFFIX]
    taken = set(connection.scalars(select(column).where(column.startswith(root, autoescape=True))))
    candidate, suffix = base[:limit], 0
    while candidate in taken:
        suffix += 1
        candidate = f"{base[: limit - len(str(suffix)) - 1]}-{suffix}"
    return candidate
