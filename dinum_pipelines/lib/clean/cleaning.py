"""Turning an administration's text table into the typed table we publish.

The rules are the French conventions reusers trip on: `26 956,00` is a number, `03/02/2024`
is the 3rd of February, `01053` is a commune code and must keep its zero. Cleaning never drops
a value silently: a cell that does not fit its declared type becomes null *and* is counted in
the report, with sample values and row numbers, so the quality check can fail on it.

Files like DVF have millions of rows, and cleaning must cost about what reading costs (issue 4:
parse + clean + Parquet within 2.5× a plain pyarrow read, memory within 2×). So columns are
worked on as the Arrow arrays the reader produced, never as Python strings, in two tiers:

- the spellings nearly every cell uses are converted by vectorised code over the column's
  bytes: a number made of digits, at most one decimal separator, a leading sign and thousands
  spaces (`26 956,00`, `-3,5`), and a date that fills a fixed-width format exactly
  (`03/02/2024` for `%d/%m/%Y`);
- every other cell (other whitespace, exponents, `n/a`, `3/2/2024`, a date in a later
  format...) goes through the general rules (trim, Python's `\\s`, `pd.to_numeric`,
  `pd.to_datetime` format after format). They are the reference: the fast tier only takes the
  cells for which it gives the same value, which the tests check against the general rules.

A text column that needs no trimming keeps the reader's buffers (no copy); the fast tier works
on batches of rows that fit the CPU's cache; columns are converted in parallel threads (Arrow and
numpy release the GIL for most of the work); the report's samples are only looked up for the
columns that have failures.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dinum_pipelines.lib.declare.names import fold, snake_case
from dinum_pipelines.lib.clean.parsing import GEOMETRY_COLUMN
from dinum_pipelines.lib.declare.registry import ColumnSpec, DatasetSpec

# Day first, as written in France; ISO and slashes-ISO next. A column declares its own to override.
DEFAULT_DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%Y/%m/%d", "%d-%m-%Y", "%d.%m.%Y")
# Values with a UTC offset (`%z`: `Z`, `+01:00`, `+0100`) are converted to UTC; the others are
# kept as written (French sources mean local time, which only the producer could confirm).
DEFAULT_DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z",
    "%Y-%m-%d %H:%M:%S%z", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", *DEFAULT_DATE_FORMATS,
)
TRUE_WORDS = frozenset({"true", "vrai", "oui", "o", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "faux", "non", "n", "no", "0"})
SAMPLE_SIZE = 5
# Spaces used as thousands separators: ordinary, no-break (Excel) and narrow no-break (typography).
_SPACES = re.compile(r"[\s\u00a0\u202f]")
# The wide ones as UTF-8 bytes, for the fast tier (any other whitespace takes the general rules).
_WIDE_SPACE_BYTES = ("\u00a0".encode(), "\u202f".encode())
# A number of at most 15 digits is an integer that a double holds exactly, scaled by a power of ten:
# Arrow's parser and pandas' both round it correctly. Longer ones take the general rules.
_MAX_FAST_DIGITS = 15
# strptime directives of fixed width (zero-padded numbers), which the fast date tier reads.
_FIXED_DIRECTIVES = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2}
_MICROSECONDS_PER_DAY = 86_400_000_000
# The dtype of cleaned text columns: pandas' "str" (Arrow-backed, NaN for missing).
TEXT_DTYPE = pd.StringDtype(storage="pyarrow", na_value=np.nan)
# A cell that trimming changes starts or ends with an ASCII control or space (up to this byte) or
# with a byte of a multi-byte character (0x80 and up: Unicode has more spaces, U+00A0, U+202F...).
_LAST_SPACE_BYTE = ord(" ")
# Rows the fast tier converts at a time: its temporaries then stay in the CPU's cache.
BATCH_ROWS = 1 << 16
# Relative cost of converting a column of each type, to schedule the costly ones first.
_CONVERSION_COST = {"date": 3, "datetime": 3, "number": 2, "integer": 2, "boolean": 1, "string": 0}
# Columns converted at once; more threads than cores only add memory.
MAX_THREADS = 4


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
class DuplicateKeys:
    """Rows sharing a primary key with an earlier row: those dropped, and those left in conflict.

    Row numbers are data rows of the source file (1 = the first row under the header).
    """

    key: list[str]
    policy: str
    dropped: int = 0
    dropped_rows: list[int] = field(default_factory=list)
    # Rows kept although their key repeats with other values: the uniqueness rule will name them.
    conflicting: int = 0
    conflicting_rows: list[int] = field(default_factory=list)
    conflicting_keys: list[list[str]] = field(default_factory=list)

    def describe(self) -> str:
        parts = []
        if self.dropped:
            parts.append(f"dropped {self.dropped} row(s) repeating a key (policy {self.policy}; data rows {self.dropped_rows})")
        if self.conflicting:
            parts.append(
                f"{self.conflicting} row(s) share a key with different values, e.g. {self.conflicting_keys} "
                f"at data rows {self.conflicting_rows}"
            )
        return f"primary key {self.key}: " + "; ".join(parts)


@dataclass
class StructureFinding:
    """Where the file's columns or rows differ from the declaration, and what cleaning did about it.

    `kind` is one of `extra_columns`, `missing_columns`, `header_spelling`, `duplicate_headers`,
    `blank_rows`; a `critical` finding blocks publication through the quality check, a `warning`
    is reported with the published file.
    """

    kind: str
    severity: str
    columns: list[str]
    detail: str
    count: int = 0
    rows: list[int] = field(default_factory=list)


@dataclass
class CleaningReport:
    renamed: dict[str, str] = field(default_factory=dict)
    issues: list[ColumnIssue] = field(default_factory=list)
    rows_in: int = 0
    rows_out: int = 0
    duplicates: DuplicateKeys | None = None
    structure: list[StructureFinding] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "renamed": self.renamed,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "issues": [vars(issue) for issue in self.issues],
            "duplicates": vars(self.duplicates) if self.duplicates else None,
            "structure": [vars(finding) for finding in self.structure],
        }

    @classmethod
    def from_dict(cls, data: dict) -> CleaningReport:
        duplicates = data.get("duplicates")
        return cls(
            renamed=data["renamed"],
            rows_in=data["rows_in"],
            rows_out=data["rows_out"],
            issues=[ColumnIssue(**issue) for issue in data["issues"]],
            duplicates=DuplicateKeys(**duplicates) if duplicates else None,
            structure=[StructureFinding(**finding) for finding in data.get("structure") or []],
        )


# --- Text as Arrow arrays -------------------------------------------------------------------


def _arrow_text(values: pd.Series) -> pa.ChunkedArray:
    """The column as Arrow large strings, sharing the reader's buffers when it is Arrow-backed."""
    array = values.astype("str").array
    if hasattr(array, "__arrow_array__"):
        arrow = array.__arrow_array__()
    else:
        arrow = pa.array(np.asarray(array, dtype=object), from_pandas=True)
    if isinstance(arrow, pa.Array):
        arrow = pa.chunked_array([arrow])
    return arrow if arrow.type == pa.large_string() else arrow.cast(pa.large_string())


def _text_series(text: pa.ChunkedArray, index: pd.Index, name: str | None = None) -> pd.Series:
    return pd.Series(TEXT_DTYPE.__from_arrow__(text), index=index, name=name, copy=False)


def _take(text: pa.ChunkedArray, positions: np.ndarray) -> pa.ChunkedArray:
    """The cells at `positions` (increasing), taken chunk by chunk: Arrow's take joins the chunks first."""
    starts = np.cumsum([0] + [len(chunk) for chunk in text.chunks])
    bounds = np.searchsorted(positions, starts)
    pieces = [
        chunk.take(pa.array(positions[lo:hi] - start))
        for chunk, start, lo, hi in zip(text.chunks, starts, bounds, bounds[1:])
        if hi > lo
    ]
    return pa.chunked_array(pieces, type=text.type)


def _may_need_trim(text: pa.ChunkedArray) -> np.ndarray:
    """Cells that are empty, or start or end with a byte that may belong to whitespace (a superset)."""
    parts = [np.empty(0, dtype=bool)]
    for chunk in text.chunks:
        offsets, data = string_bytes(chunk)
        suspect = np.diff(offsets) == 0
        if data.size and (data.min() <= _LAST_SPACE_BYTE or data.max() >= 0x80):
            first = data[np.minimum(offsets[:-1], data.size - 1)]
            last = data[np.maximum(offsets[1:] - 1, 0)]
            suspect |= (first <= _LAST_SPACE_BYTE) | (first >= 0x80) | (last <= _LAST_SPACE_BYTE) | (last >= 0x80)
        parts.append(suspect)
    return np.concatenate(parts) & _valid(text)


def _normalized(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """Trimmed, blanks as nulls; `text` itself (no copy) when no cell changes."""
    suspects = _may_need_trim(text)
    count = np.count_nonzero(suspects)
    if not count:
        return text
    if count * 8 < len(text):  # few cells may change: look at them alone
        cells = _take(text, np.flatnonzero(suspects))
        lengths = pc.binary_length(pc.utf8_trim_whitespace(cells))
        if pc.min(lengths).as_py() > 0 and pc.all(pc.equal(lengths, pc.binary_length(cells))).as_py():
            return text
    trimmed = pc.utf8_trim_whitespace(text)
    lengths = pc.binary_length(trimmed)
    blank = pc.equal(lengths, 0)
    if pc.any(blank).as_py():
        return pc.if_else(blank, pa.scalar(None, trimmed.type), trimmed)
    return text if pc.sum(lengths).as_py() == pc.sum(pc.binary_length(text)).as_py() else trimmed


def normalize_text(values: pd.Series) -> pd.Series:
    """Trim every cell and turn blank cells into nulls."""
    return _text_series(_normalized(_arrow_text(values)), values.index, values.name)


def _valid(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if array.null_count == 0:
        return np.ones(len(array), dtype=bool)
    return array.is_valid().to_numpy(zero_copy_only=False)


def _batches(text: pa.ChunkedArray) -> Iterator[tuple[slice, pa.Array]]:
    """The column in contiguous arrays of `BATCH_ROWS` rows, with the rows each covers."""
    for start in range(0, len(text), BATCH_ROWS):
        batch = text.slice(start, BATCH_ROWS)
        yield slice(start, start + len(batch)), batch.combine_chunks()


def string_bytes(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A large-string array's offsets (from 0, one per cell plus one) and its UTF-8 bytes, not copied."""
    if len(array) == 0:
        return np.zeros(1, dtype=np.int64), np.empty(0, dtype=np.uint8)
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64, count=len(array) + 1, offset=array.offset * 8)
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.empty(0, dtype=np.uint8)
    return offsets - offsets[0], data[offsets[0] : offsets[-1]]


def _running_count(values: np.ndarray) -> np.ndarray:
    """`running[j]` = sum of `values[:j]` (small non-negative integers); index it with offsets."""
    running = np.zeros(values.size + 1, dtype=np.int32 if values.size < 2**24 else np.int64)
    running[1:] = values  # numpy's cumsum is several times slower when it also converts the type
    return np.cumsum(running, out=running)


def _flag_sequences(flags: np.ndarray, data: np.ndarray, sequence: bytes) -> None:
    """Set `flags` on every byte of each occurrence of `sequence` (a UTF-8 character) in `data`."""
    if data.size < len(sequence):
        return
    starts = np.flatnonzero(data[: data.size - len(sequence) + 1] == sequence[0])
    for shift, byte in enumerate(sequence[1:], start=1):
        starts = starts[data[starts + shift] == byte]
    for shift in range(len(sequence)):
        flags[starts + shift] = True


# --- Numbers ----------------------------------------------------------------------------------


def _plain_numbers(array: pa.Array, decimal: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse the cells written plainly: digits, one decimal separator, a leading sign, thousands spaces.

    Returns float64 values (NaN elsewhere) and which cells were parsed; with a decimal comma the
    points are thousands separators too, as in the general rules.
    """
    offsets, data = string_bytes(array)
    dropped = data == ord(" ")
    if decimal == ",":
        dropped |= data == ord(".")
    if data.size and data.max() >= 0x80:  # else no no-break space can be there
        for sequence in _WIDE_SPACE_BYTES:
            _flag_sequences(dropped, data, sequence)
    if dropped.any():
        # Each cell moves back by the bytes dropped before it.
        offsets = offsets - _running_count(dropped.view(np.uint8))[offsets]
        data = np.compress(~dropped, data)
    lengths = np.diff(offsets)
    point = data == ord(decimal)
    # Digits and decimal separators counted in one pass: digits in the low 5 bits, separators above
    # (a plain cell is at most 17 bytes long, so the digits never carry into the separators).
    codes = ((data - np.uint8(ord("0"))) < 10).view(np.uint8) | (point.view(np.uint8) << 5)
    running = _running_count(codes)
    counts = running[offsets[1:]] - running[offsets[:-1]]
    digits, points = counts & 31, counts >> 5
    first = data[np.minimum(offsets[:-1], data.size - 1)] if data.size else np.zeros(lengths.size, dtype=np.uint8)
    signed = (lengths > 0) & ((first == ord("-")) | (first == ord("+")))
    plain = (
        _valid(array)
        & (lengths <= _MAX_FAST_DIGITS + 2)
        & (digits >= 1)
        & (digits <= _MAX_FAST_DIGITS)
        & (points <= 1)
        & (digits + points + signed == lengths)
    )
    if decimal == ",":
        data = data + (point.view(np.uint8) << 1)  # "," + 2 is ".", the separator Arrow reads
    validity = pa.array(plain).buffers()[1]
    numbers = pa.LargeStringArray.from_buffers(len(array), pa.py_buffer(offsets), pa.py_buffer(data), validity)
    return pc.cast(numbers, pa.float64()).to_numpy(zero_copy_only=False), plain


def _general_numbers(text: pd.Series, decimal: str) -> pd.Series:
    """The reference rules, on trimmed text: no whitespace, the decimal separator as a point, `pd.to_numeric`."""
    text = text.str.replace(_SPACES, "", regex=True)
    if decimal == ",":
        text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    return pd.to_numeric(text, errors="coerce").astype("float64")


def _numbers(text: pa.ChunkedArray, decimal: str) -> tuple[np.ndarray, np.ndarray]:
    """float64 values (NaN where blank or unparsed) and which cells hold a value once trimmed."""
    values = np.empty(len(text), dtype=np.float64)
    present = np.empty(len(text), dtype=bool)
    for rows, batch in _batches(text):
        values[rows], present[rows] = _plain_numbers(batch, decimal)
    rest = np.flatnonzero(~present & _valid(text))
    if rest.size:
        cells = _text_series(_normalized(_take(text, rest)), pd.RangeIndex(rest.size))
        values[rest] = _general_numbers(cells, decimal).to_numpy()
        present[rest] = cells.notna().to_numpy()
    return values, present


def parse_numbers(values: pd.Series, decimal: str) -> pd.Series:
    """French-style numbers (`26 956,00`, `-3,5`) or plain ones, as float64; failures become NaN."""
    numbers, _ = _numbers(_arrow_text(values), decimal)
    return pd.Series(numbers, index=values.index, name=values.name, copy=False)


def _integers(numbers: np.ndarray) -> pd.arrays.IntegerArray:
    """Whole numbers as Int64; a fraction, an infinity or a number beyond int64 becomes missing."""
    with np.errstate(invalid="ignore"):  # NaN, infinities and overflows cast to some integer...
        integers = numbers.astype(np.int64)
    whole = (integers == numbers) & (numbers < 2.0**63)  # ...that differs from the number, as a fraction's does
    return pd.arrays.IntegerArray(integers, ~whole)


# --- Dates ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FixedLayout:
    """Where a fixed-width format puts each field: `%d/%m/%Y` -> d at byte 0, m at 3, Y at 6."""

    width: int
    fields: dict[str, tuple[int, int]]  # directive -> (first byte, width)
    separators: dict[int, int]  # byte position -> expected byte


def fixed_layout(fmt: str) -> FixedLayout | None:
    """The layout of `fmt` if it has only fixed-width numeric directives and ASCII separators (not digits)."""
    fields: dict[str, tuple[int, int]] = {}
    separators: dict[int, int] = {}
    position = index = 0
    if fmt != fmt.strip():
        return None  # the general rules see trimmed text, so `fmt` could never match it
    while index < len(fmt):
        if fmt[index] == "%":
            directive = fmt[index + 1 : index + 2]
            if directive not in _FIXED_DIRECTIVES or directive in fields:
                return None
            fields[directive] = (position, _FIXED_DIRECTIVES[directive])
            position += _FIXED_DIRECTIVES[directive]
            index += 2
        else:
            if not fmt[index].isascii() or fmt[index].isdigit():
                return None
            separators[position] = ord(fmt[index])
            position += 1
            index += 1
    if not {"Y", "m", "d"} <= fields.keys():
        return None
    return FixedLayout(width=position, fields=fields, separators=separators)


# Days from 1970-01-01 to the first of each month from January of year 1 to January 10000.
_MONTH_STARTS = np.arange("0001-01", "10000-02", dtype="datetime64[M]").astype("datetime64[D]").astype(np.int64)


def fixed_width_dates(array: pa.Array, candidates: np.ndarray, layout: FixedLayout) -> tuple[np.ndarray, np.ndarray]:
    """The candidate cells that fill `layout` exactly with a valid date and time, and their values in µs.

    Such a cell has a single reading, the one `pd.to_datetime(format=...)` gives it. Year 0 and
    out-of-range fields are left to the general rules (pandas' ISO and strptime paths differ there).
    """
    offsets, data = string_bytes(array)
    cells = np.flatnonzero(candidates & (np.diff(offsets) == layout.width))
    if not cells.size:
        return cells, np.empty(0, dtype=np.int64)
    if data.size == cells.size * layout.width:  # these cells hold all the bytes, back to back
        rows = data.reshape(cells.size, layout.width)
    else:
        rows = np.lib.stride_tricks.sliding_window_view(data, layout.width)[offsets[cells]]
    bytes_at = np.ascontiguousarray(rows.T)  # one row per position: the arithmetic runs on whole rows
    ok = np.ones(cells.size, dtype=bool)
    for position, expected in layout.separators.items():
        ok &= bytes_at[position] == expected
    digits = bytes_at - np.uint8(ord("0"))  # other bytes wrap round to 10 or more
    positions = [position for first, width in layout.fields.values() for position in range(first, first + width)]
    ok &= digits[positions].max(axis=0) < 10
    digits = digits.astype(np.int32)
    fields: dict[str, np.ndarray] = {}
    for directive, (first, width) in layout.fields.items():
        fields[directive] = digits[first]
        for position in range(first + 1, first + width):
            fields[directive] = fields[directive] * 10 + digits[position]
    year, month, day = fields["Y"], fields["m"], fields["d"]
    hour, minute, second = (fields.get(directive, 0) for directive in "HMS")
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (hour < 24) & (minute < 60) & (second < 60)
    month_index = np.where(ok, (year - 1) * 12 + month - 1, 0)
    first_day = _MONTH_STARTS[month_index]
    ok &= day <= _MONTH_STARTS[month_index + 1] - first_day
    seconds = (np.asarray(hour, dtype=np.int64) * 60 + minute) * 60 + second
    micros = (first_day + day - 1) * _MICROSECONDS_PER_DAY + seconds * 1_000_000
    return cells[ok], micros[ok]


def _fixed_width_pass(text: pa.ChunkedArray, pending: np.ndarray, layout: FixedLayout) -> tuple[np.ndarray, np.ndarray]:
    """Positions and values (µs) of the pending cells that the fast tier reads with `layout`."""
    positions = None
    if np.count_nonzero(pending) < len(text) // 2:  # few cells left: gather them rather than scan the column
        positions = np.flatnonzero(pending)
        text, pending = _take(text, positions), np.ones(positions.size, dtype=bool)
    found, values = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=np.int64)]
    for rows, batch in _batches(text):
        cells, micros = fixed_width_dates(batch, pending[rows], layout)
        found.append(cells + rows.start)
        values.append(micros)
    cells = np.concatenate(found)
    return (cells if positions is None else positions[cells]), np.concatenate(values)


def _dates(text: pa.ChunkedArray, formats: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """datetime64[us] values (NaT where blank or unparsed) and which cells hold a value once trimmed.

    Formats are tried in order on the cells still unparsed, so a mix of formats in one column is
    fine; within each, the fast tier takes the exact fits and the general rules the rest.
    """
    result = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[us]")
    pending = _valid(text)
    present = pending.copy()
    general: pd.Series | None = None  # trimmed text of the cells the fast tier left, by position
    for fmt in formats:
        if not pending.any():
            break
        layout = fixed_layout(fmt)
        if layout is not None:
            cells, micros = _fixed_width_pass(text, pending, layout)
            result.view(np.int64)[cells] = micros
            pending[cells] = False
        if general is None and pending.any():
            left = np.flatnonzero(pending)
            general = _text_series(_normalized(_take(text, left)), pd.Index(left))
            blank = general.index[general.isna()]
            present[blank] = pending[blank] = False
            general = general.dropna()
        if general is None:
            continue
        cells = general.index[pending[general.index]]
        if cells.size:
            with_offset = "%z" in fmt
            parsed = pd.to_datetime(general.loc[cells], format=fmt, errors="coerce", utc=with_offset)
            if with_offset:
                parsed = parsed.dt.tz_convert(None)
            hit = parsed.notna().to_numpy()
            result[cells[hit]] = parsed[hit].to_numpy(dtype="datetime64[us]")
            pending[cells[hit]] = False
    return result, present


def parse_dates(values: pd.Series, formats: tuple[str, ...] | list[str]) -> pd.Series:
    """Try each format in turn on the cells still unparsed; a mix of formats in one column is fine."""
    dates, _ = _dates(_arrow_text(values), formats)
    return pd.Series(dates, index=values.index, copy=False)


# --- Booleans, columns, tables ----------------------------------------------------------------


def parse_booleans(values: pd.Series) -> pd.Series:
    lowered = values.str.lower()
    result = pd.Series(pd.NA, index=values.index, dtype="boolean")
    result[lowered.isin(TRUE_WORDS)] = True
    result[lowered.isin(FALSE_WORDS)] = False
    return result


def _issue(column: ColumnSpec, text: pa.ChunkedArray, present: np.ndarray, typed: pd.Series) -> ColumnIssue | None:
    """The cells holding a value (once trimmed) that did not convert; None when there are none."""
    failed = present & typed.isna().to_numpy()
    count = int(np.count_nonzero(failed))
    if not count:
        return None
    positions = np.flatnonzero(failed)[:SAMPLE_SIZE]
    return ColumnIssue(
        column=column.name,
        expected=column.type,
        count=count,
        samples=[str(v) for v in _normalized(_take(text, positions)).to_pylist()],
        rows=[int(row) for row in _data_rows(typed.index, positions)],
    )


@dataclass
class _Converted:
    typed: pd.Series
    issue: ColumnIssue | None
    # Cells holding a value once trimmed (a row without any is blank).
    present: np.ndarray


def _convert(text: pa.ChunkedArray, column: ColumnSpec, decimal: str, index: pd.Index) -> _Converted:
    if column.type == "string":
        normalized = _normalized(text)
        if column.zero_pad:
            padded = pc.utf8_lpad(normalized, width=column.zero_pad, padding="0")
            normalized = pc.if_else(pc.match_substring_regex(normalized, r"^[0-9]+$"), padded, normalized)
        return _Converted(_text_series(normalized, index), None, _valid(normalized))
    if column.type in ("number", "integer"):
        numbers, present = _numbers(text, decimal)
        typed = pd.Series(numbers if column.type == "number" else _integers(numbers), index=index, copy=False)
    elif column.type in ("date", "datetime"):
        defaults = DEFAULT_DATE_FORMATS if column.type == "date" else DEFAULT_DATETIME_FORMATS
        dates, present = _dates(text, column.date_formats or defaults)
        typed = pd.Series(dates, index=index, copy=False)
    else:
        trimmed = _text_series(_normalized(text), index)
        typed, present = parse_booleans(trimmed), trimmed.notna().to_numpy()
    return _Converted(typed, _issue(column, text, present, typed), present)


def convert_column(text: pd.Series, column: ColumnSpec, decimal: str) -> tuple[pd.Series, ColumnIssue | None]:
    """Type one column of text as declared (trimming it first); returns the typed values and what failed."""
    converted = _convert(_arrow_text(text), column, decimal, text.index)
    return converted.typed, converted.issue


@dataclass
class _Header:
    """Where each declared column is in the file, and the file's columns nobody declared."""

    positions: dict[str, int]
    extra: list[int]
    # Repeated header names: (name, position) of each later copy.
    repeats: list[tuple[str, int]]
    # Declared columns whose header differs only by case or accents: name -> header.
    respelled: dict[str, str]
    renamed: dict[str, str]


def _locate_columns(labels: list[str], spec: DatasetSpec) -> _Header:
    """Match the declared columns to the file's header: by name, through `rename`, then ignoring
    case and accents; the first copy of a repeated name is the one matched."""
    first: dict[str, int] = {}
    repeats: list[tuple[str, int]] = []
    for position, label in enumerate(labels):
        if label in first:
            repeats.append((label, position))
        else:
            first[label] = position
    claimed: set[int] = set()
    positions: dict[str, int] = {}
    respelled: dict[str, str] = {}
    renamed: dict[str, str] = {}
    wanted = {column.name: column.source_name for column in spec.columns}
    for name, header in wanted.items():
        if header in first:
            positions[name] = first[header]
    for old, new in spec.rename.items():
        for name, header in wanted.items():
            if name not in positions and new in (header, name) and old in first and first[old] not in positions.values():
                positions[name] = first[old]
                renamed[old] = name
    claimed = set(positions.values())
    folded: dict[str, list[int]] = {}
    for label, position in first.items():
        if position not in claimed:
            folded.setdefault(fold(label), []).append(position)
    for name, header in wanted.items():
        candidates = [position for position in folded.get(fold(header), []) if position not in claimed]
        if name not in positions and len(candidates) == 1:
            positions[name] = candidates[0]
            claimed.add(candidates[0])
            respelled[name] = labels[candidates[0]]
    claimed = set(positions.values())
    extra = [position for label, position in first.items() if position not in claimed]
    return _Header(positions, extra, repeats, respelled, renamed)


def _intrinsic(label: str, spec: DatasetSpec) -> bool:
    """A column the reader adds itself (a GeoJSON feature's geometry), never an undeclared one."""
    return spec.source.format == "geojson" and label == GEOMETRY_COLUMN


def _finding(report: CleaningReport, kind: str, severity: str, columns: list[str], detail: str, **figures) -> None:
    report.structure.append(StructureFinding(kind=kind, severity=severity, columns=columns, detail=detail, **figures))


class TableCleaner:
    """Cleans a file's text table batch after batch, with the report of the whole file at the end.

    A large file is read in record batches (parsing.csv_batches) so that memory does not grow
    with it: each batch is cleaned as it comes (`clean`), and `finish` gives the report of every
    batch together, the same report the whole table cleaned at once would give. Each batch's
    index is its rows' 0-based positions in the file's data; `clean` keeps it, so row numbers in
    the report are the file's. Rows repeating a primary key are the one thing no batch can see
    alone: `clean_table` resolves them in memory, the pipeline on disk (lib/clean/repeats.py).
    """

    def __init__(self, labels: list[str], spec: DatasetSpec, decimal: str) -> None:
        self.spec = spec
        self.decimal = decimal
        self.labels = [str(label).strip() for label in labels]
        self.header = _locate_columns(self.labels, spec)
        self.report = CleaningReport()
        self._issues: dict[str, ColumnIssue] = {}
        self._conflicting: set[str] = set()
        self._blank_count = 0
        self._blank_rows: list[int] = []
        # Positions (in the file's data) of every blank row dropped, to number the kept rows.
        self._blank_positions: list[np.ndarray] = []

    def clean(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Match, trim, type and drop the blank rows of one batch (`raw`: its text, labelled as `labels`)."""
        spec, header, labels = self.spec, self.header, self.labels
        count = len(raw)
        self.report.rows_in += count
        empty = pa.chunked_array([pa.nulls(count, pa.large_string())])

        def text_of(position: int) -> pa.ChunkedArray:
            return _arrow_text(raw.iloc[:, position])

        def convert(column: ColumnSpec) -> _Converted:
            position = header.positions.get(column.name)
            return _convert(text_of(position) if position is not None else empty, column, self.decimal, raw.index)

        # The costly conversions first, so that the threads finish together.
        ordered = sorted(spec.columns, key=lambda column: _CONVERSION_COST[column.type], reverse=True)
        threads = max(1, min(MAX_THREADS, os.cpu_count() or 1, len(ordered)))
        with ThreadPoolExecutor(max_workers=threads) as pool:
            converted = dict(zip((column.name for column in ordered), pool.map(convert, ordered)))
        columns: dict[str, pd.Series] = {}
        present = np.zeros(count, dtype=bool)
        for column in spec.columns:
            result = converted[column.name]
            columns[column.name] = result.typed
            present |= result.present
            if result.issue:
                self._add_issue(result.issue)
        for position in header.extra:
            text = _normalized(text_of(position))
            present |= _valid(text)
            if spec.extra_columns == "keep" or _intrinsic(labels[position], spec):
                name = snake_case(labels[position])
                while name in columns:
                    name = f"{name}_"
                columns[name] = _text_series(text, raw.index)
        for label, position in header.repeats:
            if label not in self._conflicting and _valid(_normalized(text_of(position))).any():
                self._conflicting.add(label)
        cleaned = pd.DataFrame(columns, index=raw.index, copy=False)
        if count and not present.all():
            blank = np.flatnonzero(~present)
            cleaned = cleaned[present]
            self._blank_count += len(blank)
            self._blank_positions.append(_data_rows(raw.index, blank) - 1)
            self._blank_rows = (self._blank_rows + [int(row) for row in _data_rows(raw.index, blank[:SAMPLE_SIZE])])[:SAMPLE_SIZE]
        self.report.rows_out += len(cleaned)
        return cleaned

    def _add_issue(self, issue: ColumnIssue) -> None:
        known = self._issues.get(issue.column)
        if known is None:
            self._issues[issue.column] = issue
            return
        known.count += issue.count
        known.samples = (known.samples + issue.samples)[:SAMPLE_SIZE]
        known.rows = (known.rows + issue.rows)[:SAMPLE_SIZE]

    def data_rows(self, positions: np.ndarray) -> np.ndarray:
        """Data row numbers in the file (1 = the first row under the header) of cleaned rows, by
        their positions in the cleaned table (blank rows dropped)."""
        positions = np.asarray(positions, dtype=np.int64)
        if not self._blank_positions:
            return positions + 1
        blank = np.concatenate(self._blank_positions)
        # The k-th blank row is at file position blank[k]; the kept rows before it number blank[k] - k.
        shifted = blank - np.arange(len(blank))
        return positions + np.searchsorted(shifted, positions, side="right") + 1

    def finish(self) -> CleaningReport:
        """The report of every batch cleaned (without the primary key's repeats: see the class)."""
        spec, header, labels, report = self.spec, self.header, self.labels, self.report
        report.issues = [self._issues[column.name] for column in spec.columns if column.name in self._issues]
        report.renamed = {}
        for column in spec.columns:
            position = header.positions.get(column.name)
            if position is not None and labels[position] != column.name:
                report.renamed[labels[position]] = column.name
        _report_columns(report, spec, header, labels)
        taken = {column.name for column in spec.columns}
        for position in header.extra:
            if spec.extra_columns == "keep" or _intrinsic(labels[position], spec):
                name = snake_case(labels[position])
                while name in taken:
                    name = f"{name}_"
                taken.add(name)
                if labels[position] != name:
                    report.renamed[labels[position]] = name
        repeated = sorted({label for label, _ in header.repeats})
        if repeated:
            conflicting = self._conflicting
            severity = "critical" if conflicting else "warning"
            detail = (
                f"the header repeats {repeated}; later copies with values ({sorted(conflicting)}) cannot be published "
                "beside the first: rename them in the source"
                if conflicting
                else f"the header repeats {repeated}; the later copies are empty and were dropped"
            )
            _finding(report, "duplicate_headers", severity, repeated, detail, count=len(header.repeats))
        if self._blank_count:
            _finding(
                report, "blank_rows", "warning", [], "rows without any value were dropped",
                count=self._blank_count, rows=list(self._blank_rows),
            )
        return report


def clean_table(raw: pd.DataFrame, spec: DatasetSpec, decimal: str) -> tuple[pd.DataFrame, CleaningReport]:
    """Match the file's columns to the declared ones, trim, null blanks, type every column as
    declared, and drop blank rows; how the file's shape differed is in `report.structure`.

    The publication policy is the dataset's (see DatasetSpec): undeclared columns kept as text,
    dropped or blocking (`extra_columns`); a missing optional column published empty (a warning),
    a missing required one published empty and blocking; a header that differs only by case or
    accents, or named in `rename`, read as the declared column; a repeated header name dropped
    when its copy is empty, blocking otherwise.
    """
    cleaner = TableCleaner([str(label) for label in raw.columns], spec, decimal)
    cleaned = cleaner.clean(raw)
    report = cleaner.finish()
    if spec.primary_key:
        cleaned, report.duplicates = drop_duplicate_keys(cleaned, spec.primary_key, spec.on_duplicate_key)
        report.rows_out = len(cleaned)
    return cleaned, report


def _report_columns(report: CleaningReport, spec: DatasetSpec, header: _Header, labels: list[str]) -> None:
    """Findings on the declared columns: missing ones, respelled headers, undeclared columns."""
    missing = [column for column in spec.columns if column.name not in header.positions]
    required = [c.source_name for c in missing if c.required or c.name in spec.primary_key]
    optional = [c.source_name for c in missing if c.source_name not in required]
    if required:
        _finding(
            report, "missing_columns", "critical", required,
            f"required column(s) {required} are not in the file (its header has {labels}); published empty, which blocks",
        )
    if optional:
        _finding(
            report, "missing_columns", "warning", optional,
            f"optional column(s) {optional} are not in the file; published empty",
        )
    if header.respelled:
        pairs = [f"{header_name!r} as {name!r}" for name, header_name in header.respelled.items()]
        _finding(
            report, "header_spelling", "warning", list(header.respelled),
            f"headers that differ from the declared names only by case or accents were read as them: {', '.join(pairs)}",
        )
    extra = [labels[position] for position in header.extra if not _intrinsic(labels[position], spec)]
    if extra:
        action = {"keep": "published as text", "drop": "dropped", "block": "not published, which blocks"}[spec.extra_columns]
        severity = "critical" if spec.extra_columns == "block" else "warning"
        _finding(report, "extra_columns", severity, extra, f"column(s) {extra} are not declared: {action}")


def drop_duplicate_keys(frame: pd.DataFrame, key: list[str], policy: str) -> tuple[pd.DataFrame, DuplicateKeys | None]:
    """Resolve rows that repeat a primary key, as the dataset's `on_duplicate_key` says.

    Administrations' exports often repeat whole rows (a join upstream, a file appended twice):
    `drop_identical` (the default) drops a row only when it equals an earlier one in every
    column, so nothing is lost; rows sharing a key with other values are kept, and the
    critical uniqueness rule on the key blocks publication naming them. `keep_first` and
    `keep_last` resolve conflicts too, for sources known to append corrections; `keep_all`
    leaves every row to the quality rules. Data rows are numbered by the frame's index when it is
    the source's row positions (a RangeIndex, possibly with blank rows dropped), else by position.
    """
    repeated = frame.duplicated(subset=key, keep=False).to_numpy()
    if not repeated.any():
        return frame, None
    report = DuplicateKeys(key=list(key), policy=policy)
    if policy == "keep_all":
        drop = np.zeros(len(frame), dtype=bool)
    elif policy == "drop_identical":
        drop = frame.duplicated(keep="first").to_numpy()
    else:
        drop = frame.duplicated(subset=key, keep="first" if policy == "keep_first" else "last").to_numpy()
    kept = frame[~drop]
    conflicting = kept.duplicated(subset=key, keep=False).to_numpy()
    data_rows = _data_rows(frame.index)
    positions = np.flatnonzero(drop)
    report.dropped = len(positions)
    report.dropped_rows = [int(data_rows[p]) for p in positions[:SAMPLE_SIZE]]
    conflict_positions = np.flatnonzero(~drop)[conflicting]
    report.conflicting = len(conflict_positions)
    report.conflicting_rows = [int(data_rows[p]) for p in conflict_positions[:SAMPLE_SIZE]]
    samples = kept[conflicting][key].drop_duplicates().head(SAMPLE_SIZE)
    report.conflicting_keys = [[str(value) for value in row] for row in samples.itertuples(index=False)]
    return (kept if report.dropped else frame), report


def _data_rows(index: pd.Index, positions: np.ndarray | None = None) -> np.ndarray:
    """Data row numbers (1 = the first row under the header) of a frame's rows (those at
    `positions`, or all): its index when that holds the source's row positions, else by position."""
    positions = np.arange(len(index)) if positions is None else np.asarray(positions, dtype=np.int64)
    if pd.api.types.is_integer_dtype(index):
        return np.asarray(index[positions], dtype=np.int64) + 1
    return positions + 1
