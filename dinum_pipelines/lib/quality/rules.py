"""The one compiler: a dataset's declarations to the list of expectations its table must meet.

Inputs are everything the dataset declares: the columns and rules of its YAML, themselves
merged with its Table Schema at registry load (types, required, unique, pattern, enum,
minimum/maximum, minLength/maxLength, primaryKey, date bounds; see tableschema.py), the French
formats of its columns, the personal data it declares public, and the coherence thresholds
against the last published version. The output is a list of `Rule`s: a Great Expectations
expectation type and kwargs, a severity (`critical` blocks publication, `warning` does not) and
a family that says which question it answers (`schema`, `format`, `personal_data`,
`coherence`). Both engines (`engine_arrow.py`, `engine_gx.py`) run exactly these rules.

Severities: each column rule takes the column's `severity`, unless the column overrides that
rule in `severities:` (`{pattern: warning}`); table rules take `quality:` settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pyarrow as pa

from dinum_pipelines.lib.quality import frformats, personal_data
from dinum_pipelines.lib.declare.registry import ColumnSpec, DatasetSpec

SCHEMA, FORMAT, PERSONAL_DATA, COHERENCE = "schema", "format", "personal_data", "coherence"
FAMILIES = (SCHEMA, FORMAT, PERSONAL_DATA, COHERENCE)


@dataclass(frozen=True)
class Rule:
    """One expectation: GX's type and kwargs, plus how bad a failure is and what it is about."""

    type: str
    kwargs: dict[str, Any]
    severity: str
    family: str
    # What the rule stands for in the dataset's declarations ("pattern", "format: siret"...).
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        kwargs = self.kwargs
        if "column" in kwargs:
            return [kwargs["column"]]
        if "column_A" in kwargs:
            return [kwargs["column_A"], kwargs["column_B"]]
        return list(kwargs.get("column_list") or [])

    def config(self) -> dict[str, Any]:
        """The expectation configuration as GX serialises it (without its generated id)."""
        return {"type": self.type, "kwargs": dict(self.kwargs), "meta": {"family": self.family, "source": self.source, **self.meta}, "severity": self.severity}


def _bound(value: Any, column_type: str) -> Any:
    # GX compares date columns with ISO strings it parses itself: a date column's values are
    # dates, which GX cannot compare with a datetime bound.
    if isinstance(value, datetime) and column_type == "date":
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def column_rules(column: ColumnSpec, primary_key: list[str]) -> list[Rule]:
    """The expectations of one declared column."""
    name = column.name
    rules: list[Rule] = []

    def add(kind: str, gx_type: str, family: str = SCHEMA, **kwargs: Any) -> None:
        rules.append(Rule(gx_type, {"column": name, **kwargs}, column.severity_of(kind), family, kind))

    if column.required or name in primary_key:
        add("required", "expect_column_values_to_not_be_null")
    if column.unique or primary_key == [name]:
        add("unique", "expect_column_values_to_be_unique")
    if column.pattern:
        # Table Schema patterns match the whole value; GX's regex expectation searches within it.
        add("pattern", "expect_column_values_to_match_regex", regex=f"^(?:{column.pattern})$")
    if column.enum:
        add("enum", "expect_column_values_to_be_in_set", value_set=list(column.enum))
    if column.minimum is not None or column.maximum is not None:
        bounds = {"min_value": _bound(column.minimum, column.type), "max_value": _bound(column.maximum, column.type)}
        add("range", "expect_column_values_to_be_between", **{k: v for k, v in bounds.items() if v is not None})
    if column.min_length is not None or column.max_length is not None:
        lengths = {"min_value": column.min_length, "max_value": column.max_length}
        add("length", "expect_column_value_lengths_to_be_between", **{k: v for k, v in lengths.items() if v is not None})
    if column.format is not None:
        rules.extend(format_rules(column))
    return rules


def format_rules(column: ColumnSpec) -> list[Rule]:
    fmt, severity, source = column.format, column.severity_of("format"), f"format: {column.format}"
    if fmt in frformats.REGEX_FORMATS:
        return [Rule("expect_column_values_to_match_regex", {"column": column.name, "regex": frformats.REGEX_FORMATS[fmt]}, severity, FORMAT, source)]
    if fmt == frformats.COORDINATES_FORMAT:
        kwargs = {"column_A": column.name, "column_B": column.latitude_column}
        return [Rule("expect_column_pair_values_to_be_in_france", kwargs, severity, FORMAT, source)]
    kwargs: dict[str, Any] = {"column": column.name, "format": fmt}
    if column.year is not None:
        kwargs["year"] = str(column.year)
    return [Rule("expect_column_values_to_be_valid_french_format", kwargs, severity, FORMAT, source)]


def personal_data_rules(spec: DatasetSpec, schema: pa.Schema) -> list[Rule]:
    """A personal-data scan of every text column, minus what the YAML declares public."""
    public: dict[str, set[str]] = {}
    for declared in spec.personal_data:
        public.setdefault(declared.column, set()).update(declared.kinds)
    severity = spec.quality.personal_data
    rules = []
    for column in schema:
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        kinds = [kind for kind in personal_data.VALUE_KINDS if kind not in public.get(column.name, set())]
        if kinds:
            kwargs = {"column": column.name, "kinds": kinds}
            rules.append(Rule("expect_column_values_to_not_be_personal_data", kwargs, severity, PERSONAL_DATA, "personal data"))
    for name, birth in personal_data.name_birth_date_pairs(schema.names):
        if personal_data.NAME_BIRTH_DATE in public.get(name, set()) | public.get(birth, set()):
            continue
        kwargs = {"column_A": name, "column_B": birth}
        rules.append(Rule("expect_column_pair_values_to_not_be_name_and_birth_date", kwargs, severity, PERSONAL_DATA, "personal data"))
    return rules


def compile_rules(spec: DatasetSpec, schema: pa.Schema) -> list[Rule]:
    """Every declared rule of `spec` for a table of `schema` (the coherence rules, which depend on
    the last published version, are coherence.py's: quality/__init__.py adds them)."""
    quality = spec.quality
    rules = [Rule("expect_table_row_count_to_be_between", {"min_value": 1}, quality.row_count, SCHEMA, "at least one row")]
    for column in spec.columns:
        rules.extend(column_rules(column, list(spec.primary_key)))
    if len(spec.primary_key) > 1:
        kwargs = {"column_list": list(spec.primary_key)}
        rules.append(Rule("expect_compound_columns_to_be_unique", kwargs, quality.primary_key, SCHEMA, "primary key"))
    rules.extend(personal_data_rules(spec, schema))
    return rules
