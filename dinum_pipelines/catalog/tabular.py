"""The row API: `GET /api/resources/{rid}/data/`, the rows of a published table, with
data.gouv.fr's api-tabular query syntax so that reusers' existing code works unchanged.

Why a module of its own, and why DuckDB: api-tabular loads each CSV into PostgreSQL and serves it
through PostgREST, which is why it caps files at 100 MB. The pipeline already publishes every
table as Parquet next to its CSV, so the catalog queries that file in place: DuckDB reads only the
columns asked for and skips row groups by their statistics, whatever the file's size, with no load
step and no copy of the data in the catalog's database. This module turns the query string into
one parameterised SQL statement over `read_parquet(path)` (values are always bound, identifiers
quoted, columns checked against the file's schema) and the result into api-tabular's answer
`{data, links, meta}`; app.py only finds the resource's file and wires the route.

Syntax (as api-tabular): `col__exact`, `__differs`, `__contains`, `__notcontains` (both
case-insensitive, on the value's text), `__in=a,b`, `__notin`, `__less` (<=), `__greater` (>=),
`__strictly_less`, `__strictly_greater`, `__isnull`, `__isnotnull`, `col__sort=asc|desc` (nulls
last ascending, first descending, as PostgreSQL), `columns=a,b`, `page` (from 1), `page_size`
(default 20, at most 1,000: more is a 400, as api-tabular answers). Comparisons follow SQL: a null
matches no comparison (`__differs`, `__notin` and `__notcontains` included), only `__isnull`.
Bad parameters are a 400 in api-tabular's body naming the column or operator.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from dinum_pipelines.catalog.metrics_api import MetricApiError

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000
MAX_PAGE = 10**12  # a page beyond the rows is an empty page, not an error; this only bounds the integer
INVALID = "Invalid query string"
ROW_ID = "__id"  # api-tabular's row id: here the row's position in the file, from 1

# operator -> SQL template over {c} (the quoted column) and {v} (a bound, cast value).
COMPARISONS = {
    "exact": "{c} = {v}",
    "differs": "{c} <> {v}",
    "less": "{c} <= {v}",
    "greater": "{c} >= {v}",
    "strictly_less": "{c} < {v}",
    "strictly_greater": "{c} > {v}",
}
TEXT_OPERATORS = {"contains": "", "notcontains": "NOT "}
LIST_OPERATORS = {"in": "", "notin": "NOT "}
NULL_OPERATORS = {"isnull": "IS NULL", "isnotnull": "IS NOT NULL"}
OPERATORS = sorted([*COMPARISONS, *TEXT_OPERATORS, *LIST_OPERATORS, *NULL_OPERATORS, "sort"])
RESERVED = ("page", "page_size", "columns")


def bad_request(detail: str) -> MetricApiError:
    return MetricApiError(400, INVALID, detail)


def quote(identifier: str) -> str:
    """A DuckDB identifier, double-quoted with inner quotes doubled: any column name is safe."""
    return '"' + identifier.replace('"', '""') + '"'


@dataclass
class RowQuery:
    """A parsed query string: WHERE conditions with their bound parameters, ORDER BY terms, the
    selected columns and the page."""

    columns: list[str]
    conditions: list[str] = field(default_factory=list)
    parameters: list[Any] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    with_row_id: bool = True


def schema(connection: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    """Column name -> DuckDB type of the Parquet file."""
    rows = connection.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    return {row[0]: row[1] for row in rows}


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


def _checked_value(connection: duckdb.DuckDBPyConnection, key: str, value: str, column_type: str) -> str:
    """`value` if DuckDB can cast it to the column's type; a 400 naming the parameter otherwise."""
    try:
        connection.execute(f"SELECT CAST(? AS {column_type})", [value]).fetchall()
    except duckdb.Error:
        raise bad_request(f"{key}: {value!r} is not a valid {column_type}") from None
    return value


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
    for key, value in items:
        if key in RESERVED:
            continue
        name, separator, operator = key.rpartition("__")
        if not separator:
            raise bad_request(f"{key}: expected column__operator; operators: {OPERATORS}")
        if name not in types:
            raise bad_request(f"{key}: unknown column {name!r}; known: {list(types)}")
        if operator not in OPERATORS:
            raise bad_request(f"{key}: unknown operator {operator!r}; known: {OPERATORS}")
        column, column_type = quote(name), types[name]
        if operator == "sort":
            if value not in ("asc", "desc"):
                raise bad_request(f"{key}: sort must be asc or desc, not {value!r}")
            result.order.append(f"{column} ASC NULLS LAST" if value == "asc" else f"{column} DESC NULLS FIRST")
        elif operator in NULL_OPERATORS:
            result.conditions.append(f"{column} {NULL_OPERATORS[operator]}")
        elif operator in TEXT_OPERATORS:
            result.conditions.append(
                f"{TEXT_OPERATORS[operator]}contains(lower(CAST({column} AS VARCHAR)), lower(?))"
            )
            result.parameters.append(value)
        elif operator in LIST_OPERATORS:
            values = [_checked_value(connection, key, item, column_type) for item in value.split(",")]
            placeholders = ", ".join(f"CAST(? AS {column_type})" for _ in values)
            result.conditions.append(f"{column} {LIST_OPERATORS[operator]}IN ({placeholders})")
            result.parameters.extend(values)
        else:
            _checked_value(connection, key, value, column_type)
            result.conditions.append(COMPARISONS[operator].format(c=column, v=f"CAST(? AS {column_type})"))
            result.parameters.append(value)
    return result


def jsonable(value: Any) -> Any:
    """A DuckDB value as JSON: numbers as numbers (NaN and infinities as null), dates and times
    as ISO 8601 strings, binary as base64, nested values recursively."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent >= 0 else float(value)
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return str(value)


def rows(path: Path, items: Sequence[tuple[str, str]]) -> tuple[RowQuery, list[dict[str, Any]], int]:
    """One page of the file's rows matching the query, and how many match in all. A connection of
    its own per call (an in-memory DuckDB opens in about a millisecond), closed on return."""
    connection = duckdb.connect()
    try:
        types = schema(connection, path)
        query = parse(connection, types, items)
        # The row's position in the file: DuckDB's `file_row_number`, unless the file has a column
        # of that name (then a window over the scan, which loses filter pushdown: rare enough).
        position = "__row_position"
        while position in types:
            position += "_"
        if "file_row_number" in types:
            source = f"(SELECT *, row_number() OVER () - 1 AS {quote(position)} FROM read_parquet(?))"
        else:
            source = f"(SELECT *, file_row_number AS {quote(position)} FROM read_parquet(?, file_row_number = true))"
        where = f" WHERE {' AND '.join(query.conditions)}" if query.conditions else ""
        # Without a sort, the file's order: DuckDB keeps it (preserve_insertion_order) and the
        # LIMIT stops the scan early; with one, the position breaks ties so that pages are stable.
        order = f" ORDER BY {', '.join([*query.order, quote(position)])}" if query.order else ""
        total = connection.execute(f"SELECT count(*) FROM {source}{where}", [str(path), *query.parameters]).fetchone()
        selected = ", ".join(quote(name) for name in query.columns)
        page = connection.execute(
            f"SELECT {quote(position)} + 1, {selected} FROM {source}{where}{order} LIMIT ? OFFSET ?",
            [str(path), *query.parameters, query.page_size, (query.page - 1) * query.page_size],
        ).fetchall()
    finally:
        connection.close()
    data = []
    for row_id, *values in page:
        record = {ROW_ID: row_id} if query.with_row_id else {}
        record.update((name, jsonable(value)) for name, value in zip(query.columns, values, strict=True))
        data.append(record)
    return query, data, int(total[0]) if total else 0
