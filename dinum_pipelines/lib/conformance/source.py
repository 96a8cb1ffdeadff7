"""The raw file as the validator sees it: its header and its rows, cell by cell, in batches.

Judging a producer's file needs what a reader for publication throws away: which rows are blank,
which rows have too many or too few cells, the number of each row in the file. Rows are numbered
as frictionless numbers them: records, not lines (a quoted cell spanning three lines is one
row), the header being row 1 when it is the first record.

Delimited files are read by Arrow's streaming CSV reader, a block at a time, so that memory does
not grow with the file. Arrow cannot say where a row with the wrong number of cells stood, so at
the first such row (or an undecodable byte) the reader hands over to Python's `csv` module, which
resumes at the first record not yet read and keeps every row's cells; the two agree on record
boundaries, and the tests run both on the same files. Spreadsheets, JSON and XML are read by the
publication readers (`parsing.py`) and cut into batches.
"""

from __future__ import annotations

import codecs
import csv
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from dinum_pipelines.lib.clean import parsing
from dinum_pipelines.lib.conformance.faults import Fault
from dinum_pipelines.lib.declare.registry import CsvOptions, SourceSpec

BATCH_ROWS = 1 << 16
# Arrow reads up to 32 blocks ahead of the consumer: 1 MiB blocks bound that to 32 MiB.
ARROW_BLOCK_BYTES = 1 << 20
csv.field_size_limit(1 << 30)  # a GeoJSON geometry in one cell easily passes csv's 128 KiB default


@dataclass
class RawBatch:
    """Consecutive rows: their numbers and their cells, one text array per header column."""

    rows: np.ndarray
    # One large_string array per header column; null where the row stops before that column.
    columns: list[pa.Array]
    # Cells beyond the header's width: (row, column number from 1, value).
    extra_cells: list[tuple[int, int, str]] = field(default_factory=list)


@dataclass
class RawTable:
    """A file opened for validation; `batches` reads it (once)."""

    name: str
    labels: list[str]
    batches: Iterator[RawBatch]
    # Faults of the file itself, found while opening it (an encoding that lies, say).
    faults: list[Fault] = field(default_factory=list)
    detected: dict[str, Any] = field(default_factory=dict)


class SourceError(ValueError):
    """The file cannot be read at all (not a table, not the declared format); says why."""


# --- Delimited text --------------------------------------------------------------------------------


def _records(path: Path, layout: parsing.CsvLayout) -> Iterator[list[str]]:
    with layout.text.open(path, errors="replace") as handle:
        yield from csv.reader(handle, delimiter=layout.delimiter)


def _python_batches(path: Path, layout: parsing.CsvLayout, width: int, first_row: int, skip: int) -> Iterator[RawBatch]:
    """Rows from record `skip` (0 = the header), numbered from `first_row`, with every row's cells."""
    records = _records(path, layout)
    for _ in range(skip):
        if next(records, None) is None:
            return
    row = first_row
    while True:
        chunk = [record for _, record in zip(range(BATCH_ROWS), records)]
        if not chunk:
            return
        columns: list[list[str | None]] = [[] for _ in range(width)]
        extra: list[tuple[int, int, str]] = []
        for offset, record in enumerate(chunk):
            for index in range(width):
                columns[index].append(record[index] if index < len(record) else None)
            for index in range(width, len(record)):
                extra.append((row + offset, index + 1, record[index]))
        yield RawBatch(
            rows=np.arange(row, row + len(chunk), dtype=np.int64),
            columns=[pa.array(values, type=pa.large_string()) for values in columns],
            extra_cells=extra,
        )
        row += len(chunk)


def _encoding_fault(path: Path, layout: parsing.CsvLayout) -> Fault | None:
    """The file's first undecodable byte in its encoding, as a fault (one pass over the file)."""
    undecodable = parsing.undecodable_line(path, layout.text)
    if undecodable is None:
        return None
    return Fault(
        code="encoding-error",
        expected=f"Le fichier n'est pas lisible en {layout.encoding} ({undecodable}) : "
        "les caractères illisibles sont remplacés par « � ».",
        note=undecodable,
    )


def _arrow_batches(path: Path, layout: parsing.CsvLayout, width: int, first_row: int, faults: list[Fault]) -> Iterator[RawBatch]:
    """Arrow's streaming reader; hands over to `_python_batches` at the first row it cannot place
    or the first byte it cannot decode (Arrow checks both as it reads, so a sound file is read
    once; the encoding fault, if any, is added to `faults` then)."""
    names = [f"c{index}" for index in range(width)]

    def refuse(_row: Any) -> str:
        return "error"

    row = first_row
    handle = path.open("rb")
    try:
        handle.seek(layout.text.bom_bytes)
        reader = pacsv.open_csv(
            handle,
            read_options=pacsv.ReadOptions(
                encoding=layout.text.encoding, skip_rows=layout.skip_lines, column_names=names, block_size=ARROW_BLOCK_BYTES
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=layout.delimiter, newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=refuse
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.large_string() for name in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        pending: list[pa.RecordBatch] = []
        for batch in itertools.chain(reader, [None]):
            if batch is not None:
                pending.append(batch)
            size = sum(piece.num_rows for piece in pending)
            if size and (batch is None or size >= BATCH_ROWS):
                # Small blocks keep Arrow's read-ahead small; the validator works on larger batches.
                joined = pa.Table.from_batches(pending).combine_chunks()
                pending = []
                yield RawBatch(rows=np.arange(row, row + size, dtype=np.int64), columns=[column.chunk(0) for column in joined.columns])
                row += size
        return
    except (pa.ArrowInvalid, UnicodeDecodeError):
        pass
    finally:
        handle.close()
    fault = _encoding_fault(path, layout)
    if fault is not None:
        faults.append(fault)
    yield from _python_batches(path, layout, width, row, skip=layout.data_row + row - first_row)


def _labels(header: list[list[str | None]], names: str) -> list[str]:
    """The header's labels as the producer wrote them (spaces included); from several header rows,
    the names cleaning reads (see `parsing.header_names`)."""
    if len(header) == 1:
        return [cell or "" for cell in header[0]]
    return [label or "" for label in parsing.header_names(header, names)] if header else []


def open_csv(path: Path, options: CsvOptions, name: str, *, missing_values: tuple[str, ...] = ("",), fast: bool = True) -> RawTable:
    """A delimited file: encoding, delimiter and header row as declared or detected."""
    layout = parsing.detect_csv_layout(path, options)
    if not layout.header or not any(cell.strip() for row in layout.header for cell in row):
        raise SourceError(f"{name}: the file is empty (no header, no data)")
    labels = _labels([list(row) for row in layout.header], options.header_names)
    faults: list[Fault] = []
    if layout.text.bom_mismatch:
        faults.append(Fault(code="bom-before-other-encoding", value=layout.text.encoding, note="UTF-8 BOM before a non-UTF-8 body"))
    width = len(labels)
    first_row = layout.data_row + 1
    # An empty line and a line of empty cells are the same to Arrow; they differ only when "" is
    # not a missing value.
    if fast and "" in missing_values and width > 0:
        batches = _arrow_batches(path, layout, width, first_row, faults)
    else:
        if (fault := _encoding_fault(path, layout)) is not None:
            faults.append(fault)
        batches = _python_batches(path, layout, width, first_row, skip=layout.data_row)
    detected = {
        "encoding": layout.encoding,
        "delimiter": layout.delimiter,
        "header_row": layout.header_row,
        "header_rows": layout.header_rows,
    }
    return RawTable(name=name, labels=labels, batches=batches, faults=faults, detected=detected)


# --- Other formats -----------------------------------------------------------------------------------


def _frame_batches(rows: list[list[str | None]], width: int, first_row: int) -> Iterator[RawBatch]:
    for start in range(0, len(rows), BATCH_ROWS):
        chunk = rows[start : start + BATCH_ROWS]
        columns = [
            pa.array([row[index] if index < len(row) else None for row in chunk], type=pa.large_string())
            for index in range(width)
        ]
        extra = [
            (first_row + start + offset, index + 1, row[index])
            for offset, row in enumerate(chunk)
            for index in range(width, len(row))
            if row[index] is not None
        ]
        yield RawBatch(rows=np.arange(first_row + start, first_row + start + len(chunk), dtype=np.int64), columns=columns, extra_cells=extra)


def open_records(frame: Any, name: str, detected: dict[str, Any]) -> RawTable:
    """Records already read as text (JSON, GeoJSON, XML): one row per record, row 1 being the names."""
    labels = [str(label) for label in frame.columns]
    rows = [[None if value is None or value != value else str(value) for value in record] for record in frame.itertuples(index=False)]
    # A field absent from a record is an empty cell, not a short row.
    rows = [[value if value is not None else "" for value in row] for row in rows]
    return RawTable(name=name, labels=labels, batches=_frame_batches(rows, len(labels), 2), detected=detected)


def open_sheet(path: Path, source: SourceSpec, name: str) -> RawTable:
    """A workbook's sheet, every row kept with its number in the sheet."""
    grid = parsing.sheet_grid(path, source.spreadsheet, source.format, name=name)
    rows = list(grid.rows)
    while rows and all(cell is None for cell in rows[-1]):
        rows.pop()  # formatting left below the table is not rows
    labels = _labels(rows[grid.header_row : grid.data_row], source.spreadsheet.header_names)
    while labels and not labels[-1] and all(len(row) < len(labels) or row[len(labels) - 1] is None for row in rows):
        labels.pop()  # empty columns right of the table
    data = [[cell if cell is not None else "" for cell in row[: len(labels)]] for row in rows[grid.data_row :]]
    detected = {"sheet": grid.sheet, "header_row": grid.header_row, "header_rows": grid.header_rows}
    return RawTable(name=name, labels=labels, batches=_frame_batches(data, len(labels), grid.data_row + 1), detected=detected)


def open_source(path: Path, source: SourceSpec, name: str, *, missing_values: tuple[str, ...] = ("",), fast: bool = True) -> RawTable:
    """The file in whatever format the dataset declares."""
    try:
        if source.format == "csv":
            return open_csv(path, source.csv, name, missing_values=missing_values, fast=fast)
        if source.format in parsing.SPREADSHEET_ENGINES:
            return open_sheet(path, source, name)
        frame, detected = parsing.read_source(path, source)
    except parsing.ParseError as exc:
        raise SourceError(str(exc)) from None
    return open_records(frame, name, detected)


_EXTENSIONS = {
    ".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".xls": "xls", ".ods": "ods",
    ".json": "json", ".geojson": "geojson", ".xml": "xml",
}


def guess_format(name: str, path: Path) -> str:
    """The file's format from its name, else from its first bytes (a zip is a workbook)."""
    suffix = Path(name.split("?")[0]).suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    with path.open("rb") as handle:
        head = handle.read(512)
    if head.startswith(b"PK\x03\x04"):
        return "ods" if b"opendocument" in head else "xlsx"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    stripped = head.lstrip(codecs.BOM_UTF8).lstrip()
    if stripped.startswith((b"{", b"[")):
        return "json"
    if stripped.startswith(b"<"):
        return "xml"
    return "csv"
