"""Coherence of a new version with the last published one: rows lost, columns gone, types, nulls.

A file can meet every declared rule and still be wrong: half the rows missing after a failed
export, a column renamed upstream, a column suddenly empty. Each published version leaves a
small profile (`published_profile.json` next to the clean files: row count, and per column its
type and share of nulls), and the next version is compared with it:

- rows lost beyond `max_row_drop_percent` -> `expect_table_row_count_to_be_between` (critical);
- columns removed -> `expect_table_columns_to_match_set`, at least the previous ones (critical);
- columns added -> the same expectation, exactly the previous columns still present (warning);
- a column's share of nulls up by more than `max_null_rate_increase` points ->
  `expect_column_proportion_of_non_null_values_to_be_between` (warning);
- a column whose type changed -> a rule outside GX (`column_type_unchanged`, warning): GX's pandas
  engine sees pandas dtypes, which do not say whether a Parquet column was an integer or a date.

Thresholds and severities come from the dataset's YAML (`quality.coherence`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dinum_pipelines.lib.quality.report import RuleOutcome
from dinum_pipelines.lib.quality.rules import COHERENCE, Rule
from dinum_pipelines.lib.declare.registry import CoherenceRules

PROFILE_FILE_NAME = "published_profile.json"


@dataclass(frozen=True)
class ColumnProfile:
    type: str
    null_fraction: float


@dataclass(frozen=True)
class TableProfile:
    row_count: int
    columns: dict[str, ColumnProfile]

    def to_dict(self) -> dict[str, Any]:
        return {"row_count": self.row_count, "columns": {name: asdict(c) for name, c in self.columns.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableProfile:
        return cls(data["row_count"], {name: ColumnProfile(**c) for name, c in data["columns"].items()})


def logical_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    return str(arrow_type)


def profile_table(table: pa.Table) -> TableProfile:
    rows = table.num_rows
    return TableProfile(
        rows,
        {
            field.name: ColumnProfile(logical_type(field.type), table.column(field.name).null_count / rows if rows else 0.0)
            for field in table.schema
        },
    )


def profile_parquet(path: Path) -> TableProfile:
    """`profile_table` of a Parquet file, from its footer's statistics (the file is not read)."""
    parquet = pq.ParquetFile(path)
    metadata, schema = parquet.metadata, parquet.schema_arrow
    rows = metadata.num_rows
    nulls = dict.fromkeys(schema.names, 0)
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            statistics = chunk.statistics
            if statistics is None or not statistics.has_null_count:
                return profile_table(pq.read_table(path))  # a file written without statistics
            nulls[chunk.path_in_schema] += statistics.null_count
    return TableProfile(
        rows,
        {field.name: ColumnProfile(logical_type(field.type), nulls[field.name] / rows if rows else 0.0) for field in schema},
    )


def profile_path(clean_directory: Path) -> Path:
    return clean_directory / PROFILE_FILE_NAME


def load_profile(path: Path) -> TableProfile | None:
    if not path.exists():
        return None
    return TableProfile.from_dict(json.loads(path.read_text(encoding="utf-8")))


def save_profile(profile: TableProfile, path: Path) -> None:
    path.write_text(json.dumps(profile.to_dict(), indent=1), encoding="utf-8")


def coherence_rules(previous: TableProfile, schema: pa.Schema, settings: CoherenceRules) -> list[Rule]:
    rules = []
    if previous.row_count:
        minimum = math.ceil(previous.row_count * (1 - settings.max_row_drop_percent / 100))
        rules.append(Rule("expect_table_row_count_to_be_between", {"min_value": minimum}, settings.row_drop, COHERENCE,
                          f"row drop at most {settings.max_row_drop_percent:g}% of {previous.row_count}"))
    before = list(previous.columns)
    rules.append(Rule("expect_table_columns_to_match_set", {"column_set": before, "exact_match": False},
                      settings.removed_columns, COHERENCE, "no column removed"))
    still_there = [name for name in before if name in schema.names]
    # exact_match=True is GX's default, which GX leaves out of the serialised kwargs.
    rules.append(Rule("expect_table_columns_to_match_set", {"column_set": still_there},
                      settings.added_columns, COHERENCE, "no column added"))
    for name in still_there:
        floor = 1 - previous.columns[name].null_fraction - settings.max_null_rate_increase / 100
        if floor > 0:
            rules.append(Rule("expect_column_proportion_of_non_null_values_to_be_between",
                              {"column": name, "min_value": round(floor, 6)}, settings.null_rate, COHERENCE,
                              f"null rate up at most {settings.max_null_rate_increase:g} points"))
    return rules


def type_changes(previous: TableProfile, schema: pa.Schema, settings: CoherenceRules) -> list[RuleOutcome]:
    """One outcome per column present in both versions: failed when its type changed."""
    outcomes = []
    for field in schema:
        if field.name not in previous.columns:
            continue
        before, now = previous.columns[field.name].type, logical_type(field.type)
        outcomes.append(
            RuleOutcome(
                rule="column_type_unchanged",
                column=field.name,
                severity=settings.retyped_columns,
                success=before == now,
                family=COHERENCE,
                detail="" if before == now else f"was {before} in the last published version, now {now}",
            )
        )
    return outcomes
