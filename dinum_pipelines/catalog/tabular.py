"""The row API: `GET /api/resources/{rid}/data/`, the rows of a published table, with
data.gouv.fr's api-tabular query syntax so that reusers' existing code works unchanged; the whole
filtered selection as CSV or JSON (`/data/csv/`, `/data/json/`); and the resource's own OpenAPI
document (`/swagger/`).

Why a module of its own, and why DuckDB: api-tabular loads each CSV into PostgreSQL and serves it
through PostgREST, which is why it caps files at 100 MB. The pipeline already publishes every
table as Parquet next to its CSV, so the catalog queries that file in place: DuckDB reads only the
columns asked for and skips row groups by their statistics, whatever the file's size, with no load
step and no copy of the data in the catalog's database. This module turns the query string into
one parameterised SQL statement over `read_parquet(path)` (values are always bound, identifiers
quoted, columns checked against the file's schema) and the result into api-tabular's answer
`{data, links, meta}`; app.py only finds the resource's file and wires the routes. A table's row
index, when it has one (table_index.py: copies sorted by the columns reusers filter on, built
after publication, with the rows as memory-mapped arrays: row_arrays.py), answers the pages whose
filters it narrows, with the same rows in the same order; scanning the Parquet is the reference
and answers the rest.

Syntax (as api-tabular): `col__exact`, `__differs` (IS DISTINCT FROM, as api-tabular's
`isdistinct`: a null differs from any value), `__contains`, `__notcontains` (both
case-insensitive, on the value's text), `__in=a,b`, `__notin`, `__less` (<=), `__greater` (>=),
`__strictly_less`, `__strictly_greater`, `__isnull`, `__isnotnull`, `col__sort=asc|desc` (nulls
last ascending, first descending, as PostgreSQL), `columns=a,b`, `page` (from 1), `page_size`
(default 20, at most 1,000: more is a 400, as api-tabular answers). Other comparisons follow SQL:
a null matches none of them (`__notin` and `__notcontains` included), only `__isnull` and
`__differs`. Aggregation: `col__groupby`, `col__count` (non-null values), `col__sum`, `col__avg`
(numbers only), `col__min`, `col__max`; each aggregate comes back as a column named `col__op`,
which `col__op__sort` may sort on; filters apply before grouping; `columns` cannot be combined
with aggregates (api-tabular's rule). Bad parameters are a 400 in api-tabular's body naming the
column or operator.

Exports stream in constant memory: DuckDB hands over record batches, each written out and
dropped before the next is read; a sort spills to disk beyond `MEMORY_LIMIT`. They carry
the file's own columns (no `__id`), so an export without a filter is the published CSV itself.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import os
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import duckdb
import pyarrow.csv as pacsv

from dinum_pipelines.catalog import table_index
from dinum_pipelines.catalog.errors import NotFound
from dinum_pipelines.catalog.metrics_api import MetricApiError
from dinum_pipelines.lib.clean.repeats import quoted as quote
from dinum_pipelines.lib.clean.tables import CSV_WRITE_OPTIONS
from dinum_pipelines.lib.publish.duckdb_values import (
    is_numeric,
    jsonable,
    python_type,
)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000
MAX_PAGE = 10**12  # a page beyond the rows is an empty page, not an error; this only bounds the integer
INVALID = "Invalid query string"
ROW_ID = "__id"  # api-tabular's row id: here the row's position in the file, from 1
EXPORT_BATCH_ROWS = 65_536
DIRECT_SCAN_ROWS = 100_000  # see _indexed_page
# One in-memory DuckDB per process, one cursor per call: opening and closing a database costs
# ~25 ms (its thread pool), a cursor nothing, and all calls share one memory limit, beyond which
# sorts and groupings spill to the temporary folder. Each query runs on the thread that asks it
# (THREADS = 1): a worker answers many pages at once and deployments run a worker per core (`serve
# --workers`), so the cores are busy without DuckDB's own pool, whose hand-offs cost ~15% more CPU a
# page at 10M rows (bench/README.md); a lone full scan of a Parquet is slower for it.
MEMORY_LIMIT = "512MB"
THREADS = 1
_database: duckdb.DuckDBPyConnection | None = None
_database_pid: int | None = None
_database_lock = threading.Lock()
SCHEMAS_KEPT = 256
PREPARED_KEPT = 256  # statements each page cursor keeps prepared (the query shapes reusers send)
PREPARED_CURSORS_KEPT = 16  # idle page cursors kept (one per request thread)
_idle_cursors: list[_PreparingCursor] = []
_statement_numbers = itertools.count()
_schemas: dict[tuple[Path, int, int], dict[str, str]] = {}
_schemas_lock = threading.Lock()

# operator -> SQL template over {c} (the quoted column) and {v} (a bound, cast value).
COMPARISONS = {
    "exact": "{c} = {v}",
    "differs": "{c} IS DISTINCT FROM {v}",
    "less": "{c} <= {v}",
    "greater": "{c} >= {v}",
    "strictly_less": "{c} < {v}",
    "strictly_greater": "{c} > {v}",
}
TEXT_OPERATORS = {"contains": "", "notcontains": "NOT "}
LIST_OPERATORS = {"in": "", "notin": "NOT "}
NULL_OPERATORS = {"isnull": "IS NULL", "isnotnull": "IS NOT NULL"}
AGGREGATES = {"count": "count", "sum": "sum", "avg": "avg", "min": "min", "max": "max"}
NUMERIC_AGGREGATES = ("sum", "avg")
GROUP_BY = "groupby"
OPERATORS = sorted([*COMPARISONS, *TEXT_OPERATORS, *LIST_OPERATORS, *NULL_OPERATORS, *AGGREGATES, GROUP_BY, "sort"])
RESERVED = ("page", "page_size", "columns")

# DuckDB skips a Parquet row group whose min/max statistics rule the value asked for out. Arrow's
# statistics leave NaN out, as the Parquet format asks, and DuckDB orders NaN after every number:
# `x__greater=5` missed the NaN rows of a group whose numbers are under 5, `x__exact=nan` found
# none (duckdb/duckdb#25521, open in DuckDB 2.0). A float column is therefore compared through an
# expression DuckDB cannot reason about (random() is volatile): its row groups are all read.
_FLOAT_TYPES = ("FLOAT", "DOUBLE")


def _compared(column: str, column_type: str) -> str:
    """`column` as a condition compares it (quoted)."""
    return f"(CASE WHEN random() >= 0 THEN {column} END)" if column_type.split("(")[0] in _FLOAT_TYPES else column


def aggregates(items: Sequence[tuple[str, str]]) -> bool:
    """Whether a query string asks for groups or aggregates (without parsing it: a bad one is
    refused by `parse`)."""
    return any(key.rpartition("__")[2] in (*AGGREGATES, GROUP_BY) for key, _value in items)


def bad_request(detail: str) -> MetricApiError:
    return MetricApiError(400, INVALID, detail)


@dataclass
class RowQuery:
    """A parsed query string: WHERE conditions with their bound parameters, ORDER BY terms, the
    selected columns (or the groups and aggregates) and the page."""

    columns: list[str]
    conditions: list[str] = field(default_factory=list)
    parameters: list[Any] = field(default_factory=list)
    sorts: list[tuple[str, str]] = field(default_factory=list)  # (column, asc|desc) of each ORDER BY term
    group_by: list[str] = field(default_factory=list)
    aggregates: list[tuple[str, str]] = field(default_factory=list)  # (answer's column name, SQL)
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    with_row_id: bool = True
    filtered: list[tuple[str, str]] = field(default_factory=list)  # (column, operator) of each condition
    # (column, operator, value as DuckDB casts it: a list for `in`, None for `isnull`) of each condition
    compared: list[tuple[str, str, Any]] = field(default_factory=list)

    @property
    def aggregated(self) -> bool:
        return bool(self.group_by or self.aggregates)

    @property
    def order(self) -> list[str]:
        """The ORDER BY terms of `sorts`: nulls last ascending, first descending (PostgreSQL's)."""
        return [f"{quote(name)} ASC NULLS LAST" if direction == "asc" else f"{quote(name)} DESC NULLS FIRST" for name, direction in self.sorts]

    @property
    def output_columns(self) -> list[str]:
        return [*self.group_by, *(name for name, _sql in self.aggregates)] if self.aggregated else self.columns

    def where(self) -> str:
        return f" WHERE {' AND '.join(self.conditions)}" if self.conditions else ""


class UnreadableTable(NotFound):
    """A hosted file named .parquet that is not one (a publisher's mistake, a truncated upload):
    there are no rows to serve, as for a resource without a table."""


def schema(connection: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    """Column name -> DuckDB type of the Parquet file; read from its footer once per file (a
    published file never changes: its size and time are checked all the same)."""
    stat = path.stat()
    key = (path, stat.st_size, stat.st_mtime_ns)
    with _schemas_lock:
        known = _schemas.get(key)
    if known is not None:
        return dict(known)
    try:
        rows = connection.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    except duckdb.Error as exc:
        reason = str(exc).splitlines()[0].split(": ", 1)[-1]
        raise UnreadableTable(f"No tabular data for this resource: its Parquet file cannot be read ({reason})") from None
    types = {row[0]: row[1] for row in rows}
    with _schemas_lock:
        _schemas[key] = types
        while len(_schemas) > SCHEMAS_KEPT:
            _schemas.pop(next(iter(_schemas)))
    return dict(types)


class _PreparingCursor:
    """A cursor kept between pages, which prepares each statement it is given once and executes
    it again with the new values: planning is a third of a page's statement (0.3 of 0.9-1.2 ms at
    10M rows). Values are written into EXECUTE as literals, so only text and integers are (all a
    page binds: the query string's values and the page's numbers); statements with anything else
    or without values, and any DuckDB cannot prepare, are executed as given (as is text holding a
    NUL, which a literal cannot hold; requests never bring one, app.py refuses them)."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection) -> None:
        self.cursor = cursor
        self._names: OrderedDict[str, str | None] = OrderedDict()  # statement -> its name (None: not preparable)

    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> duckdb.DuckDBPyConnection:
        if not parameters or not all((isinstance(value, str) and "\x00" not in value) or type(value) is int for value in parameters):
            return self.cursor.execute(sql, parameters)
        literals = ", ".join(_literal(value) if isinstance(value, str) else str(value) for value in parameters)
        for attempt in (1, 2):
            name = self._prepared(sql)
            if name is None:
                break
            try:
                return self.cursor.execute(f"EXECUTE {name}({literals})")
            except duckdb.Error:
                if attempt == 2:
                    raise
                # A row index it read was detached and attached again since (table_index.py): once more, prepared anew.
                self._names.pop(sql, None)
        return self.cursor.execute(sql, parameters)

    def _prepared(self, sql: str) -> str | None:
        if sql in self._names:
            self._names.move_to_end(sql)
            return self._names[sql]
        name: str | None = f"page_statement_{next(_statement_numbers)}"
        try:
            self.cursor.execute(f"PREPARE {name} AS {sql}")
        except duckdb.Error:
            name = None
        self._names[sql] = name
        while len(self._names) > PREPARED_KEPT:
            _sql, dropped = self._names.popitem(last=False)
            if dropped is not None:
                self.cursor.execute(f"DEALLOCATE {dropped}")
        return name

    def close(self) -> None:
        """Back to the pool (pages()); closed for good when its process's database is gone."""
        with _database_lock:
            if _database_pid == os.getpid() and len(_idle_cursors) < PREPARED_CURSORS_KEPT:
                _idle_cursors.append(self)
                return
        self.cursor.close()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _page_cursor() -> _PreparingCursor:
    """An idle preparing cursor of this process's database, or a new one."""
    with _database_lock:
        database = _process_database()
        if _idle_cursors:
            return _idle_cursors.pop()
        return _PreparingCursor(database.cursor())


def connect() -> duckdb.DuckDBPyConnection:
    """A cursor on this process's database."""
    with _database_lock:
        return _process_database().cursor()


def _process_database() -> duckdb.DuckDBPyConnection:
    """This process's database, made on first use, and again in a forked child (under _database_lock)."""
    global _database, _database_pid
    if _database is None or _database_pid != os.getpid():
        _idle_cursors.clear()
        spill = Path(tempfile.gettempdir()) / f"dinum-tabular-{os.getpid()}"
        _database = duckdb.connect(config={
            "memory_limit": MEMORY_LIMIT, "temp_directory": str(spill), "threads": THREADS,
            # A page of 50 rows is a top-N over the few rows a filter keeps (table_index.py);
            # DuckDB's late materialization (top-N on row ids, then a join back to fetch the
            # columns) costs more than it saves there: 1.5 ms of a 5 ms page, measured.
            "late_materialization_max_rows": 0,
        })
        _database_pid = os.getpid()
    return _database


def is_parquet(resource: Mapping[str, Any]) -> bool:
    return bool(resource.get("file_key")) and PurePosixPath(resource["file_key"]).suffix.lower() == ".parquet"


def same_table(resource: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    """Two hosted files of one table: the pipeline publishes `x.csv` and `x.parquet` side by side."""
    return bool(resource.get("file_key") and other.get("file_key")) and (
        PurePosixPath(resource["file_key"]).stem == PurePosixPath(other["file_key"]).stem
    )


def table_of(resource: Mapping[str, Any], resources: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The Parquet resource whose rows the row API serves for `resource`: itself if it is Parquet;
    for another hosted file (the pipeline's CSV), the dataset's Parquet of the same table."""
    if is_parquet(resource):
        return resource
    return next((other for other in resources if is_parquet(other) and same_table(resource, other)), None)


def file_types(path: Path) -> dict[str, str]:
    """`schema` on a connection of its own."""
    connection = connect()
    try:
        return schema(connection, path)
    finally:
        connection.close()


def _int_parameter(query: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw) if len(raw) <= 20 else 0
    except ValueError:
        raise bad_request(f"{name} must be an integer") from None
    if value < 1 or value > maximum:
        raise bad_request(f"{name} must be between 1 and {maximum}")
    return value


class _Values:
    """The values a query compares columns with, as DuckDB casts them to each column's type: all
    cast in one statement (a page's cost is a few statements), a 400 naming the first parameter
    whose value does not cast. Any text is a VARCHAR already, and the plain forms reusers send
    for dates, integers and decimals are cast here (`_plain_cast`), without a statement."""

    def __init__(self) -> None:
        self._pending: list[tuple[str, str, str]] = []  # (parameter, value, type) to cast

    def add(self, key: str, value: str, column_type: str) -> Any:
        """A slot for `value`: the value itself for text, else its place among the casts."""
        if column_type == "VARCHAR":
            return value
        typed = _plain_cast(value, column_type)
        if typed is not None:
            return typed
        self._pending.append((key, value, column_type))
        return _Cast(len(self._pending) - 1)

    def cast(self, connection: duckdb.DuckDBPyConnection) -> list[Any]:
        if not self._pending:
            return []
        terms = ", ".join(f"TRY_CAST(? AS {column_type})" for _key, _value, column_type in self._pending)
        row = connection.execute(f"SELECT {terms}", [value for _key, value, _type in self._pending]).fetchall()[0]
        for (key, value, column_type), typed in zip(self._pending, row, strict=True):
            if typed is None:
                raise bad_request(f"{key}: {value!r} is not a valid {column_type}")
        return list(row)


@dataclass(frozen=True)
class _Cast:
    position: int


_PLAIN_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PLAIN_INTEGER = re.compile(r"-?\d{1,18}")
_PLAIN_DECIMAL = re.compile(r"-?\d{1,15}(\.\d{1,15})?")
_INTEGER_BOUNDS = {"TINYINT": 7, "SMALLINT": 15, "INTEGER": 31, "BIGINT": 63}  # signed bits


def _plain_cast(value: str, column_type: str) -> Any:
    """`value` as DuckDB's CAST gives it, for the forms that have one reading and the types whose
    Python value is DuckDB's own: an ISO date, an integer within its type's bounds, a decimal
    number as a DOUBLE (both parsers round correctly). None for anything else, which DuckDB casts."""
    if column_type == "DATE" and _PLAIN_DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None  # no such day: DuckDB's refusal names it
    if column_type in _INTEGER_BOUNDS and _PLAIN_INTEGER.fullmatch(value):
        number = int(value)
        bits = _INTEGER_BOUNDS[column_type]
        return number if -(2**bits) <= number < 2**bits else None
    if column_type == "DOUBLE" and _PLAIN_DECIMAL.fullmatch(value):
        return float(value)
    return None


def _resolved(slot: Any, casts: Sequence[Any]) -> Any:
    if isinstance(slot, list):
        return [_resolved(item, casts) for item in slot]
    return casts[slot.position] if isinstance(slot, _Cast) else slot


def parse(
    connection: duckdb.DuckDBPyConnection, types: Mapping[str, str], items: Sequence[tuple[str, str]]
) -> RowQuery:
    """The query string (`items`, repeated keys kept) as a RowQuery against a file of `types`."""
    query = dict(items)
    selected = list(types)
    with_row_id = True
    if "columns" in query:
        selected = [name for name in query["columns"].split(",") if name]
        unknown = [name for name in selected if name not in types]
        if unknown or not selected:
            raise bad_request(f"columns: unknown column(s) {unknown or ['']}; known: {list(types)}")
        with_row_id = False
    result = RowQuery(
        columns=selected,
        page=_int_parameter(query, "page", 1, MAX_PAGE),
        page_size=_int_parameter(query, "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
        with_row_id=with_row_id,
    )
    sorts: list[tuple[str, str, str]] = []  # checked once the aggregates' names are known
    values = _Values()
    slots: list[tuple[str, str, Any]] = []  # (column, operator, the value's slot) of each condition
    for key, value in items:
        if key in RESERVED:
            continue
        name, separator, operator = key.rpartition("__")
        if not separator:
            raise bad_request(f"{key}: expected column__operator; operators: {OPERATORS}")
        if operator == "sort":
            sorts.append((key, name, value))
            continue
        if name not in types:
            raise bad_request(f"{key}: unknown column {name!r}; known: {list(types)}")
        if operator not in OPERATORS:
            raise bad_request(f"{key}: unknown operator {operator!r}; known: {OPERATORS}")
        column, column_type = quote(name), types[name]
        if operator not in AGGREGATES and operator != GROUP_BY:
            result.filtered.append((name, operator))
        if operator == GROUP_BY:
            if name not in result.group_by:
                result.group_by.append(name)
        elif operator in AGGREGATES:
            if operator in NUMERIC_AGGREGATES and not is_numeric(column_type):
                raise bad_request(f"{key}: {operator} needs a numeric column; {name!r} is {column_type}")
            label = f"{name}__{operator}"
            if label not in dict(result.aggregates):
                result.aggregates.append((label, f"{AGGREGATES[operator]}({column})"))
        elif operator in NULL_OPERATORS:
            result.conditions.append(f"{column} {NULL_OPERATORS[operator]}")
            slots.append((name, operator, None))
        elif operator in TEXT_OPERATORS:
            result.conditions.append(
                f"{TEXT_OPERATORS[operator]}contains(lower(CAST({column} AS VARCHAR)), lower(?))"
            )
            result.parameters.append(value)
            slots.append((name, operator, value))
        elif operator in LIST_OPERATORS:
            listed = value.split(",")
            placeholders = ", ".join(f"CAST(? AS {column_type})" for _ in listed)
            result.conditions.append(f"{_compared(column, column_type)} {LIST_OPERATORS[operator]}IN ({placeholders})")
            result.parameters.extend(listed)
            slots.append((name, operator, [values.add(key, item, column_type) for item in listed]))
        else:
            result.conditions.append(COMPARISONS[operator].format(c=_compared(column, column_type), v=f"CAST(? AS {column_type})"))
            result.parameters.append(value)
            slots.append((name, operator, values.add(key, value, column_type)))
    casts = values.cast(connection)
    result.compared = [(name, operator, _resolved(slot, casts)) for name, operator, slot in slots]
    if result.aggregated and "columns" in query:
        raise bad_request("columns: cannot be combined with aggregation (groupby, count, sum, avg, min, max)")
    sortable = result.output_columns if result.aggregated else list(types)
    for key, name, value in sorts:
        if name not in sortable:
            what = "a group or an aggregate of this query" if result.aggregated else "a column"
            raise bad_request(f"{key}: {name!r} is not {what}; sortable: {sortable}")
        if value not in ("asc", "desc"):
            raise bad_request(f"{key}: sort must be asc or desc, not {value!r}")
        result.sorts.append((name, value))
    return result


def _position_source(types: Mapping[str, str]) -> tuple[str, str]:
    """(the row-position column's name, a FROM source over `read_parquet(?)` that has it): DuckDB's
    `file_row_number`, unless the file has a column of that name (then a window over the scan,
    which loses filter pushdown: rare enough)."""
    position = table_index.position_name(list(types))
    if "file_row_number" in types:
        return position, f"(SELECT *, row_number() OVER () - 1 AS {quote(position)} FROM read_parquet(?))"
    return position, f"(SELECT *, file_row_number AS {quote(position)} FROM read_parquet(?, file_row_number = true))"


def _aggregate_select(query: RowQuery) -> str:
    """The grouped SELECT (no ORDER BY, no LIMIT) over `read_parquet(?)`."""
    terms = [quote(name) for name in query.group_by] + [f"{sql} AS {quote(label)}" for label, sql in query.aggregates]
    group = f" GROUP BY {', '.join(quote(name) for name in query.group_by)}" if query.group_by else ""
    return f"SELECT {', '.join(terms)} FROM read_parquet(?){query.where()}{group}"


def _aggregate_order(query: RowQuery) -> str:
    """Asked-for sorts, then the groups themselves, so that pages are stable."""
    terms = [*query.order, *(f"{quote(name)} ASC NULLS LAST" for name in query.group_by)]
    return f" ORDER BY {', '.join(terms)}" if terms else ""


_JSON_TYPES_AS_THEY_ARE = frozenset({str, int, bool, type(None)})


def _records(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows as JSON objects, each column's values converted (`jsonable`) only if one needs it."""
    converted = [
        values if set(map(type, values)) <= _JSON_TYPES_AS_THEY_ARE else [jsonable(value) for value in values]
        for values in zip(*rows, strict=True)
    ]
    return [dict(zip(columns, row, strict=True)) for row in zip(*converted, strict=True)]


def rows(path: Path, items: Sequence[tuple[str, str]]) -> tuple[RowQuery, list[dict[str, Any]], int]:
    """One page of the file's rows (or groups) matching the query, and how many match in all."""
    connection: Any = _page_cursor()
    try:
        types = schema(connection, path)
        query = parse(connection, types, items)
        page = [query.page_size, (query.page - 1) * query.page_size]
        if query.aggregated:
            grouped = _aggregate_select(query)
            parameters = [str(path), *query.parameters]
            total = connection.execute(f"SELECT count(*) FROM ({grouped})", parameters).fetchone()
            answer = connection.execute(f"{grouped}{_aggregate_order(query)} LIMIT ? OFFSET ?", [*parameters, *page])
            return query, _records(query.output_columns, answer.fetchall()), int(total[0]) if total else 0
        with table_index.usable(connection, path) as index:
            copy = index.table_for(query.filtered) if index is not None else None
            if index is not None and copy is not None:
                total, found = _indexed_page(connection, query, index, copy, page)
            else:
                total, found = _parquet_page(connection, query, path, types, page)
    finally:
        connection.close()
    columns = [ROW_ID, *query.columns] if query.with_row_id else query.columns
    data = _records(columns, [row if query.with_row_id else row[1:] for row in found])
    return query, data, total


def _count(connection: duckdb.DuckDBPyConnection, source: str, query: RowQuery, sources: list[Any]) -> int:
    total = connection.execute(f"SELECT count(*) FROM {source}{query.where()}", [*sources, *query.parameters]).fetchone()
    return int(total[0]) if total else 0


def _parquet_page(
    connection: duckdb.DuckDBPyConnection, query: RowQuery, path: Path, types: Mapping[str, str], page: list[int]
) -> tuple[int, list[Any]]:
    """(how many rows match, the page's rows with their position first), read from the Parquet."""
    position, source = _position_source(types)
    # Without a sort, the file's order: DuckDB keeps it (preserve_insertion_order) and the LIMIT
    # stops the scan early; with one, the position breaks ties so that pages are stable.
    order = f" ORDER BY {', '.join([*query.order, quote(position)])}" if query.order else ""
    selected = ", ".join(quote(name) for name in query.columns)
    found = connection.execute(
        f"SELECT {quote(position)} + 1, {selected} FROM {source}{query.where()}{order} LIMIT ? OFFSET ?",
        [str(path), *query.parameters, *page],
    ).fetchall()
    return _count(connection, source, query, [str(path)]), found


def _indexed_page(
    connection: duckdb.DuckDBPyConnection, query: RowQuery, index: table_index.Index, copy: table_index.Copy, page: list[int]
) -> tuple[int, list[Any]]:
    """The same, read from a copy sorted by a filtered column (table_index.py), where the matching
    rows are a few segments: the same rows in the same order as `_parquet_page`'s."""
    where = query.where()

    def counted() -> int:  # counted once per selection: its next pages reuse the total
        return index.remembered_total(copy.table + where, query.parameters, lambda: _count(connection, copy.table, query, []))

    if index.arrays is not None:  # read from the rows' arrays when they can (row_arrays.py)
        answered = index.arrays.page(copy.column, index.counts.get(copy.column), query.compared, query.sorts, query.columns,
                                     page, counted, DIRECT_SCAN_ROWS)
        if answered is not None:
            return answered
    position = index.position
    selected = f"{quote(position)} + 1, {', '.join(quote(name) for name in query.columns)}"
    by_position = f" ORDER BY {quote(position)}"
    total = index.count(copy.column, query.compared)  # from the index's counts of each value
    if total is None:
        total = counted()
    if total <= page[1]:  # past the last page
        return total, []
    if query.order:  # the asked-for sort over the few matching rows, ties in the file's order
        sql = f"SELECT {selected} FROM {copy.table}{where} ORDER BY {', '.join([*query.order, quote(position)])} LIMIT ? OFFSET ?"
        found = connection.execute(sql, [*query.parameters, *page]).fetchall()
    elif copy.in_file_order:  # one run of the sorted column, already in the file's order
        found = connection.execute(f"SELECT {selected} FROM {copy.table}{where} LIMIT ? OFFSET ?", [*query.parameters, *page]).fetchall()
    elif (page[1] + page[0]) * index.rows <= DIRECT_SCAN_ROWS * total:
        # Several runs (a range, a list) matching often enough that the page's rows come within the
        # first DIRECT_SCAN_ROWS of the file, on average: read in file order, the scan stopping
        # after the page (a month of 10M sales: ~3,000 rows read, 1.9 ms against 4.8 below).
        found = connection.execute(
            f"SELECT {selected} FROM {index.in_file_order}{where} LIMIT ? OFFSET ?", [*query.parameters, *page]
        ).fetchall()
    else:
        # Several runs, sparse: the page is the matching rows between its first and last
        # positions, found from the positions alone (a top-N carrying every column of every
        # matching row costs ~3x more at 10M rows); then those rows are read where they lie
        # closest: between those positions in file order, unless that span holds more rows than
        # match in all, then among the matching rows of the sorted copy.
        bounds = connection.execute(
            f"SELECT min({quote(position)}), max({quote(position)}) FROM "
            f"(SELECT {quote(position)} FROM {copy.table}{where}{by_position} LIMIT ? OFFSET ?)",
            [*query.parameters, *page],
        ).fetchone()
        if bounds is None or bounds[0] is None:
            return total, []
        source = index.in_file_order if bounds[1] - bounds[0] < total else copy.table
        found = connection.execute(
            f"SELECT {selected} FROM {source} WHERE {' AND '.join([*query.conditions, f'{quote(position)} BETWEEN ? AND ?'])}{by_position}",
            [*query.parameters, *bounds],
        ).fetchall()
    return total, found


@dataclass
class Export:
    """A whole filtered selection, checked before the response starts (a bad query is still a
    400), and streamed by iterating `chunks`."""

    connection: duckdb.DuckDBPyConnection
    query: RowQuery
    relation: duckdb.DuckDBPyRelation

    def _reader(self) -> Iterator[Any]:
        """The record-batch reader first (its schema even when no row matches), then its batches;
        the connection is closed when they are exhausted or the client goes."""
        try:
            reader = self.relation.to_arrow_reader(EXPORT_BATCH_ROWS)
            yield reader
            yield from reader
        finally:
            self.connection.close()

    def csv_chunks(self) -> Iterator[bytes]:
        """CSV as the pipeline writes its published files (same writer, same options)."""
        batches = self._reader()
        buffer = io.BytesIO()
        writer = pacsv.CSVWriter(buffer, next(batches).schema, write_options=CSV_WRITE_OPTIONS)  # writes the header
        for batch in batches:
            writer.write_batch(batch)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    def json_chunks(self) -> Iterator[bytes]:
        """One JSON array of objects, as `/data/`'s `data` (without `__id`)."""
        batches = self._reader()
        next(batches)
        opening = b"["
        for batch in batches:
            records = _records(batch.schema.names, list(zip(*(column.to_pylist() for column in batch.columns), strict=True)))
            if records:
                yield opening + ",\n".join(json.dumps(record, ensure_ascii=False) for record in records).encode()
                opening = b",\n"
        yield b"[]" if opening == b"[" else b"]"


def export(path: Path, items: Sequence[tuple[str, str]]) -> Export:
    """The selection for `/data/csv/` and `/data/json/`: every matching row (or group), no page."""
    connection = connect()
    try:
        types = schema(connection, path)
        query = parse(connection, types, [(key, value) for key, value in items if key not in ("page", "page_size")])
        if query.aggregated:
            sql = f"{_aggregate_select(query)}{_aggregate_order(query)}"
        elif query.order:  # ties in the file's order, as the pages
            position, source = _position_source(types)
            selected = ", ".join(quote(name) for name in query.columns)
            sql = f"SELECT {selected} FROM {source}{query.where()} ORDER BY {', '.join([*query.order, quote(position)])}"
        else:
            selected = ", ".join(quote(name) for name in query.columns)
            sql = f"SELECT {selected} FROM read_parquet(?){query.where()}"
        relation = connection.sql(sql, params=[str(path), *query.parameters])
    except BaseException:
        connection.close()
        raise
    return Export(connection, query, relation)


# The resource's OpenAPI document: which operators apply to which column, as api-tabular's.
_JSON_TYPES = {"bool": "boolean", "int": "integer", "float": "number"}
_OPERATOR_WORDS = {
    "exact": "equal to the value", "differs": "different from the value (or null)",
    "less": "less than or equal to the value", "greater": "greater than or equal to the value",
    "strictly_less": "strictly less than the value", "strictly_greater": "strictly greater than the value",
    "contains": "containing the text (case-insensitive)", "notcontains": "not containing the text (case-insensitive)",
    "in": "one of the comma-separated values", "notin": "none of the comma-separated values",
    "isnull": "empty", "isnotnull": "not empty", "sort": "sorted: asc or desc", GROUP_BY: "grouped by this column",
    "count": "count of non-empty values", "sum": "sum", "avg": "mean", "min": "minimum", "max": "maximum",
}
_NO_VALUE = ("isnull", "isnotnull", GROUP_BY, *AGGREGATES)


def column_operators(column_type: str) -> list[str]:
    kind = python_type(column_type)
    if kind == "json":
        return ["isnull", "isnotnull"]
    operators = ["exact", "differs", "isnull", "isnotnull", "in", "notin", "sort", GROUP_BY, "count"]
    if kind != "bool":
        operators += ["less", "greater", "strictly_less", "strictly_greater", "min", "max"]
    if kind in ("string", "date", "datetime"):
        operators += ["contains", "notcontains"]
    if kind in ("int", "float"):
        operators += list(NUMERIC_AGGREGATES)
    return operators


def swagger(path: Path, rid: str, base_url: str) -> dict[str, Any]:
    """An OpenAPI 3 document for this resource's `/data/`, `/data/csv/` and `/data/json/`: one
    query parameter per column and operator that applies to its type, and the row's schema."""
    types = file_types(path)
    parameters: list[dict[str, Any]] = [
        {"name": "page", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}, "description": "Page, from 1"},
        {"name": "page_size", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}, "description": f"Rows per page (default {DEFAULT_PAGE_SIZE})"},
        {"name": "columns", "in": "query", "required": False, "schema": {"type": "string"}, "style": "form",
         "explode": False, "description": "Columns to return, comma-separated"},
    ]
    for name, column_type in types.items():
        for operator in column_operators(column_type):
            parameter: dict[str, Any] = {
                "name": f"{name}__{operator}", "in": "query", "required": False,
                "description": f"{name}: {_OPERATOR_WORDS[operator]}", "schema": {"type": "string"},
            }
            if operator in _NO_VALUE:
                parameter.update(schema={"type": "boolean"}, allowEmptyValue=True)
            elif operator == "sort":
                parameter["schema"] = {"type": "string", "enum": ["asc", "desc"]}
            parameters.append(parameter)
    row = {name: {"type": _JSON_TYPES.get(python_type(column_type), "string"), "nullable": True, "x-duckdb-type": column_type}
           for name, column_type in types.items()}
    errors = {"400": {"description": INVALID}, "404": {"description": "Resource not found"}}

    def operation(summary: str, content: dict[str, Any]) -> dict[str, Any]:
        return {"get": {"summary": summary, "parameters": parameters,
                        "responses": {"200": {"description": "successful operation", "content": content}, **errors}}}

    data_path = f"/api/resources/{rid}/data/"
    return {
        "openapi": "3.0.3",
        "info": {"title": "Tabular API", "version": "1.0.0",
                 "description": f"The rows of resource {rid}, filtered, sorted, aggregated and paged (api-tabular's syntax)."},
        "servers": [{"url": base_url}],
        "paths": {
            data_path: operation("Rows of the resource, one page", {"application/json": {"schema": {"$ref": "#/components/schemas/ResourceData"}}}),
            f"{data_path}csv/": operation("The whole selection as CSV", {"text/csv": {}}),
            f"{data_path}json/": operation("The whole selection as a JSON array", {"application/json": {}}),
        },
        "components": {"schemas": {
            "Resource": {"type": "object", "properties": {ROW_ID: {"type": "integer"}, **row}},
            "ResourceData": {"type": "object", "properties": {
                "data": {"type": "array", "items": {"$ref": "#/components/schemas/Resource"}},
                "links": {"type": "object", "properties": {key: {"type": "string", "nullable": True} for key in ("profile", "swagger", "next", "prev")}},
                "meta": {"type": "object", "properties": {key: {"type": "integer"} for key in ("page", "page_size", "total")}},
            }},
        }},
    }
