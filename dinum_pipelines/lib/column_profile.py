"""What each published column holds, for reusers: its type, description, empty cells, distinct
values, bounds and most frequent values, computed at publication from the clean Parquet.

data.gouv.fr shows such a profile on its resource pages (hydra runs csv-detective after each
upload) and api-tabular serves it at `/api/resources/{rid}/profile/`. The pipeline already knows
the columns' declared types and descriptions, so it computes the profile itself and sends it with
the files, as the resource extra `dinum:profile` in csv-detective's shape (`columns`, `profile`,
`total_lines`): the catalog serves it and draws it on the dataset page without analysing files.

DuckDB reads the file column by column under the memory limit of lib/repeats.py (spilling to disk
for the distinct counts and the most frequent values), so memory does not grow with the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dinum_pipelines.lib.duckdb_values import jsonable, python_type
from dinum_pipelines.lib.repeats import POSITION, parquet_database, quoted

PROFILE_EXTRA = "dinum:profile"
TOP_VALUES = 5  # the most frequent values seen at least twice (all-distinct columns have none)
MAX_TEXT = 200  # characters kept of a long value (a description, an address) in min/max/tops


def _shown(value: Any) -> Any:
    value = jsonable(value)
    return value[:MAX_TEXT] + "…" if isinstance(value, str) and len(value) > MAX_TEXT else value


def column_profile(path: Path, descriptions: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The profile of the Parquet file at `path`; `descriptions` are the columns' declared ones."""
    descriptions = descriptions or {}
    columns: dict[str, Any] = {}
    profile: dict[str, Any] = {}
    with parquet_database(path) as connection:
        types = {name: kind for name, kind, *_ in connection.execute("DESCRIBE t").fetchall() if name != POSITION}
        total = connection.execute("SELECT count(*) FROM t").fetchall()[0][0]
        for name, kind in types.items():
            column, kind_name = quoted(name), python_type(kind)
            columns[name] = {"python_type": kind_name, "duckdb_type": kind, "description": descriptions.get(name, "")}
            if kind_name == "json":  # lists and structs: only their empty cells
                missing = connection.execute(f"SELECT count(*) - count({column}) FROM t").fetchall()[0][0]
                profile[name] = {"nb_missing_values": int(missing), "nb_distinct": None, "min": None, "max": None, "tops": []}
                continue
            missing, distinct, low, high = connection.execute(
                f"SELECT count(*) - count({column}), count(DISTINCT {column}), min({column}), max({column}) FROM t"
            ).fetchall()[0]
            tops = connection.execute(
                f"SELECT {column}, count(*) AS n FROM t WHERE {column} IS NOT NULL "
                f"GROUP BY {column} HAVING count(*) > 1 ORDER BY n DESC, {column} LIMIT {TOP_VALUES}"
            ).fetchall()
            profile[name] = {
                "nb_missing_values": int(missing),
                "nb_distinct": int(distinct),
                "min": _shown(low),
                "max": _shown(high),
                "tops": [{"tops": _shown(value), "count": int(count)} for value, count in tops],
            }
    return {"total_lines": int(total), "columns": columns, "profile": profile}
