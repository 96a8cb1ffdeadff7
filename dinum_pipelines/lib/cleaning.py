"""Turning an administration's text table into the typed table we publish.

The rules are the French conventions reusers trip on: `26 956,00` is a number, `03/02/2024`
is the 3rd of February, `01053` is a commune code and must keep its zero. Cleaning never drops
a value silently: a cell that does not fit its declared type becomes null *and* is counted in
the report, with sample values and row numbers, so the quality check can fail on it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dinum_pipelines.lib.registry import ColumnSpec, DatasetSpec

# Day first, as written in France; ISO and slashes-ISO next. A column declares its own to override.
DEFAULT_DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%Y/%m/%d", "%d-%m-%Y", "%d.%m.%Y")
DEFAULT_DATETIME_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", *DEFAULT_DATE_FORMATS)
TRUE_WORDS = frozenset({"true", "vrai", "oui", "o", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "faux", "non", "n", "no", "0"})
SAMPLE_SIZE = 5
# Spaces used as thousands separators: ordinary, no-break (Excel) and narrow no-break (typography).
_SPACES = re.compile(r"[\s\u00a0\u202f]")


class CleaningError(ValueError):
    """The file does not have the declared shape (a declared column is missing, say)."""


@dataclass
class ColumnIssue:
    """Cells of one column that could not be read as its declared type."""

    column: str
    expected: str
    count: int
    samples: list[str]
    rows: list[int]

    def describe(self) -> str:
        return (
            f"column '{self.column}': {self.count} value(s) are not a valid {self.expected} "
            f"(e.g. {self.samples} at data rows {self.rows})"
        )


@dataclass
class CleaningReport:
    renamed: dict[str, str] = field(default_factory=dict)
    issues: list[ColumnIssue] = field(default_factory=list)
    rows_in: int = 0
    rows_out: int = 0

    def to_dict(self) -> dict:
        return {
            "renamed": self.renamed,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "issues": [vars(issue) for issue in self.issues],
        }

    @classmethod
    def from_dict(cls, data: dict) -> CleaningReport:
        return cls(
            renamed=data["renamed"],
            rows_in=data["rows_in"],
            rows_out=data["rows_out"],
            issues=[ColumnIssue(**issue) for issue in data["issues"]],
        )


def snake_case(header: str) -> str:
    """`Montant attribué (€)` -> `montant_attribue`: ASCII, lower case, underscores."""
    ascii_text = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    if not name:
        return "column"
    return name if name[0].isalpha() else f"c_{name}"


def normalize_text(values: pd.Series) -> pd.Series:
    """Trim every cell and turn blank cells into nulls."""
    stripped = values.astype("str").str.strip()
    return stripped.where(stripped != "", None)


def parse_numbers(values: pd.Series, decimal: str) -> pd.Series:
    """French-style numbers (`26 956,00`, `-3,5`) or plain ones, as float64; failures become NaN."""
    text = values.str.replace(_SPACES, "", regex=True)
    if decimal == ",":
        text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    return pd.to_numeric(text, errors="coerce").astype("float64")


def parse_dates(values: pd.Series, formats: tuple[str, ...] | list[str]) -> pd.Series:
    """Try each format in turn on the cells still unparsed; a mix of formats in one column is fine."""
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    pending = values.notna()
    for fmt in formats:
        if not pending.any():
            break
        parsed = pd.to_datetime(values[pending], format=fmt, errors="coerce")
        hit = parsed.notna()
        result.loc[parsed.index[hit]] = parsed[hit]
        pending.loc[parsed.index[hit]] = False
    return result


def parse_booleans(values: pd.Series) -> pd.Series:
    lowered = values.str.lower()
    result = pd.Series(pd.NA, index=values.index, dtype="boolean")
    result[lowered.isin(TRUE_WORDS)] = True
    result[lowered.isin(FALSE_WORDS)] = False
    return result


def _issue(column: ColumnSpec, text: pd.Series, typed: pd.Series) -> ColumnIssue | None:
    failed = text.notna() & typed.isna()
    count = int(failed.sum())
    if not count:
        return None
    positions = np.flatnonzero(failed.to_numpy())[:SAMPLE_SIZE]
    return ColumnIssue(
        column=column.name,
        expected=column.type,
        count=count,
        samples=[str(v) for v in text.iloc[positions]],
        rows=[int(p) + 1 for p in positions],
    )


def convert_column(text: pd.Series, column: ColumnSpec, decimal: str) -> tuple[pd.Series, ColumnIssue | None]:
    """Type one column of trimmed text as declared; returns the typed values and what failed."""
    if column.type == "string":
        return text, None
    if column.type in ("number", "integer"):
        typed = parse_numbers(text, decimal)
        if column.type == "integer":
            whole = typed.isna() | (typed == np.floor(typed))
            typed = typed.where(whole).astype("Int64")
    elif column.type == "date":
        typed = parse_dates(text, column.date_formats or DEFAULT_DATE_FORMATS)
    elif column.type == "datetime":
        typed = parse_dates(text, column.date_formats or DEFAULT_DATETIME_FORMATS)
    else:
        typed = parse_booleans(text)
    return typed, _issue(column, text, typed)


def clean_table(raw: pd.DataFrame, spec: DatasetSpec, decimal: str) -> tuple[pd.DataFrame, CleaningReport]:
    """Rename, trim, null blanks and type every column as the dataset declares."""
    report = CleaningReport(rows_in=len(raw))
    headers = {str(h).strip(): h for h in raw.columns}
    missing = [c.source_name for c in spec.columns if c.source_name not in headers]
    if missing:
        raise CleaningError(
            f"dataset '{spec.slug}': declared column(s) {missing} not found in the file; "
            f"its header has {list(headers)}"
        )
    columns: dict[str, pd.Series] = {}
    for column in spec.columns:
        original = headers[column.source_name]
        text = normalize_text(raw[original])
        typed, issue = convert_column(text, column, decimal)
        columns[column.name] = typed
        if issue:
            report.issues.append(issue)
        if column.source_name != column.name:
            report.renamed[column.source_name] = column.name
    if spec.keep_undeclared_columns:
        declared = {c.source_name for c in spec.columns}
        for header, original in headers.items():
            if header in declared:
                continue
            name = snake_case(header)
            while name in columns:
                name = f"{name}_"
            columns[name] = normalize_text(raw[original])
            if header != name:
                report.renamed[header] = name
    cleaned = pd.DataFrame(columns, index=raw.index)
    report.rows_out = len(cleaned)
    return cleaned, report
