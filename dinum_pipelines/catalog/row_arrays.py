"""Row arrays: a table's rows, and the order of each of its row index's sorted copies, as plain
memory-mapped arrays beside the index (table_index.py), so that most first answers (a commune, a
department's third page, a month, a department's sales of one kind, sorted or not) are read
without a DuckDB statement.

Why: at 10M rows a page's DuckDB statement costs ~0.8 ms of CPU whatever its size (a scan set up
over a row group's columns; bench/README.md), most of a computed page once the rest was cut. The
rows a clustered column's conditions keep (a value, a list, nulls, bounds) are runs of the copy
sorted by that column, whose starts and lengths the index's counts per value give
(`table_index.ValueCounts.runs`), ties in the file's order: one value's page is a slice of the
copy's order, and its rows a gather from each column, ~0.1 ms. Other conditions are checked here
with SQL's rules (`RowArrays.page` says how a page is read).

Layout: one file, `.<name>.rows.arrays` beside the index, written with it and renamed into place
before it (an index found means its arrays are there). It holds each column of the table in the
file's order as Arrow buffers (validity bitmap, offsets for text, values), and each sorted copy's
positions; where each lies is in the index's meta (`layout`). Memory-mapped: only what a page
touches is read, and the OS shares those pages between workers, so a worker's memory does not
grow with the table; the disk holds the rows once more, uncompressed (693 MiB at 10M DVF-like
rows, beside 745 MiB of DuckDB copies). Only columns whose Python values Arrow and DuckDB give
alike are written (text, integers, floats, dates, timestamps). DuckDB still answers a query that
needs another column, searches text (`contains`: its lower() and casts), compares a float column
holding NaN (ordered last by DuckDB, unordered by Arrow), sorts on two columns, or would make this
module read too many rows.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dinum_pipelines.lib.clean.repeats import quoted as quote

BATCH_ROWS = 65_536
SORTED_ROWS_MAX = 20_000  # a sorted page gathers its sort key for every matching row: beyond this, DuckDB's top-N
CANDIDATES_MAX = 20_000  # rows of a sparse selection's runs checked here (gathered: text costs ~60 ns a row): beyond, DuckDB
SCAN_ROWS = 16_384  # rows checked at a time when reading the file's order
NARROW_TEXT_BYTES = 2**31  # text columns of fewer bytes get 32-bit offsets
_ALIGN = 64
# DuckDB type -> the Arrow type its values are kept as (text as large_string while written: one
# offsets buffer whatever the table's size, narrowed to 32-bit offsets when its bytes allow)
# whatever the table's size).
ARRAY_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.large_string(), "TINYINT": pa.int8(), "SMALLINT": pa.int16(), "INTEGER": pa.int32(),
    "BIGINT": pa.int64(), "UTINYINT": pa.uint8(), "USMALLINT": pa.uint16(), "UINTEGER": pa.uint32(),
    "UBIGINT": pa.uint64(), "FLOAT": pa.float32(), "DOUBLE": pa.float64(), "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
}


# Writing


class _Buffers:
    """One file being written: buffers appended at aligned offsets, each recorded as [offset, length]."""

    def __init__(self, path: Path) -> None:
        self.handle = path.open("wb")
        self.size = 0

    def append_file(self, source: Path) -> list[int]:
        padding = -self.size % _ALIGN
        self.handle.write(b"\0" * padding)
        self.size += padding
        start = self.size
        with source.open("rb") as data:
            shutil.copyfileobj(data, self.handle, 1 << 20)
        self.size = self.handle.tell()
        return [start, self.size - start]


def write(
    connection: duckdb.DuckDBPyConnection, file_order: str, rows: int, types: Mapping[str, str], orders: Mapping[str, str],
    position: str, target: Path, spill: Path,
) -> dict[str, Any]:
    """Write the arrays of `file_order`'s columns (those of ARRAY_TYPES) and of each sorted copy's
    positions (`orders`: clustered column -> its table) to `target`, batch by batch (memory
    bounded); the layout for the index's meta."""
    positions = "int32" if rows < 2**31 else "int64"
    layout: dict[str, Any] = {"rows": rows, "columns": {}, "orders": {}, "positions": positions}
    buffers = _Buffers(target)
    try:
        for name, column_type in types.items():
            if column_type not in ARRAY_TYPES:
                continue
            with tempfile.TemporaryDirectory(dir=spill) as folder:
                column = _column_parts(connection, f"SELECT {quote(name)} FROM {file_order}", ARRAY_TYPES[column_type], Path(folder))
                layout["columns"][name] = {"type": column_type, "nulls": column.nulls, "nans": column.nans, "narrow": column.narrow,
                                           "buffers": [buffers.append_file(part) if part else None for part in column.parts]}
        for clustered, table in orders.items():
            with tempfile.TemporaryDirectory(dir=spill) as folder:
                order = _column_parts(connection, f"SELECT {quote(position)} FROM {table}", pa.from_numpy_dtype(np.dtype(positions)), Path(folder))
                layout["orders"][clustered] = buffers.append_file(order.parts[-1])
    finally:
        buffers.handle.close()
    layout["size"] = target.stat().st_size
    return layout


@dataclass(frozen=True)
class _Column:
    parts: list[Path | None]  # buffer files: [validity, offsets, values] for text, else [validity, values]; validity None without nulls
    nulls: int
    nans: int
    narrow: bool  # text whose offsets were narrowed to 32 bits


def _column_parts(connection: duckdb.DuckDBPyConnection, sql: str, arrow_type: pa.DataType, folder: Path) -> _Column:
    """One column's buffers written as files, batch by batch."""
    text = pa.types.is_large_string(arrow_type)
    validity, offsets, values = folder / "validity", folder / "offsets", folder / "values"
    nulls = nans = 0
    ending = 0  # text: bytes so far
    pending = np.zeros(0, dtype=bool)  # validity bits not yet packed (a batch's length need not be a multiple of 8)
    reader = connection.sql(sql).to_arrow_reader(BATCH_ROWS)
    with validity.open("wb") as valid_out, offsets.open("wb") as offsets_out, values.open("wb") as values_out:
        for batch in reader:
            array = batch.column(0)
            if array.type != arrow_type:
                array = array.cast(arrow_type)
            length = len(array)
            nulls += array.null_count
            if pa.types.is_floating(arrow_type):
                nans += pc.sum(pc.is_nan(array)).as_py() or 0
            bits = np.concatenate([pending, np.asarray(array.is_valid())])
            whole = len(bits) - len(bits) % 8
            valid_out.write(np.packbits(bits[:whole], bitorder="little").tobytes())
            pending = bits[whole:]
            buffers = array.buffers()
            if text:
                bounds = np.frombuffer(buffers[1], dtype=np.int64)[array.offset : array.offset + length + 1]
                offsets_out.write((bounds[:-1] - bounds[0] + ending).astype(np.int64).tobytes())
                if buffers[2] is not None:
                    values_out.write(memoryview(buffers[2])[bounds[0] : bounds[-1]])
                ending += int(bounds[-1] - bounds[0])
            else:
                width = arrow_type.bit_width // 8
                values_out.write(memoryview(buffers[1])[array.offset * width : (array.offset + length) * width])
        if len(pending):
            valid_out.write(np.packbits(pending, bitorder="little").tobytes())
        if text:
            offsets_out.write(np.array([ending], dtype=np.int64).tobytes())
    narrow = text and ending < NARROW_TEXT_BYTES
    if narrow:
        offsets = _narrowed(offsets)
    return _Column([validity if nulls else None, *([offsets] if text else []), values], nulls, nans, narrow)


def _narrowed(offsets: Path) -> Path:
    """64-bit offsets rewritten as 32-bit ones (pa.string's), a million at a time."""
    narrow = offsets.with_name(offsets.name + "32")
    with offsets.open("rb") as wide, narrow.open("wb") as out:
        while chunk := wide.read(8 << 20):
            out.write(np.frombuffer(chunk, dtype=np.int64).astype(np.int32).tobytes())
    return narrow


# Reading


@dataclass(frozen=True)
class RowArrays:
    """The arrays of an attached index: `columns[name]` in the file's order, `orders[column]` the
    positions of the copy sorted by `column`; `with_nan` the float columns holding a NaN."""

    rows: int
    columns: Mapping[str, pa.Array]
    orders: Mapping[str, np.ndarray]
    with_nan: frozenset[str]

    @classmethod
    def open(cls, path: Path, layout: Mapping[str, Any] | None) -> RowArrays | None:
        """The arrays at `path` as `layout` describes them; None when there are none, or not these
        (a file of another size, a layout of another shape)."""
        try:
            if not layout or path.stat().st_size != layout["size"]:
                return None
            whole = pa.memory_map(str(path), "r").read_buffer()

            def buffer(place: Sequence[int] | None) -> pa.Buffer | None:
                return None if place is None else whole.slice(place[0], place[1])

            rows = layout["rows"]
            columns = {
                name: pa.Array.from_buffers(pa.string() if spec["narrow"] else ARRAY_TYPES[spec["type"]], rows,
                                            [buffer(place) for place in spec["buffers"]], null_count=spec["nulls"])
                for name, spec in layout["columns"].items()
            }
            orders = {column: np.frombuffer(buffer(place), dtype=layout["positions"]) for column, place in layout["orders"].items()}
        except (OSError, KeyError, TypeError, ValueError, pa.ArrowException):
            return None
        with_nan = frozenset(name for name, spec in layout["columns"].items() if spec["nans"])
        return cls(rows, columns, orders, with_nan)

    def page(
        self, column: str, counts: Any, compared: Sequence[tuple[str, str, Any]], sorts: Sequence[tuple[str, str]],
        columns: Sequence[str], page: Sequence[int], total_of: Callable[[], int], direct_scan_rows: int,
    ) -> tuple[int, list[tuple[Any, ...]]] | None:
        """(how many rows match, the page's rows with their position + 1 first): the rows, order
        and total tabular's `_indexed_page` reads with DuckDB; None when DuckDB should answer.

        `column` is the clustered column chosen for the query and `counts` its ValueCounts: the
        query's conditions on it (a value, a list, nulls, bounds) are runs of its sorted copy,
        whose lengths are the total. Other conditions (`COMPARED_HERE`) are checked here, with
        SQL's rules for nulls. A page is read from one run's slice when nothing else is checked;
        from the file's order, until the page is complete, when the matching rows are frequent
        enough to come within `direct_scan_rows` (the total then is `total_of()`, a count DuckDB
        makes once per selection); else from the runs' positions, checked (at most
        CANDIDATES_MAX); sorted, from every matching row (at most SORTED_ROWS_MAX)."""
        if counts is None or column not in self.orders or len(sorts) > 1:
            return None
        if any(name not in self.columns for name in (*columns, *(name for name, _ in sorts))) or any(
            name not in self.columns or operator not in COMPARED_HERE or name in self.with_nan for name, operator, _ in compared
        ):
            return None
        located = [(operator, value) for name, operator, value in compared if name == column and operator in LOCATING]
        checked = [condition for condition in compared if condition[0] != column or condition[1] not in LOCATING]
        runs = counts.runs(located) if located else None
        if runs is None:
            return None
        if not runs:  # no row holds what the clustered column's conditions ask
            return 0, []
        size, offset = page
        order = self.orders[column]
        located_rows = sum(end - start for start, end in runs)

        one_value = len(located) == 1 and located[0][0] in ("exact", "isnull")  # one run, ties in the file's order

        def candidates() -> np.ndarray:
            if one_value:
                return order[runs[0][0] : runs[0][1]]
            return np.sort(np.concatenate([order[start:end] for start, end in runs]))

        if sorts:
            if located_rows > SORTED_ROWS_MAX:
                return None
            matching = self._checked(candidates(), checked)
            chosen = self._sorted(matching, sorts[0])
            return None if chosen is None else self._rows(len(matching), chosen[offset : offset + size], columns)
        if one_value and not checked:  # a slice of the copy's order
            start = runs[0][0] + offset
            return self._rows(located_rows, order[start : min(start + size, runs[0][1])], columns)
        if (offset + size) * self.rows <= direct_scan_rows * located_rows:
            scanned = self._scanned(compared, offset + size, limit=4 * direct_scan_rows)
            if scanned is not None:
                return self._rows(total_of() if checked else located_rows, scanned[offset:], columns)
        if located_rows > CANDIDATES_MAX:
            return None
        matching = self._checked(candidates(), checked)
        return self._rows(len(matching), matching[offset : offset + size], columns)

    def _rows(self, total: int, positions: np.ndarray, columns: Sequence[str]) -> tuple[int, list[tuple[Any, ...]]]:
        taken = pa.array(positions)
        values = [pc.take(self.columns[name], taken).to_pylist() for name in columns]
        return total, list(zip((positions + 1).tolist(), *values, strict=True))

    def _mask(self, values: pa.Array, operator: str, value: Any) -> pa.Array:
        """Which of `values` meet the condition, as SQL says: a null meets none but `isnull` and
        `differs` (IS DISTINCT FROM)."""
        if operator == "isnull":
            return pc.is_null(values)
        if operator == "isnotnull":
            return pc.is_valid(values)
        if operator in ("in", "notin"):
            listed = pc.is_in(values, value_set=pa.array(value, type=values.type))
            return pc.and_(pc.invert(listed), pc.is_valid(values)) if operator == "notin" else listed
        scalar = pa.scalar(value, type=values.type)
        if operator == "differs":
            return pc.or_(pc.fill_null(pc.not_equal(values, scalar), False), pc.is_null(values))
        return pc.fill_null(_COMPARE[operator](values, scalar), False)

    def _checked(self, positions: np.ndarray, conditions: Sequence[tuple[str, str, Any]]) -> np.ndarray:
        """The `positions` whose rows meet every condition."""
        if not conditions or not len(positions):
            return positions
        taken = pa.array(positions)
        keep = np.ones(len(positions), dtype=bool)
        for name, operator, value in conditions:
            keep &= self._mask(pc.take(self.columns[name], taken), operator, value).to_numpy(zero_copy_only=False)
        return positions[keep]

    def _scanned(self, conditions: Sequence[tuple[str, str, Any]], needed: int, *, limit: int) -> np.ndarray | None:
        """The first `needed` positions, in the file's order, whose rows meet every condition;
        None when the first `limit` rows do not hold them (rarer than expected: the runs answer)."""
        found: list[np.ndarray] = []
        count = 0
        # Text last: each condition is checked on the rows the ones before kept.
        conditions = sorted(conditions, key=lambda condition: _is_text(self.columns[condition[0]].type))
        for start in range(0, self.rows, SCAN_ROWS):
            if start >= limit:
                return None
            length = min(SCAN_ROWS, self.rows - start)
            kept: np.ndarray | None = None  # offsets in the chunk
            for name, operator, value in conditions:
                values = self.columns[name].slice(start, length)
                if kept is None:
                    kept = np.flatnonzero(self._mask(values, operator, value).to_numpy(zero_copy_only=False))
                else:
                    kept = kept[self._mask(pc.take(values, pa.array(kept)), operator, value).to_numpy(zero_copy_only=False)]
                if not len(kept):
                    break
            hits = (kept if kept is not None else np.arange(length)) + start
            found.append(hits)
            count += len(hits)
            if count >= needed:
                break
        return np.concatenate(found)[:needed] if found else np.zeros(0, dtype=np.int64)

    def _sorted(self, positions: np.ndarray, sort: tuple[str, str]) -> np.ndarray | None:
        """`positions` ordered as `ORDER BY sort NULLS LAST|FIRST, position`, when the key holds no
        NaN (whose place Arrow and DuckDB do not agree on)."""
        name, direction = sort
        keys = pc.take(self.columns[name], pa.array(positions))
        if pa.types.is_floating(keys.type) and pc.any(pc.is_nan(keys)).as_py():
            return None
        ascending = direction == "asc"
        order = pc.sort_indices(
            pa.table({"key": keys, "position": positions}),
            sort_keys=[("key", "ascending" if ascending else "descending", "at_end" if ascending else "at_start"),
                       ("position", "ascending", "at_end")],
        )
        return positions[order.to_numpy()]


def _is_text(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


_COMPARE = {
    "exact": pc.equal, "less": pc.less_equal, "greater": pc.greater_equal,
    "strictly_less": pc.less, "strictly_greater": pc.greater,
}
LOCATING = ("exact", "in", "isnull", "less", "greater", "strictly_less", "strictly_greater")  # runs of a sorted copy
COMPARED_HERE = (*_COMPARE, "differs", "in", "notin", "isnull", "isnotnull")  # not contains/notcontains: DuckDB's lower() and casts
