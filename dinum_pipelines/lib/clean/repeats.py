"""Rows that repeat a value or a key across a whole clean file, found on disk with DuckDB.

Uniqueness is the one question no record batch answers alone: a key in the first batch may come
back in the last. Holding every key in memory would make memory grow with the file (a primary
key of 60 million rows is gigabytes of strings), so the streaming path asks DuckDB over the
clean Parquet file instead, with a memory limit and a spill folder: its group-bys and joins go to
disk when they do not fit. Rows are named by their position in the Parquet file (0-based).

Two questions are answered here, each with the semantics of its in-memory reference:
- `resolve_duplicate_keys`: the rows cleaning drops under the dataset's `on_duplicate_key`
  policy, and those left in conflict (cleaning.drop_duplicate_keys, pandas' `duplicated`:
  missing values equal each other);
- `repeated_rows`: the rows a uniqueness expectation fails (GX's
  `expect_column_values_to_be_unique` and `expect_compound_columns_to_be_unique`, as the Arrow
  engine computes them: missing values are not values, a row whose key is all missing is out).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dinum_pipelines.lib.clean.cleaning import SAMPLE_SIZE, DuplicateKeys

# DuckDB's share of the streaming path's memory budget; beyond it, its operators spill.
MEMORY_LIMIT = "256MB"
THREADS = 2
POSITION = "__dinum_position"
ROWS = "__dinum_rows"  # a repeated value's rows, beside it


def quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@contextmanager
def parquet_database(parquet: Path, threads: int = THREADS) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection where view `t` is the Parquet file with each row's position
    (`POSITION`), under the memory limit, spilling into a folder beside the file."""
    with tempfile.TemporaryDirectory(prefix=".repeats-", dir=parquet.parent) as spill:
        connection = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "threads": threads, "temp_directory": spill})
        try:
            connection.execute(
                f"CREATE TEMP VIEW t AS SELECT * EXCLUDE (file_row_number), file_row_number AS {POSITION} "
                f"FROM read_parquet({_literal(str(parquet))}, file_row_number = true)"
            )
            yield connection
        finally:
            connection.close()


def _same(left: str, right: str, columns: Sequence[str]) -> str:
    return " AND ".join(f"{left}.{quoted(c)} IS NOT DISTINCT FROM {right}.{quoted(c)}" for c in columns)


def scalar(connection: duckdb.DuckDBPyConnection, query: str) -> Any:
    # fetchall, not fetchone: DuckDB refuses further work while a result is not fetched to its end.
    return connection.execute(query).fetchall()[0][0]


def positions(connection: duckdb.DuckDBPyConnection, query: str) -> np.ndarray:
    table = connection.sql(query).to_arrow_table()
    return table.column(0).to_numpy() if table.num_rows else np.empty(0, dtype=np.int64)


def _key_text(value: Any, arrow_type: pa.DataType) -> str:
    """A key's value as `str()` of the pandas value cleaning's in-memory path holds."""
    if value is None:
        if pa.types.is_integer(arrow_type) or pa.types.is_boolean(arrow_type):
            return "<NA>"
        return "NaT" if pa.types.is_temporal(arrow_type) else "nan"
    if isinstance(value, (date, datetime)):
        return str(pd.Timestamp(value))
    return str(value)


def resolve_duplicate_keys(
    parquet: Path, key: Sequence[str], policy: str, data_rows: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, DuplicateKeys | None]:
    """The positions of the rows to drop (sorted) and the report, as `drop_duplicate_keys` would
    give them for the whole table; `data_rows` numbers positions as the source's data rows."""
    schema = pq.read_schema(parquet)
    columns = list(schema.names)
    keys = ", ".join(quoted(c) for c in key)
    with parquet_database(parquet) as db:
        db.execute(f"CREATE TEMP TABLE repeated AS SELECT {keys} FROM t GROUP BY ALL HAVING count(*) > 1")
        if scalar(db, "SELECT count(*) FROM repeated") == 0:
            return np.empty(0, dtype=np.int64), None
        db.execute(f"CREATE TEMP TABLE r AS SELECT t.* FROM t JOIN repeated ON {_same('t', 'repeated', key)}")
        order = {"keep_last": f"{POSITION} DESC"}.get(policy, POSITION)
        partition = {"drop_identical": ", ".join(quoted(c) for c in columns)}.get(policy, keys)
        if policy == "keep_all":
            db.execute(f"CREATE TEMP TABLE dropped AS SELECT {POSITION} FROM r WHERE false")
        else:
            db.execute(
                f"CREATE TEMP TABLE dropped AS SELECT {POSITION} FROM ("
                f"SELECT {POSITION}, row_number() OVER (PARTITION BY {partition} ORDER BY {order}) AS n FROM r) WHERE n > 1"
            )
        dropped = np.sort(positions(db, f"SELECT {POSITION} FROM dropped"))
        db.execute(f"CREATE TEMP TABLE kept AS SELECT * FROM r ANTI JOIN dropped USING ({POSITION})")
        db.execute(
            f"CREATE TEMP TABLE conflicts AS SELECT {keys}, min({POSITION}) AS first FROM kept GROUP BY ALL HAVING count(*) > 1"
        )
        conflicting_rows = f"SELECT kept.{POSITION} FROM kept JOIN conflicts ON {_same('kept', 'conflicts', key)}"
        conflicting = scalar(db, f"SELECT count(*) FROM ({conflicting_rows})")
        first_conflicting = positions(db, f"{conflicting_rows} ORDER BY 1 LIMIT {SAMPLE_SIZE}")
        # Each key as its group's first row writes it (-0.0 stays -0.0: the group holds 0.0).
        samples = db.execute(
            f"SELECT {keys} FROM kept SEMI JOIN (SELECT first FROM conflicts ORDER BY first LIMIT {SAMPLE_SIZE}) AS f "
            f"ON kept.{POSITION} = f.first ORDER BY {POSITION}"
        ).fetchall()
    report = DuplicateKeys(key=list(key), policy=policy)
    report.dropped = len(dropped)
    report.dropped_rows = [int(row) for row in data_rows(dropped[:SAMPLE_SIZE])]
    report.conflicting = int(conflicting)
    report.conflicting_rows = [int(row) for row in data_rows(first_conflicting)]
    types = [schema.field(c).type for c in key]
    report.conflicting_keys = [[_key_text(value, kind) for value, kind in zip(row, types)] for row in samples]
    return dropped, report


def _present(column: str, arrow_type: pa.DataType) -> str:
    """SQL: the column holds a value (pandas counts a float NaN as missing, as GX does)."""
    condition = f"{quoted(column)} IS NOT NULL"
    if pa.types.is_floating(arrow_type):
        condition += f" AND NOT isnan({quoted(column)})"
    return condition


def repeated_rows(parquet: Path, columns: Sequence[str], limit: int) -> tuple[int, np.ndarray]:
    """How many rows a uniqueness expectation on `columns` fails, and the first `limit` of them
    (positions, sorted). One column: rows holding a value another row holds. Several: rows not
    all missing whose combination of values (missing ones included) another such row has."""
    try:
        return _repeated_rows(parquet, columns, limit)
    except duckdb.Error as exc:  # a type DuckDB cannot compare: the rule is reported as not evaluable
        raise ValueError(f"uniqueness of {list(columns)} could not be computed: {exc}") from None


def _repeated_rows(parquet: Path, columns: Sequence[str], limit: int) -> tuple[int, np.ndarray]:
    schema = pq.read_schema(parquet)
    present = [_present(c, schema.field(c).type) for c in columns]
    domain = present[0] if len(columns) == 1 else " OR ".join(f"({p})" for p in present)
    names = ", ".join(quoted(c) for c in columns)
    with parquet_database(parquet) as db:
        db.execute(f"CREATE TEMP VIEW considered AS SELECT {names}, {POSITION} FROM t WHERE {domain}")
        # The failing rows are counted from the groups (each repeated value's rows), not from a
        # join of every row with them: one pass over the file less (at 30M rows, most of them
        # repeated: bench/README.md).
        db.execute(f"CREATE TEMP TABLE repeated AS SELECT {names}, count(*) AS {ROWS} FROM considered GROUP BY ALL HAVING count(*) > 1")
        count = scalar(db, f"SELECT coalesce(sum({ROWS}), 0) FROM repeated")
        if count == 0:
            return 0, np.empty(0, dtype=np.int64)
        rows = f"SELECT considered.{POSITION} FROM considered JOIN repeated ON {_same('considered', 'repeated', columns)}"
        first = positions(db, f"{rows} ORDER BY 1 LIMIT {int(limit)}")
    return int(count), first
