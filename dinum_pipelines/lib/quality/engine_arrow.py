"""The fast engine: the compiled rules evaluated column-wise on the Arrow table, GX's result format out.

Why: plain GX on pandas costs about 11× a pyarrow read of the same CSV (perf-baseline.md), most
of it in row-by-row Python (`strftime`, `map`); our French formats and personal-data kinds would
add more (frformat and python-stdnum are per-value Python). Here each expectation is one or a
few vectorised passes over the Parquet's Arrow arrays (`pyarrow.compute`: regexes with RE2,
`is_in` against the official lists, comparisons; numpy for checksums), columns evaluated in
parallel threads (Arrow releases the GIL), and the GX library is not even imported. A text
column that repeats its values (communes, labels, codes) is dictionary-encoded once, and every
value-wise condition on it runs on its distinct values only (`ColumnEncodings`).

A large table is never held whole: `validate_batches` takes it batch after batch (the clean
Parquet read a row group at a time), each expectation keeping a tally (rows, rows not missing,
unexpected rows and the first of them with their values) from which GX's result is built at the
end; uniqueness, which no batch answers alone, comes from a `Repeats` function (DuckDB on disk,
lib/clean/repeats.py; in memory for a table). A table in memory is one batch of the same code.

What it returns is exactly what plain GX returns (`engine_gx.py`, the reference): the same
`success` and the same SUMMARY `result` per expectation (counts, percentages, the first 20
unexpected values, their counts and row indexes), built with the formulas of GX 1.24's
`_format_map_output`. The tests run both engines on the same tables, including the real
schema examples and generated data with every defect, and compare the results field by field;
the benchmark does the same on a sample of its million rows.

Regular expressions are read as GX reads them, with Python's `re`: RE2 (Arrow) judges the cells
on which both engines agree, `re` the others (lib/patterns.py).
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from itertools import repeat
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dinum_pipelines.lib import patterns
from dinum_pipelines.lib.clean.tables import repeats_values
from dinum_pipelines.lib.quality import frformats, personal_data
from dinum_pipelines.lib.quality.rules import Rule

PARTIAL_UNEXPECTED_COUNT = 20  # GX's SUMMARY default
MAX_THREADS = 2
GX_VERSION = "1.24.1"


def _python(value: Any) -> Any:
    """A value as GX's JSON conversion writes it."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def _mask(array: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return pc.fill_null(array, False).to_numpy(zero_copy_only=False) if len(array) else np.zeros(0, dtype=bool)


def _valid(column: pa.ChunkedArray) -> np.ndarray:
    if column.null_count == 0:
        return np.ones(len(column), dtype=bool)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    if pa.types.is_floating(column.type):
        valid &= ~_mask(pc.is_nan(column))  # pandas counts NaN as missing
    return valid


def _map_result(rows: int, nonnull: int | None, count: int, first: list[int], values: list[Any], success: bool) -> dict[str, Any]:
    """GX's `_format_map_output` for the SUMMARY format: `count` unexpected rows among `rows`
    (`nonnull` of them not missing; None for a rule on missing values), the first of them at
    `first` holding `values`."""
    partial = [_python(v) if not isinstance(v, (list, dict)) else v for v in values]
    total = count / rows * 100 if rows > 0 else None
    if nonnull is None:
        nonmissing = total
    else:
        nonmissing = count / nonnull * 100 if rows > 0 and nonnull > 0 else None
    result: dict[str, Any] = {"element_count": rows, "unexpected_count": count, "unexpected_percent": nonmissing}
    result["partial_unexpected_list"] = partial
    if nonnull is not None:
        result["missing_count"] = rows - nonnull
        result["missing_percent"] = (rows - nonnull) / rows * 100 if rows > 0 else None
        result["unexpected_percent_total"] = total
        result["unexpected_percent_nonmissing"] = nonmissing
    hashable = [tuple(v.values()) if isinstance(v, dict) else tuple(v) if isinstance(v, list) else v for v in partial]
    counts = sorted(Counter(hashable).most_common(PARTIAL_UNEXPECTED_COUNT), key=lambda x: (-x[1], _sort_key(x[0])))
    result["partial_unexpected_counts"] = [{"value": list(k) if isinstance(k, tuple) else k, "count": c} for k, c in counts]
    result["partial_unexpected_index_list"] = [int(p) for p in first]
    return {"success": success, "result": result}


def _sort_key(value: Any) -> Any:
    return value if value is not None else ""


def _mostly(considered: int, unexpected: int, mostly: float) -> bool:
    return (float(considered) - float(unexpected)) / float(considered) >= mostly


class ColumnEncodings:
    """The dictionary encodings of a table's repetitive text columns, each computed once for all the
    rules that read it, even when they run in parallel threads.

    `repetitive` carries from batch to batch which columns were found repetitive: counting a
    sample's distinct values in every batch was a quarter of the rules' time on the 10M-row bench
    table, and the choice only affects time (a condition gives the same verdicts on the values
    and on the distinct values), so the first batch decides for the others."""

    def __init__(self, table: pa.Table, repetitive: dict[str, bool] | None = None, schema: pa.Schema | None = None) -> None:
        self._lock = threading.Lock()
        self._column_locks: dict[str, threading.Lock] = {}
        self._encodings: dict[str, pa.DictionaryArray | None] = {}
        self._repetitive = {} if repetitive is None else repetitive
        # A column that arrives dictionary-encoded (read so from the clean Parquet's dictionary
        # pages: validate_parquet) is its own encoding, its values of `schema`'s text type. It
        # stays encoded in `table`: the rules read its values through the dictionary, and decode
        # only the rows they name (`_plain` where a condition needs every row's text).
        for index, field in enumerate(table.schema):
            if pa.types.is_dictionary(field.type):
                text_type = schema.field(field.name).type if schema is not None else field.type.value_type
                column = table.column(index).combine_chunks()
                encoded = pa.DictionaryArray.from_arrays(column.indices, column.dictionary.cast(text_type))
                self._encodings[field.name] = encoded
                self._repetitive[field.name] = True
                table = table.set_column(index, field.name, pa.chunked_array([encoded]))
        self.table = table

    def of(self, name: str) -> pa.DictionaryArray | None:
        """Column `name` dictionary-encoded, or None when it is not text or most of its values differ."""
        with self._lock:
            column_lock = self._column_locks.setdefault(name, threading.Lock())
        with column_lock:
            if name not in self._encodings:
                column = self.table.column(name)
                if name not in self._repetitive:
                    self._repetitive[name] = is_repetitive(column)
                self._encodings[name] = pc.dictionary_encode(column.combine_chunks()) if self._repetitive[name] else None
            return self._encodings[name]


def is_repetitive(column: pa.ChunkedArray) -> bool:
    """Text that repeats its values (tables.repeats_values): a text column is dictionary-encoded
    then, since encoding costs about one hash pass and pays off when it spares the conditions
    most rows."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)) or len(column) == 0:
        return False
    return repeats_values(column)


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column's values, decoded when it came dictionary-encoded (ColumnEncodings)."""
    if not pa.types.is_dictionary(column.type):
        return column
    return pa.chunked_array([chunk.dictionary_decode() for chunk in column.chunks], column.type.value_type)


def _per_value(condition: Callable[[pa.ChunkedArray], np.ndarray], column: pa.ChunkedArray, encoded: pa.DictionaryArray | None) -> np.ndarray:
    """`condition` for every row: on the distinct values when the column is encoded (null rows
    get the first value's verdict, which no caller reads)."""
    if encoded is None or len(encoded.dictionary) == 0:
        return condition(_plain(column))
    verdicts = condition(pa.chunked_array([encoded.dictionary]))
    if verdicts.all():  # the usual case, without a gather over every row
        return np.ones(len(column), dtype=bool)
    return verdicts[pc.fill_null(encoded.indices, 0).to_numpy()]


def _bound(value: Any, arrow_type: pa.DataType) -> Any:
    if isinstance(value, str) and (pa.types.is_date(arrow_type) or pa.types.is_timestamp(arrow_type)):
        parsed = datetime.fromisoformat(value)
        return pa.scalar(parsed.date() if pa.types.is_date(arrow_type) else parsed, arrow_type)
    return value


def _between(kwargs: dict[str, Any], values: pa.ChunkedArray) -> np.ndarray:
    inside = pa.chunked_array([pa.array(np.ones(len(values), dtype=bool))]) if len(values) else pa.array([], pa.bool_())
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None:
        compare = pc.greater if kwargs.get("strict_min") else pc.greater_equal
        inside = pc.and_(inside, compare(values, _bound(low, values.type)))
    if high is not None:
        compare = pc.less if kwargs.get("strict_max") else pc.less_equal
        inside = pc.and_(inside, compare(values, _bound(high, values.type)))
    return _mask(inside)


def _in_set(value_set: list[Any], values: pa.ChunkedArray) -> np.ndarray:
    wanted = [v for v in value_set if _same_kind(v, values.type)]
    if not wanted:
        return np.zeros(len(values), dtype=bool)
    return _mask(pc.is_in(values, value_set=pa.array(wanted).cast(values.type)))


def _same_kind(value: Any, arrow_type: pa.DataType) -> bool:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return isinstance(value, str)
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


def _unique(values: pa.ChunkedArray, encoded: pa.DictionaryArray | None) -> np.ndarray:
    """Rows whose value no other row has, from counts of a code per distinct value: the dictionary
    codes of an encoded column, else dense ranks (a sort: faster than hashing a million distinct
    strings, and equal where pandas is, -0.0 and 0.0 included). Null rows get a code of their
    own, which no caller reads."""
    if encoded is not None:
        codes = pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy()
    else:
        codes = pc.rank(values.combine_chunks(), tiebreaker="dense").to_numpy().astype(np.int64)
    return np.bincount(codes)[codes] == 1


def _lengths(kwargs: dict[str, Any], values: pa.ChunkedArray) -> np.ndarray:
    return _between(kwargs, pc.utf8_length(values))


# Conditions that depend on each value alone (so they can run on a column's distinct values).
COLUMN_CONDITIONS: dict[str, Callable[[dict[str, Any], pa.ChunkedArray], np.ndarray]] = {
    "expect_column_values_to_be_in_set": lambda kw, v: _in_set(kw["value_set"], v),
    "expect_column_values_to_match_regex": lambda kw, v: patterns.found(v, patterns.compiled(kw["regex"])),
    "expect_column_values_to_be_between": _between,
    "expect_column_value_lengths_to_be_between": _lengths,
    "expect_column_values_to_be_valid_french_format": lambda kw, v: frformats.vectorized_is_valid(kw["format"], v, kw.get("year")),
    "expect_column_values_to_not_be_personal_data": lambda kw, v: ~personal_data.vectorized_is_personal(v, kw["kinds"]),
}


def _in_france(a: pa.ChunkedArray, b: pa.ChunkedArray, domain: np.ndarray) -> np.ndarray:
    longitude = pc.fill_null(pc.cast(a, pa.float64()), np.nan).to_numpy(zero_copy_only=False)
    latitude = pc.fill_null(pc.cast(b, pa.float64()), np.nan).to_numpy(zero_copy_only=False)
    return frformats.vectorized_in_france(longitude, latitude)


PAIR_CONDITIONS = {
    "expect_column_pair_values_to_be_in_france": _in_france,
    "expect_column_pair_values_to_not_be_name_and_birth_date": lambda a, b, domain: np.zeros(len(a), dtype=bool),
}
UNIQUE = "expect_column_values_to_be_unique"
COMPOUND_UNIQUE = "expect_compound_columns_to_be_unique"
NOT_NULL = "expect_column_values_to_not_be_null"
# Expectations answered from the table's size, columns or counts: no row is named.
METRICS = frozenset({
    "expect_table_row_count_to_be_between",
    "expect_table_columns_to_match_set",
    "expect_column_proportion_of_non_null_values_to_be_between",
})
SUPPORTED = frozenset({*METRICS, *COLUMN_CONDITIONS, *PAIR_CONDITIONS, UNIQUE, COMPOUND_UNIQUE, NOT_NULL})
# A uniqueness expectation's answer over the whole table: how many rows fail, and the positions
# of the first PARTIAL_UNEXPECTED_COUNT of them (sorted).
Repeats = Callable[[Rule], tuple[int, np.ndarray]]


def _metric_between(kwargs: dict[str, Any], observed: Any) -> bool:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    above = low is None or (observed > low if kwargs.get("strict_min") else observed >= low)
    below = high is None or (observed < high if kwargs.get("strict_max") else observed <= high)
    return bool(above and below)


def _columns_match_set(rule: Rule, names: list[str]) -> dict[str, Any]:
    actual, expected = set(names), set(rule.kwargs["column_set"])
    observed = sorted(actual)
    extra, missing = sorted(actual - expected), sorted(expected - actual)
    if not extra and not missing:
        return {"success": True, "result": {"observed_value": observed}}
    mismatched: dict[str, list[str]] = {}
    if extra:
        mismatched["unexpected"] = extra
    if missing:
        mismatched["missing"] = missing
    success = not missing and not rule.kwargs.get("exact_match", True)
    return {"success": success, "result": {"observed_value": observed, "details": {"mismatched": mismatched}}}


def _compound_key_repeats(rule: Rule, table: pa.Table) -> np.ndarray:
    """Rows (not all missing) whose combination of values another such row has, in memory.

    As pandas (GX's engine) compares rows, a missing value equals a missing value and -0.0
    equals 0.0: each column becomes the codes of its distinct values (missing: -1), and the rows
    are grouped on the codes (Arrow's joins never match a missing key)."""
    names = rule.kwargs["column_list"]
    keys = table.select(names)
    rows = keys.num_rows
    codes = {}
    for name in names:
        column = keys.column(name)
        if pa.types.is_floating(column.type):
            column = pc.add(column, 0.0)  # -0.0 + 0.0 is 0.0
        encoded = pc.dictionary_encode(column.combine_chunks()) if len(column) else pa.array([], pa.dictionary(pa.int32(), column.type))
        codes[name] = pc.fill_null(encoded.indices, -1)
    coded = pa.table(codes)
    indexed = coded.append_column("__row", pa.array(np.arange(rows))).filter(pa.array(_compound_domain(names, keys)))
    counts = indexed.group_by(names, use_threads=False).aggregate([("__row", "count")])
    repeated = counts.filter(pc.greater(counts.column("__row_count"), 1)).drop_columns(["__row_count"])
    unexpected = np.zeros(rows, dtype=bool)
    if repeated.num_rows:
        marked = indexed.join(repeated.append_column("__repeated", pa.array(np.ones(repeated.num_rows, dtype=bool))), names)
        hit = marked.filter(pc.fill_null(marked.column("__repeated"), False)).column("__row")
        unexpected[hit.to_numpy()] = True
    return unexpected


def _compound_domain(names: list[str], table: pa.Table) -> np.ndarray:
    missing = np.ones(table.num_rows, dtype=bool)
    for name in names:
        missing &= ~_valid(table.column(name))  # ignore_row_if="all_values_are_missing"
    return ~missing


def repeats_in_memory(table: pa.Table) -> Repeats:
    """The uniqueness answers for a table held in memory (the streaming path asks DuckDB: repeats.py)."""
    encodings = ColumnEncodings(table)

    def repeats(rule: Rule) -> tuple[int, np.ndarray]:
        if rule.type == UNIQUE:
            column = table.column(rule.kwargs["column"])
            unexpected = _valid(column) & ~_unique(column, encodings.of(rule.kwargs["column"]))
        else:
            unexpected = _compound_key_repeats(rule, table)
        positions = np.flatnonzero(unexpected)
        return len(positions), positions[:PARTIAL_UNEXPECTED_COUNT]

    return repeats


class _Tally:
    """One expectation's figures over the batches seen so far: rows, rows not missing, unexpected
    rows and the first of them with their values, or the error that stopped it."""

    def __init__(self, rule: Rule, index: int, repeats: Repeats) -> None:
        self.rule, self.index = rule, index
        self.rows = self.nonnull = self.count = 0
        self.first: list[int] = []
        self.values: list[Any] = []
        self.error: str | None = None
        # Uniqueness is answered over the whole table before the batches pass (their values are
        # then picked up as the batches holding the first repeated rows go by).
        self.repeated: np.ndarray | None = None
        if rule.type in (UNIQUE, COMPOUND_UNIQUE):
            self.count, self.repeated = repeats(rule)

    def _pick(self, hits: np.ndarray, values: Callable[[np.ndarray], list[Any]], offset: int) -> None:
        room = PARTIAL_UNEXPECTED_COUNT - len(self.first)
        if room > 0 and len(hits):
            taken = hits[:room]
            self.first += [int(p) + offset for p in taken]
            self.values += values(taken)

    def _map(self, rows: int, nonnull: int, unexpected: np.ndarray | None, values: Callable[[np.ndarray], list[Any]], offset: int) -> None:
        self.rows += rows
        self.nonnull += nonnull
        if self.repeated is not None:  # uniqueness: the rows were found beforehand
            local = self.repeated[(self.repeated >= offset) & (self.repeated < offset + rows)] - offset
            self._pick(local, values, offset)
            return
        hits = np.flatnonzero(unexpected)
        self.count += len(hits)
        self._pick(hits, values, offset)

    def feed(self, table: pa.Table, offset: int, encodings: ColumnEncodings) -> None:
        """Add one batch (its first row is the table's row `offset`)."""
        if self.error is not None:
            return
        try:
            self._feed(table, offset, encodings)
        except (KeyError, pa.ArrowException, ValueError, TypeError, re.error) as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def _feed(self, table: pa.Table, offset: int, encodings: ColumnEncodings) -> None:
        rule, kwargs, rows = self.rule, self.rule.kwargs, table.num_rows
        if rule.type in METRICS:
            self.rows += rows
            if rule.type == "expect_column_proportion_of_non_null_values_to_be_between":
                self.nonnull += int(_valid(table.column(kwargs["column"])).sum())
            return
        if rule.type in PAIR_CONDITIONS:
            a, b = _plain(table.column(kwargs["column_A"])), _plain(table.column(kwargs["column_B"]))
            domain = _valid(a) & _valid(b)  # ignore_row_if="either_value_is_missing"

            def pairs(positions: np.ndarray) -> list[Any]:
                index = pa.array(positions, pa.int64())
                return [[_python(x), _python(y)] for x, y in zip(pc.take(a, index).to_pylist(), pc.take(b, index).to_pylist())]

            self._map(rows, int(domain.sum()), domain & ~PAIR_CONDITIONS[rule.type](a, b, domain), pairs, offset)
            return
        if rule.type == COMPOUND_UNIQUE:
            names = kwargs["column_list"]
            keys = table.select(names)

            def combinations(positions: np.ndarray) -> list[Any]:
                taken = keys.take(pa.array(positions, pa.int64())).to_pylist()
                return [{name: _python(row[name]) for name in names} for row in taken]

            self._map(rows, int(_compound_domain(names, keys).sum()), None, combinations, offset)
            return
        column = table.column(kwargs["column"])

        def cells(positions: np.ndarray) -> list[Any]:
            return pc.take(column, pa.array(positions, pa.int64())).to_pylist()

        valid = _valid(column)
        if rule.type == NOT_NULL:
            self._map(rows, 0, ~valid, lambda positions: [None] * len(positions), offset)
        elif rule.type == UNIQUE:
            self._map(rows, int(valid.sum()), None, cells, offset)
        else:
            condition = COLUMN_CONDITIONS[rule.type]
            nonnull = int(valid.sum())
            if nonnull:
                passed = _per_value(lambda v: condition(kwargs, v), column, encodings.of(kwargs["column"]))
                unexpected = valid & ~passed
            else:
                unexpected = np.zeros(rows, dtype=bool)
            self._map(rows, nonnull, unexpected, cells, offset)

    def outcome(self, names: list[str]) -> dict[str, Any]:
        """`{"success", "result"}` as GX computes them on the whole table."""
        rule, kwargs, rows = self.rule, self.rule.kwargs, self.rows
        if rule.type == "expect_table_row_count_to_be_between":
            return {"success": _metric_between(kwargs, rows), "result": {"observed_value": rows}}
        if rule.type == "expect_table_columns_to_match_set":
            return _columns_match_set(rule, names)
        if rule.type == "expect_column_proportion_of_non_null_values_to_be_between":
            if rows == 0:
                return {"success": False, "result": {"observed_value": None}}
            observed = self.nonnull / rows
            return {"success": _metric_between(kwargs, observed), "result": {"observed_value": observed}}
        mostly = kwargs.get("mostly", 1.0)
        if rule.type == NOT_NULL:
            success = True if rows == 0 else (rows - self.count) / rows >= mostly
            return _map_result(rows, None, self.count, self.first, self.values, success)
        success = True if rows == 0 or self.nonnull == 0 else _mostly(self.nonnull, self.count, mostly)
        return _map_result(rows, self.nonnull, self.count, self.first, self.values, success)

    def result(self, names: list[str]) -> dict[str, Any]:
        config = self.rule.config()
        config["meta"]["index"] = self.index
        config["id"] = None
        if self.error is None:
            outcome = self.outcome(names)
            exception = {"raised_exception": False, "exception_traceback": None, "exception_message": None}
        else:
            outcome = {"success": False, "result": {}}
            exception = {"raised_exception": True, "exception_traceback": None, "exception_message": self.error}
        return {"success": outcome["success"], "expectation_config": config, "result": outcome["result"], "meta": {}, "exception_info": exception}


def validate_batches(
    batches: Iterable[pa.Table], schema: pa.Schema, suite_name: str, rules: list[Rule], repeats: Repeats
) -> dict[str, Any]:
    """Run `rules` on a table that comes in consecutive batches (of `schema`, or of the columns the
    rules read; a text column may come dictionary-encoded), holding one batch at a time; `repeats`
    answers the uniqueness expectations over the whole table. The validation
    result in GX's JSON format (SUMMARY), the same as for the whole table at once."""
    unsupported = sorted({rule.type for rule in rules} - SUPPORTED)
    if unsupported:
        raise ValueError(f"the Arrow engine does not evaluate {unsupported}; run them with engine='gx'")
    started = datetime.now().astimezone()
    names = list(schema.names)
    tallies = []
    for index, rule in enumerate(rules):
        missing = [name for name in rule.columns if name not in names]
        if missing:
            tally = _Tally(rule, index, lambda rule: (0, np.empty(0, dtype=np.int64)))
            tally.error = "KeyError: " + str(KeyError(f"column(s) {missing} not found in the table"))
        else:
            try:
                tally = _Tally(rule, index, repeats)
            except (pa.ArrowException, ValueError, TypeError) as exc:
                tally = _Tally(rule, index, lambda rule: (0, np.empty(0, dtype=np.int64)))
                tally.error = f"{type(exc).__name__}: {exc}"
        tallies.append(tally)
    offset = 0
    repetitive: dict[str, bool] = {}
    with ThreadPoolExecutor(max_workers=MAX_THREADS) as pool:
        for batch in batches:
            encodings = ColumnEncodings(batch, repetitive, schema)
            table = encodings.table
            list(pool.map(_Tally.feed, tallies, repeat(table), repeat(offset), repeat(encodings)))
            offset += table.num_rows
    results = [tally.result(names) for tally in tallies]
    successful = sum(bool(r["success"]) for r in results)
    return {
        "success": successful == len(results),
        "results": results,
        "suite_name": suite_name,
        "suite_parameters": {},
        "statistics": {
            "evaluated_expectations": len(results),
            "successful_expectations": successful,
            "unsuccessful_expectations": len(results) - successful,
            "success_percent": 100.0 * successful / len(results) if results else None,
        },
        "meta": {
            "great_expectations_version": GX_VERSION,
            "engine": "dinum_pipelines arrow engine (GX result format)",
            "validation_time": started.isoformat(),
        },
        "id": None,
    }


def validate_with_arrow(table: pa.Table, suite_name: str, rules: list[Rule]) -> dict[str, Any]:
    """Run `rules` on `table`; the validation result in GX's JSON format (SUMMARY)."""
    return validate_batches([table], table.schema, suite_name, rules, repeats_in_memory(table))

def _comparable(value: Any) -> Any:
    """A result as JSON would carry it (NaN as null, dates as ISO strings, tuples as lists)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_comparable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def result_differences(reference: dict[str, Any], fast: dict[str, Any]) -> list[str]:
    """How two GX-format validation results differ, expectation by expectation (empty: identical).

    Compared: each expectation's type, kwargs, severity, success, exception flag and every
    field of its `result`; not compared: generated ids, run times and batch ids."""
    differences = []
    if len(reference["results"]) != len(fast["results"]):
        return [f"{len(reference['results'])} results against {len(fast['results'])}"]
    for expected, actual in zip(reference["results"], fast["results"]):
        config = expected["expectation_config"]
        kwargs = {k: v for k, v in config["kwargs"].items() if k != "batch_id"}
        label = f"{config['type']}({kwargs})"
        if (config["type"], _comparable(kwargs), config.get("severity")) != (
            actual["expectation_config"]["type"], _comparable(actual["expectation_config"]["kwargs"]), actual["expectation_config"].get("severity"),
        ):
            differences.append(f"{label}: not the same expectation as {actual['expectation_config']}")
            continue
        raised = bool(expected["exception_info"].get("raised_exception")) or any(
            isinstance(v, dict) and v.get("raised_exception") for v in expected["exception_info"].values()
        )
        if raised or actual["exception_info"].get("raised_exception"):
            differences.append(f"{label}: raised an exception (GX: {raised}, arrow: {actual['exception_info']})")
            continue
        if expected["success"] != actual["success"]:
            differences.append(f"{label}: success {expected['success']} (GX) != {actual['success']} (arrow)")
        reference_result, fast_result = _comparable(expected["result"]), _comparable(actual["result"])
        for key in sorted(set(reference_result) | set(fast_result)):
            if reference_result.get(key, "<absent>") != fast_result.get(key, "<absent>"):
                differences.append(f"{label}: result[{key!r}] GX={reference_result.get(key, '<absent>')!r} arrow={fast_result.get(key, '<absent>')!r}")
    return differences
