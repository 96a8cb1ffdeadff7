"""Row indexes: a DuckDB database beside each published Parquet, so that the row API's first
answers (tabular.py) read the few rows a filter asks for instead of the whole file.

Why: a filtered page on the Parquet scans the filtered columns of every row twice (the count, then
the page). The file's row groups are in the publisher's order, so their statistics prune little,
and 50 such scans at once queue on the cores (bench/README.md: 10M rows, p95 ~9 s cold). Reading
fewer rows is the only cure; a faster scan is not.

What: one database file per Parquet, `.<name>.rows.duckdb` in the file's folder (hidden, never a
resource, so never served). It holds, for each of a few *clustered* columns, a native copy of the
table sorted by that column (ties in the file's order) with each row's position in the file, and
one copy in the file's order. DuckDB keeps min/max statistics per column segment, so a filter on
the sorted column (equality,
IN, a range, IS NULL) reads only the segments where its values lie, and other filters of the same
query (a department *and* a nature) are checked on those rows only. A page holds the same rows,
in the same order, as on the Parquet (tabular.py): rows of one value of the sorted column are
already in the file's order (ties were sorted by position), so such a page is read without a sort
and the scan stops after it; a range's rows are several runs, whose page is found from positions
alone, then read from the copy in file order, where they lie between the page's first and last
positions (~3,000 rows for a month of 10M sales, against 165,000 in the sorted copy: 9 -> 4 ms).
Each sorted copy comes with its rows per value, held in memory once the index is attached
(`ValueCounts`): a page whose conditions are all on that column (a commune, a list of communes, a
month) gets its total without a query, a third to a half of its DuckDB time.
Beside the database, the same rows and each copy's order as memory-mapped arrays
(row_arrays.py): most pages of a clustered column's value, list or range are read from those
without a DuckDB statement, whose fixed cost (~0.8 ms at 10M rows) had become most of a page's.
The Parquet stays the reference and serves what no copy helps with (no filter on a clustered
column, aggregates, exports). ART indexes were measured and left out: on a sorted copy
the statistics already find a commune in ~1 ms, DuckDB uses an ART only for point lookups of under
2,048 rows with no other filter, and never under `ORDER BY ... LIMIT`.

Which columns: those reusers filter on are codes and dates. Text, date and integer columns with
enough distinct values for a filter to be selective (at least `MIN_DISTINCT`, and not unique, where
an equality matches one row anywhere) are ranked text and dates first, then by distinct count,
and the first `MAX_CLUSTERED` get a copy. Distinct counts are kept so that a query with equalities
on two clustered columns reads the copy of the more selective one.

When: built in the background after a Parquet is published (app.py), and again when the row API
meets a table without one (a catalog that restarted mid-build, files published before this module),
for tables of at least `MIN_ROWS` rows (below that a scan is already quick). Never on the upload's
path: until the index is there, pages come from the Parquet. The build runs in one thread per
process under its own DuckDB memory limit, spilling sorts to a local temporary folder, so memory
stays bounded whatever the table's size. The file is written under a temporary `.part` name in the
Parquet's folder and renamed into place: on several nodes sharing the files folder, a reader sees
no index or a whole one; a lock file (host and process id) keeps nodes from building the same
index twice, and is taken over when its process is gone (this host) or when it is old (another
host); two builds that meet anyway each rename a whole, identical file. A `.part` left by a crash is removed by
`FileStore.sweep_partials` like an interrupted upload's.

Validity: Parquet files are immutable (each upload gets a new key), so an index is named after its
file; it also records the file's size and its own format version, and is ignored when either
differs. A resource's new version is a new file, hence a new index; the replaced file's index is
removed (its rows are no longer served).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import math
import os
import queue
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from dinum_pipelines.catalog import row_arrays
from dinum_pipelines.catalog.memo import BoundedMemo
from dinum_pipelines.lib.clean.repeats import quoted as quote

_log = logging.getLogger("dinum_pipelines.catalog")

FORMAT = 4  # bumped when the layout changes: older indexes are ignored, then rebuilt
MIN_ROWS = 100_000
MAX_CLUSTERED = 3
MIN_DISTINCT = 20
BUILD_MEMORY_LIMIT = "256MB"
BUILD_THREADS = 1  # the build shares the cores with the requests it is meant to speed up
# ...and yields them: the builder's thread runs at this nice value (Linux gives each thread its own),
# so that uploads and requests take the CPU first and a build uses what they leave. At 10, a busy
# core leaves it about a tenth (the kernel's weights: 110 against 1024 at nice 0).
BUILD_NICENESS = 10
LOCK_STALE_SECONDS = 6 * 3600  # another host's lock older than this was left by a build that died
RETRY_SECONDS = 600  # a path is asked for again (not built, or built elsewhere) at most this often
MAX_ATTACHED = 64  # index databases kept attached per process; the least recently used unused go
TOTALS_KEPT = 1024  # totals counted by a query kept per attached index (Index.remembered_total)
MAX_COUNTED_VALUES = 200_000  # a clustered column's counts per value are held in memory up to this many values
_SUFFIX = ".rows.duckdb"
_ARRAYS_SUFFIX = ".rows.arrays"
_META = "__index_meta"
_FILE_ORDER = "rows_in_file_order"
_SPILL_PREFIX = "dinum-rows-index-"
_PARTIAL_SUFFIX = ".part"  # files.py sweeps hidden `.part` files left by crashes
# Operators (tabular's names) a copy sorted by their column answers from a few segments, and how
# much a condition of that kind narrows: an equality or a list more than a range.
NARROWING = {"exact": 2, "in": 2, "less": 1, "greater": 1, "strictly_less": 1, "strictly_greater": 1, "isnull": 1}
ONE_RUN = ("exact", "isnull")  # conditions that keep a single value of their column
_CLUSTER_KINDS = ("VARCHAR", "DATE", "TIMESTAMP")
_INTEGER_KINDS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")


def index_path(parquet: Path) -> Path:
    return parquet.with_name(f".{parquet.name}{_SUFFIX}")


def arrays_path(parquet: Path) -> Path:
    """The index's rows as arrays (row_arrays.py), beside it."""
    return parquet.with_name(f".{parquet.name}{_ARRAYS_SUFFIX}")


def position_name(columns: Sequence[str]) -> str:
    """A name for the row's position in the file that no column of the table has."""
    name = "__row_position"
    while name in columns:
        name += "_"
    return name


@dataclass(frozen=True)
class ValueCounts:
    """How many rows hold each value of a clustered column (nulls apart), read from the index when
    it is attached: a page's total for conditions on that column alone (one value, a list, a
    range, nulls) without a query. Values are as DuckDB returns them, so they compare as in SQL
    (text by code point, which is UTF-8's byte order; dates and numbers by value)."""

    values: list[Any]  # sorted
    cumulative: list[int]  # rows holding values[:i], for each i
    nulls: int

    @classmethod
    def of(cls, counted: Sequence[tuple[Any, int]]) -> ValueCounts | None:
        """None when the values do not sort as in SQL (a float NaN, which DuckDB puts last)."""
        if any(isinstance(value, float) and math.isnan(value) for value, _rows in counted):
            return None
        present = sorted((value, int(rows)) for value, rows in counted if value is not None)
        cumulative = [0]
        for _value, rows in present:
            cumulative.append(cumulative[-1] + rows)
        nulls = sum(int(rows) for value, rows in counted if value is None)
        return cls([value for value, _rows in present], cumulative, nulls)

    def matching(self, conditions: Sequence[tuple[str, Any]]) -> int | None:
        """Rows meeting all of (operator, value) (tabular's operators, values cast to the column's
        type), or None when those conditions are not one value, one list, nulls, or bounds."""
        runs = self.runs(conditions)
        return None if runs is None else sum(end - start for start, end in runs)

    def runs(self, conditions: Sequence[tuple[str, Any]]) -> list[tuple[int, int]] | None:
        """Where the rows meeting all of (operator, value) lie in the copy sorted by this column,
        as [start, end) runs in the copy's order (nulls last), or None as for `matching`."""
        operators = {operator for operator, _value in conditions}
        if len(conditions) == 1 and operators <= {"exact", "in", "isnull"}:
            operator, value = conditions[0]
            if operator == "isnull":
                return [(self.cumulative[-1], self.cumulative[-1] + self.nulls)] if self.nulls else []
            wanted = [value] if operator == "exact" else sorted(set(value))
            runs = []
            for item in wanted:
                found = bisect.bisect_left(self.values, item)
                if found < len(self.values) and self.values[found] == item:
                    runs.append((self.cumulative[found], self.cumulative[found + 1]))
            return runs
        if not operators <= set(_BOUNDS):
            return None
        low, high = 0, len(self.values)
        for operator, value in conditions:
            side, search = _BOUNDS[operator]
            found = search(self.values, value)
            low, high = (max(low, found), high) if side == "low" else (low, min(high, found))
        return [(self.cumulative[low], self.cumulative[high])] if high > low else []


# operator -> (which side of a range it bounds, where that bound falls among the sorted values)
_BOUNDS = {
    "greater": ("low", bisect.bisect_left), "strictly_greater": ("low", bisect.bisect_right),
    "less": ("high", bisect.bisect_right), "strictly_less": ("high", bisect.bisect_left),
}


@dataclass(frozen=True)
class Index:
    """An attached index: `tables[column]` is the SQL name of the copy sorted by `column`, and
    `counts[column]` its rows per value (for columns of at most MAX_COUNTED_VALUES values)."""

    alias: str
    position: str
    rows: int
    tables: Mapping[str, str]
    distinct: Mapping[str, int]
    counts: Mapping[str, ValueCounts]
    arrays: row_arrays.RowArrays | None = None  # the rows and copies' orders memory-mapped (row_arrays.py)
    # Totals counted by a query, by (statement, values): the next pages of a selection reuse them.
    # The index never changes while attached; a new attachment starts afresh.
    _totals: BoundedMemo = field(default_factory=lambda: BoundedMemo(TOTALS_KEPT), compare=False, repr=False)

    def remembered_total(self, statement: str, values: Sequence[Any], count: Callable[[], int]) -> int:
        total: int = self._totals.get((statement, tuple(values)), count)
        return total

    def count(self, column: str, compared: Sequence[tuple[str, str, Any]]) -> int | None:
        """Rows meeting `compared` (tabular's (column, operator, value)), when every condition is
        on `column` and its counts say; None otherwise (a query counts them)."""
        counts = self.counts.get(column)
        if counts is None or not compared or any(name != column for name, _operator, _value in compared):
            return None
        return counts.matching([(operator, value) for _name, operator, value in compared])

    @property
    def in_file_order(self) -> str:
        """The table in the file's order, where rows between two positions are next to each other."""
        return f"{self.alias}.{_FILE_ORDER}"

    def table_for(self, filtered: Sequence[tuple[str, str]]) -> Copy | None:
        """The copy that reads fewest rows for these (column, operator) conditions, if any helps."""
        best: tuple[int, int] | None = None
        chosen = None
        for column, operator in filtered:
            if column in self.tables and operator in NARROWING:
                score = (NARROWING[operator], self.distinct.get(column, 0))
                if best is None or score > best:
                    best, chosen = score, column
        if chosen is None:
            return None
        one_run = any(column == chosen and operator in ONE_RUN for column, operator in filtered)
        return Copy(self.tables[chosen], in_file_order=one_run, column=chosen)


@dataclass(frozen=True)
class Copy:
    """A sorted copy chosen for a query. `in_file_order`: the query keeps one value of the sorted
    column (an equality, or nulls), whose rows lie in one run already in the file's order, so that
    a page needs no sort: the scan stops after it, as on the Parquet."""

    table: str
    in_file_order: bool
    column: str


# Build


def _cluster_columns(
    connection: duckdb.DuckDBPyConnection, table: str, types: Mapping[str, str], rows: int, chosen: Sequence[str] | None
) -> dict[str, int]:
    """The columns that get a sorted copy (`chosen`, or the best `MAX_CLUSTERED` by the rule in
    the module's docstring), with their approximate distinct counts."""
    candidates = list(chosen) if chosen is not None else [
        name for name, kind in types.items() if kind.startswith(_CLUSTER_KINDS) or kind in _INTEGER_KINDS
    ]
    if not candidates:
        return {}
    terms = ", ".join(f"approx_count_distinct({quote(name)})" for name in candidates)
    counts = dict(zip(candidates, connection.execute(f"SELECT {terms} FROM {table}").fetchone() or (), strict=True))
    if chosen is not None:
        return {name: int(counts[name]) for name in chosen}
    useful = [name for name in candidates if MIN_DISTINCT <= counts[name] < rows * 0.9]
    useful.sort(key=lambda name: (not types[name].startswith(_CLUSTER_KINDS), -counts[name]))
    return {name: int(counts[name]) for name in useful[:MAX_CLUSTERED]}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _abandoned(lock: Path) -> bool:
    """A lock whose builder is gone: a process of this host that no longer runs (a worker
    restarted mid-build), or, from another host, one older than LOCK_STALE_SECONDS."""
    try:
        host, pid = lock.read_text().split()
        if host == socket.gethostname():
            os.kill(int(pid), 0)
            return False
        return time.time() - lock.stat().st_mtime > LOCK_STALE_SECONDS
    except ProcessLookupError:
        return True
    except (OSError, ValueError):  # gone meanwhile, or being written
        return False


@contextmanager
def _build_lock(target: Path) -> Iterator[bool]:
    """Whether this process may build `target`: no live build elsewhere holds its lock file."""
    lock = target.with_name(target.name + ".lock")
    if _abandoned(lock):
        lock.unlink(missing_ok=True)
    try:
        handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        yield False
        return
    try:
        os.write(handle, f"{socket.gethostname()} {os.getpid()}\n".encode())
        os.close(handle)
        yield True
    finally:
        lock.unlink(missing_ok=True)


def _spill_folder() -> Path:
    """A fresh local folder for the build's sorts to spill to; those of builds whose process is
    gone (a worker stopped mid-build: its daemon thread cleans nothing) are removed first."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_SPILL_PREFIX}*-"):
        try:
            os.kill(int(folder.name.removeprefix(_SPILL_PREFIX).split("-", 1)[0]), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, OSError):
            continue
    return Path(tempfile.mkdtemp(prefix=f"{_SPILL_PREFIX}{os.getpid()}-", suffix="-"))


def build(parquet: Path, *, min_rows: int | None = None, columns: Sequence[str] | None = None) -> Path | None:
    """Write `parquet`'s index beside it, with a copy sorted by each of `columns` (by default,
    those the module's rule picks); the index's path, or None when none is worth having (a small
    table, no column to cluster on) or another process is building it."""
    if pq.ParquetFile(parquet).metadata.num_rows < (MIN_ROWS if min_rows is None else min_rows):
        return None
    target = index_path(parquet)
    with _build_lock(target) as mine:
        if not mine or _valid_meta(target, parquet) is not None:
            return target if target.exists() else None
        token = secrets.token_hex(4)
        partial = target.with_name(f"{target.name}.{token}{_PARTIAL_SUFFIX}")
        arrays = arrays_path(parquet)
        arrays_partial = arrays.with_name(f"{arrays.name}.{token}{_PARTIAL_SUFFIX}")
        spill = _spill_folder()
        started = time.perf_counter()
        try:
            if not _write(parquet, partial, arrays_partial, spill, columns):
                return None
            os.replace(arrays_partial, arrays)  # first: an index found has its arrays
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
            arrays_partial.unlink(missing_ok=True)
            Path(f"{partial}.wal").unlink(missing_ok=True)
            shutil.rmtree(spill, ignore_errors=True)
        _log.info("rows index: %s built in %.1f s (%d MiB)", target.name, time.perf_counter() - started, target.stat().st_size >> 20)
        return target


def _write(parquet: Path, partial: Path, arrays_partial: Path, spill: Path, columns: Sequence[str] | None) -> bool:
    """The index's tables, in a database at `partial`: the file-order copy read from the Parquet
    once, then the sorted copies and the distinct counts read from it (native storage, no decoding)."""
    config = {"memory_limit": BUILD_MEMORY_LIMIT, "threads": BUILD_THREADS, "temp_directory": str(spill),
              "enable_external_file_cache": False}  # one pass over the Parquet: nothing to keep
    connection = duckdb.connect(str(partial), config=config)
    try:
        source = _literal(str(parquet))
        types = {row[0]: row[1] for row in connection.execute(f"DESCRIBE SELECT * FROM read_parquet({source})").fetchall()}
        rows = pq.ParquetFile(parquet).metadata.num_rows
        position = position_name(list(types))
        selected = ", ".join(quote(name) for name in types)
        if "file_row_number" in types:  # the file's own column hides DuckDB's: number the rows as tabular does
            numbered, row_number = f"read_parquet({source})", "row_number() OVER () - 1"
        else:
            numbered, row_number = f"read_parquet({source}, file_row_number = true)", "file_row_number"
        # Insertion order is kept (DuckDB's preserve_insertion_order): the file's, then each sort's.
        connection.execute(f"CREATE TABLE {_FILE_ORDER} AS SELECT {selected}, {row_number} AS {quote(position)} FROM {numbered}")
        clustered = _cluster_columns(connection, _FILE_ORDER, types, rows, columns)
        if not clustered:
            return False
        tables, counts = {}, {}
        for number, column in enumerate(clustered):
            tables[column], counts[column] = f"rows_{number}", f"counts_{number}"
            connection.execute(
                f"CREATE TABLE {tables[column]} AS SELECT * FROM {_FILE_ORDER} ORDER BY {quote(column)} ASC NULLS LAST, {quote(position)}"
            )
            connection.execute(
                f"CREATE TABLE {counts[column]} AS SELECT {quote(column)} AS value, count(*) AS rows FROM {tables[column]} GROUP BY ALL"
            )
        layout = row_arrays.write(connection, _FILE_ORDER, rows, types, tables, position, arrays_partial, spill)
        meta = {"format": FORMAT, "source_size": parquet.stat().st_size, "rows": rows, "position": position,
                "tables": tables, "distinct": clustered, "counts": counts, "arrays": layout}
        connection.execute(f"CREATE TABLE {_META} AS SELECT ? AS meta", [json.dumps(meta)])
        connection.execute("CHECKPOINT")
    finally:
        connection.close()
    return True


def _read_meta(connection: duckdb.DuckDBPyConnection, database: str) -> dict | None:
    try:
        row = connection.execute(f"SELECT meta FROM {database}.{_META}").fetchone()
    except duckdb.Error:
        return None
    return json.loads(row[0]) if row else None


def _valid_meta(target: Path, parquet: Path, meta: dict | None = None) -> dict | None:
    """The index's description if it is there and made for this very file, by this format."""
    if meta is None:
        if not target.exists():
            return None
        try:
            with duckdb.connect(str(target), read_only=True) as connection:
                meta = _read_meta(connection, "main")
        except duckdb.Error:
            return None
    if not meta or meta.get("format") != FORMAT or meta.get("source_size") != parquet.stat().st_size:
        return None
    return meta


def remove(parquet: Path) -> None:
    """Drop `parquet`'s index (a replaced or deleted file's), and this process's build of it if
    one is queued or running; a process that has it attached detaches it when it next attaches
    another."""
    _builder.drop(parquet)
    _delete(parquet)


def _delete(parquet: Path) -> None:
    """The index's files: its database and its arrays."""
    index_path(parquet).unlink(missing_ok=True)
    arrays_path(parquet).unlink(missing_ok=True)


# Background builds


class _Builder:
    """One thread per process building the indexes asked for, one at a time, in order. A path is
    asked for at most once per `RETRY_SECONDS` (a table too small, a build another node was doing,
    a file that failed), so that the row API may ask on every request it serves from a Parquet."""

    def __init__(self) -> None:
        self._start()

    def _start(self) -> None:
        self._queue: queue.Queue[Path] = queue.Queue()
        self._asked: dict[Path, float] = {}
        self._pending: set[Path] = set()  # queued or building
        self._dropped: set[Path] = set()  # removed while pending: not built, or unlinked once built
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def ask(self, parquet: Path) -> None:
        if self._pid != os.getpid():  # a forked worker starts afresh
            self._start()
        now = time.monotonic()
        with self._lock:
            if now - self._asked.get(parquet, -RETRY_SECONDS) < RETRY_SECONDS:
                return
            self._asked[parquet] = now
            self._dropped.discard(parquet)
            self._pending.add(parquet)
            self._queue.put(parquet)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="rows-index-builder", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        _lower_priority(BUILD_NICENESS)
        while True:
            with self._lock:
                if self._queue.empty():
                    self._thread = None
                    return
                parquet = self._queue.get()
            try:
                if parquet.is_file() and parquet not in self._dropped:
                    build(parquet)
            except Exception as exc:  # an unreadable file, a full disk: the Parquet path still answers
                _log.warning("rows index: %s not built: %s", parquet.name, str(exc).splitlines()[0])
            finally:
                with self._lock:
                    if parquet in self._dropped:  # replaced or deleted while it was built
                        _delete(parquet)
                        self._dropped.discard(parquet)
                    self._pending.discard(parquet)
                self._queue.task_done()

    def drop(self, parquet: Path) -> None:
        with self._lock:
            if parquet in self._pending:
                self._dropped.add(parquet)

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)


def _lower_priority(niceness: int) -> None:
    """This thread's nice value raised to `niceness` (Linux: per thread; elsewhere it would be the
    whole process's, so nothing is done)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, max(niceness, os.getpriority(os.PRIO_PROCESS, thread)))
    except OSError as exc:
        _log.warning("rows index: the builder keeps its priority: %s", exc)


_builder = _Builder()


def published(parquet: Path) -> None:
    """A Parquet was published: its index is built in the background."""
    _builder.ask(parquet)


# Use


class _Attached:
    """The index databases attached to the process's DuckDB, least recently used first; each
    attached read-only once, detached when over `MAX_ATTACHED` and no query is using it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[Path, tuple[Index, int]] = OrderedDict()  # path -> (index, queries using it)
        self._pid: int | None = None

    @contextmanager
    def use(self, connection: duckdb.DuckDBPyConnection, parquet: Path) -> Iterator[Index | None]:
        target = index_path(parquet)
        index = self._acquire(connection, parquet, target)
        try:
            yield index
        finally:
            if index is not None:
                with self._lock:
                    entry = self._entries.get(target)
                    if entry is not None and entry[0] is index:
                        self._entries[target] = (index, entry[1] - 1)

    def _acquire(self, connection: duckdb.DuckDBPyConnection, parquet: Path, target: Path) -> Index | None:
        with self._lock:
            if self._pid != os.getpid():
                self._entries, self._pid = OrderedDict(), os.getpid()
            entry = self._entries.get(target)
            if entry is not None:
                if target.exists():
                    self._entries[target] = (entry[0], entry[1] + 1)
                    self._entries.move_to_end(target)
                    return entry[0]
                self._detach(connection, target)
            if not target.exists():
                return None
            alias = "rows_index_" + hashlib.sha1(str(target).encode()).hexdigest()[:16]
            try:
                connection.execute(f"ATTACH {_literal(str(target))} AS {alias} (READ_ONLY)")
            except duckdb.Error as exc:
                if "already" not in str(exc).lower():
                    return None
            meta = _valid_meta(target, parquet, _read_meta(connection, alias))
            if meta is None:
                connection.execute(f"DETACH DATABASE IF EXISTS {alias}")
                return None
            counts = {}
            for column, table in meta["counts"].items():
                if meta["distinct"][column] <= MAX_COUNTED_VALUES:
                    counted = ValueCounts.of(connection.execute(f"SELECT value, rows FROM {alias}.{table}").fetchall())
                    if counted is not None:
                        counts[column] = counted
            index = Index(alias, meta["position"], meta["rows"],
                          {column: f"{alias}.{table}" for column, table in meta["tables"].items()}, meta["distinct"], counts,
                          row_arrays.RowArrays.open(arrays_path(parquet), meta.get("arrays")))
            self._entries[target] = (index, 1)
            self._evict(connection)
            return index

    def _detach(self, connection: duckdb.DuckDBPyConnection, target: Path) -> None:
        index, users = self._entries[target]
        if users == 0:
            del self._entries[target]
            connection.execute(f"DETACH DATABASE IF EXISTS {index.alias}")

    def _evict(self, connection: duckdb.DuckDBPyConnection) -> None:
        """Detach the least recently used beyond MAX_ATTACHED, and any whose file was removed."""
        excess = len(self._entries) - MAX_ATTACHED
        for number, target in enumerate(list(self._entries)):
            if number < excess or not target.exists():
                self._detach(connection, target)


_attached = _Attached()


@contextmanager
def usable(connection: duckdb.DuckDBPyConnection, parquet: Path, *, build_if_missing: bool = True) -> Iterator[Index | None]:
    """`parquet`'s index, attached to `connection`'s database, for the duration of a query; None
    when there is none yet (then one is asked for, in the background)."""
    with _attached.use(connection, parquet) as index:
        if index is None and build_if_missing:
            _builder.ask(parquet)
        yield index


def wait_for_builds(timeout: float = 600) -> None:
    """Until every index asked for so far is built or given up (tests, benchmarks)."""
    _builder.wait(timeout)
