"""What changed between two versions of a clean table: the summary a publication sends with its files.

Reusers who download every new version want to know whether it is worth it, and what to look at:
the catalog shows each resource's history with this summary (catalog/versions.py). It is
computed here, on the two Parquet files, by the pipeline that knows the table's primary key:

- with a key (the Table Schema's `primaryKey`, or the registry's `primary_key`), rows are matched
  on it: a row of the new file whose key the old file lacks is added, a row of the old file whose
  key the new one lacks is removed, and a row of the new file whose key the old file has, but
  with no row there equal to it on every column both files have, is modified (with a unique key:
  same key, some value differs). Missing values equal each other, in keys and values alike;
- without a key, or when a key column is missing from either file, only the row counts before
  and after are given;
- in both cases, the columns added and removed (by name; a column whose type changed is compared
  as text).

The counts come from DuckDB joins over the files on disk, under the same memory limit and spill
folder as the duplicate-key checks (repeats.py), so memory does not grow with the table.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from dinum_pipelines.lib.clean.repeats import MEMORY_LIMIT, THREADS, quoted, scalar


@dataclass(frozen=True)
class TableChanges:
    key: list[str]  # the key the rows were matched on; [] when they were only counted
    rows_before: int
    rows_after: int
    rows_added: int | None
    rows_removed: int | None
    rows_modified: int | None
    columns_added: list[str]
    columns_removed: list[str]

    def as_extra(self) -> dict[str, Any]:
        """The `dinum:changes` extra the catalog keeps with the new file's version."""
        return asdict(self)

    def describe(self) -> str:
        """One line for a run's log."""
        if self.rows_added is None:
            rows = f"{self.rows_before} -> {self.rows_after} rows"
        else:
            rows = f"+{self.rows_added} -{self.rows_removed} ~{self.rows_modified} rows by {', '.join(self.key)}"
        columns = [f"+{name}" for name in self.columns_added] + [f"-{name}" for name in self.columns_removed]
        return rows + (f"; columns {' '.join(columns)}" if columns else "")


def _path_literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def table_changes(before: Path, after: Path, key: Sequence[str] = ()) -> TableChanges:
    """The changes from the clean Parquet file `before` to `after` (see the module's docstring)."""
    old_schema, new_schema = pq.read_schema(before), pq.read_schema(after)
    old_columns, new_columns = list(old_schema.names), list(new_schema.names)
    rows_before, rows_after = pq.ParquetFile(before).metadata.num_rows, pq.ParquetFile(after).metadata.num_rows
    columns_added = [name for name in new_columns if name not in old_columns]
    columns_removed = [name for name in old_columns if name not in new_columns]
    usable_key = list(key) if key and all(name in old_columns and name in new_columns for name in key) else []
    if not usable_key:
        return TableChanges([], rows_before, rows_after, None, None, None, columns_added, columns_removed)
    common = [name for name in new_columns if name in old_columns]
    retyped = {name for name in common if old_schema.field(name).type != new_schema.field(name).type}

    def value(side: str, name: str) -> str:
        column = f"{side}.{quoted(name)}"
        return f"CAST({column} AS VARCHAR)" if name in retyped else column

    def matching(names: Sequence[str]) -> str:
        return " AND ".join(f"{value('o', name)} IS NOT DISTINCT FROM {value('n', name)}" for name in names)

    with tempfile.TemporaryDirectory(prefix=".changes-", dir=after.parent) as spill:
        connection = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "threads": THREADS, "temp_directory": spill})
        try:
            connection.execute(f"CREATE TEMP VIEW o AS SELECT * FROM read_parquet({_path_literal(before)})")
            connection.execute(f"CREATE TEMP VIEW n AS SELECT * FROM read_parquet({_path_literal(after)})")
            same_key, same_row = matching(usable_key), matching(common)
            added = scalar(connection, f"SELECT count(*) FROM n ANTI JOIN o ON {same_key}")
            removed = scalar(connection, f"SELECT count(*) FROM o ANTI JOIN n ON {same_key}")
            # Rows of the new file whose key the old file has, less those with an identical row there.
            kept = scalar(connection, f"SELECT count(*) FROM n SEMI JOIN o ON {same_key}")
            unchanged = scalar(connection, f"SELECT count(*) FROM n SEMI JOIN o ON {same_row}")
        finally:
            connection.close()
    return TableChanges(usable_key, rows_before, rows_after, added, removed, kept - unchanged, columns_added, columns_removed)
