"""Reading an administration's file into a table of text, whatever its format, encoding and layout.

Parsing only splits the bytes into rows and columns: every cell stays text, so nothing is
guessed here (codes keep their leading zeros, `26 956,00` is not yet a number). Typing is the
cleaning step's job, driven by the dataset's declared columns. Nested values (JSON objects and
lists, XML sub-elements, GeoJSON geometries) become compact JSON text, which can be published
as is or parsed again by a reuser.

Formats: delimited text (`csv`), `json`, `geojson`, `xml`, and `xlsx` / `xls` / `ods` workbooks.
Every error is a `ParseError` naming the file (as the administration serves it, never by a local
path) and where in it: the line, sheet and row, record or field.

What real files throw at us, and where it is handled: a UTF-8 BOM before Windows-1252 text
(`detect_text_encoding`), title rows above the header (`detect_header_row`,
`detect_sheet_header_row`), a row of codes under the header's labels (`detect_header_rows`), and
workbooks whose styles openpyxl refuses (read with calamine, which ignores styles).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from openpyxl.utils import get_column_letter

from dinum_pipelines.lib.declare.registry import (
    CsvOptions,
    JsonOptions,
    SourceSpec,
    SpreadsheetOptions,
)
from dinum_pipelines.lib.uncached import UncachedReader

SNIFF_BYTES = 64 * 1024
UTF8_BOM = codecs.BOM_UTF8
DELIMITER_CANDIDATES = ";,|\t"
# Rows of a sheet looked at to find its header below title rows.
HEADER_SCAN_ROWS = 50
# A cell of a header row of codes (`CODGEO`, `P21_POP`): a letter, then letters, digits or `_`.
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# calamine reads cell values only (no styles, so a bad colour cannot stop it) and is fast.
SPREADSHEET_ENGINES = {"xlsx": "calamine", "xls": "calamine", "ods": "calamine"}
GEOMETRY_COLUMN = "geometry"
# Integral floats below this print without ".0" (exactly representable integers).
_EXACT_INTEGER_LIMIT = 2**53


class ParseError(ValueError):
    """The file cannot be read as declared; the message names the file and the line or field."""


def _without_path(message: str, path: Path, name: str) -> str:
    """A library's error message with the file's local path (raw store, temporary folder) replaced
    by its name: openpyxl, zipfile and others put the path they were given in their messages."""
    spellings = {str(path), path.as_posix(), str(path.absolute()), str(path.resolve())}
    for spelling in sorted(spellings, key=len, reverse=True):  # the longest first: it contains the others
        message = message.replace(spelling, name)
    return message


@dataclass(frozen=True)
class TextEncoding:
    """How a text file's bytes become text: skip `bom_bytes` leading bytes, decode the rest with `encoding`.

    `encoding` is the body's codec ("utf-8", "cp1252", "latin-1", or the declared one) and
    `bom_bytes` is 3 when the file starts with a UTF-8 BOM (`EF BB BF`), else 0. `bom_mismatch`
    says that BOM stands before a body that is not UTF-8: Excel and some tools write one before
    Windows-1252 text; readers that trust it fail, or glue `ï»¿` to the first column's name, so
    the conformance report tells the producer.

    pyarrow's CSV reader: open the file, `seek(bom_bytes)`, pass the handle with
    `ReadOptions(encoding=encoding)`. Python's csv module: `reader(encoding.open(path))`.
    """

    encoding: str
    bom_bytes: int = 0
    bom_mismatch: bool = False

    @property
    def label(self) -> str:
        """The encoding as reported in metadata: `utf-8-sig` for UTF-8 behind a BOM."""
        return "utf-8-sig" if self.bom_bytes and _codec(self.encoding) == "utf-8" else self.encoding

    def open(self, path: Path, errors: str = "strict") -> io.TextIOWrapper:
        """The file as text from after its BOM, with `newline=""` as the csv module wants."""
        handle = path.open("rb")
        handle.seek(self.bom_bytes)
        return io.TextIOWrapper(handle, encoding=self.encoding, errors=errors, newline="")

    def decode(self, data: bytes, errors: str = "strict") -> str:
        """`data`, read from the start of the file, as text without its BOM."""
        return data[self.bom_bytes :].decode(self.encoding, errors=errors)


@dataclass(frozen=True)
class CsvLayout:
    text: TextEncoding
    delimiter: str
    # 0-based record where the header starts, and how many rows it spans (2: labels over codes).
    # Records, not lines: a quoted cell may span lines (in a title row, a label, or the data).
    header_row: int
    header_rows: int = 1
    # The header's cells (one list per header row), as read with the csv module.
    header: tuple[tuple[str, ...], ...] = ()
    # Physical lines before the data (what Arrow's `skip_rows` counts); None = data_row.
    data_line: int | None = None

    @property
    def encoding(self) -> str:
        return self.text.label

    @property
    def data_row(self) -> int:
        """0-based record where the data starts, below the header rows."""
        return self.header_row + self.header_rows

    @property
    def skip_lines(self) -> int:
        """Physical lines before the data, for Arrow's `skip_rows` (which does not see quotes)."""
        return self.data_row if self.data_line is None else self.data_line


# --- Cells -------------------------------------------------------------------------------------


def cell_text(value: Any) -> str | None:
    """One cell of any format as the text a person would read in it; None when empty.

    Integral numbers print without `.0` (a spreadsheet's 29470 or JSON's 2.0 is `29470`, `2`),
    dates in ISO 8601, booleans as `true`/`false`, objects and lists as compact JSON.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer() and abs(value) < _EXACT_INTEGER_LIMIT:
            return str(int(value))
        return repr(value)
    if value is pd.NaT:
        return None
    if isinstance(value, datetime):
        if value.time() == time() and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value)


def _records_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Records (mappings) as a text table; columns in order of first appearance, gaps as nulls."""
    records = list(records)
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    data = {name: [cell_text(record.get(name)) for record in records] for name in columns}
    return pd.DataFrame(data, dtype="str")


# --- Headers -------------------------------------------------------------------------------------


def _rows_where(unit: str, header_row: int, header_rows: int) -> str:
    """The header's place for messages, 1-based: "line 4", or "rows 4-5" for a two-row header."""
    if header_rows == 1:
        return f"{unit} {header_row + 1}"
    return f"{unit}s {header_row + 1}-{header_row + header_rows}"


def _is_code(cell: str | None) -> bool:
    return cell is not None and _CODE.fullmatch(cell) is not None


def detect_header_rows(rows: list[list[str | None]], header_row: int) -> int:
    """2 when the row under the header at `header_row` is a second header row, of codes; else 1.

    INSEE and others put each variable's code (`CODGEO;LIBGEO;P21_POP`) under its label
    (`Code géographique;Libellé géographique;Population`). `rows` are the first rows of the file
    or sheet, empty cells as None. The row under the header is such a row when:
    - every non-empty cell is a code (a letter, then letters, digits or `_`: no space), the codes
      are distinct, and at least two of them differ from the label above them;
    - the header is made of labels: at least one of them has a space or a non-ASCII letter;
    - the rows below it are data, not codes: in at least one column they have values and none
      is a code (numbers, `01001`, names with spaces or hyphens). So a first data row of plain
      words (`PARIS;Oui`) is not taken for codes when the table has one such column; without
      any row below, nothing tells codes from data and the answer is 1.
    """
    scanned = rows[header_row : header_row + 2 + HEADER_SCAN_ROWS]
    rows = [[cell.strip() or None if cell is not None else None for cell in row] for row in scanned]
    if len(rows) < 2:
        return 1
    header, candidate, below = rows[0], rows[1], rows[2:]
    codes = {index: cell for index, cell in enumerate(candidate) if cell is not None}
    if not all(map(_is_code, codes.values())) or len(set(codes.values())) < len(codes):
        return 1
    renamed = [index for index, code in codes.items() if index >= len(header) or header[index] != code]
    labels = [label for label in header if label is not None]
    if len(renamed) < 2 or not any(" " in label or not label.isascii() for label in labels):
        return 1

    def data_column(index: int) -> bool:
        values = [row[index] for row in below if index < len(row) and row[index] is not None]
        return bool(values) and not any(map(_is_code, values))

    return 2 if any(data_column(index) for index in codes) else 1


def header_names(header: list[list[str | None]], names: Literal["first", "last"]) -> list[str | None]:
    """The columns' names from the header rows: the `first` or `last` row's cell, else (a label
    spanning several codes) the nearest other header row's; None when every header row is empty."""
    ordered = header if names == "first" else header[::-1]
    width = max((len(row) for row in header), default=0)
    return [
        next((row[index].strip() for row in ordered if index < len(row) and row[index] and row[index].strip()), None)
        for index in range(width)
    ]


# --- Delimited text ------------------------------------------------------------------------------


def _codec(encoding: str) -> str:
    """The codec's canonical name ("UTF8" and "utf_8" are "utf-8"); the name itself if unknown."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        return encoding


def _single_byte(encoding: str) -> bool:
    """Whether every byte is one character in `encoding` (cp1252, latin-1, iso-8859-15...)."""
    try:
        return len(bytes(range(256)).decode(encoding, errors="replace")) == 256
    except LookupError:
        return False


def _body_encoding(sample: bytes) -> str:
    """UTF-8 when the bytes decode as such, otherwise Windows-1252, else Latin-1 (see `detect_encoding`)."""
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the end of the sample is still UTF-8.
        if exc.start >= len(sample) - 3 and exc.reason == "unexpected end of data":
            return "utf-8"
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def sniff_text_encoding(sample: bytes, declared: str | None = None) -> TextEncoding:
    """How to decode a file that starts with `sample`; `declared` is the registry's encoding, if any.

    A UTF-8 BOM is skipped whatever the encoding. Without a declaration, the body after it is
    detected like any file (`detect_encoding`): a BOM before Windows-1252 bytes, as Excel and
    some tools write, gives cp1252 with `bom_mismatch`. A declared UTF-8 keeps the BOM out of the
    first column's name; a declared single-byte encoding (cp1252, latin-1, iso-8859-15...) on a
    file with a BOM is read without it, and also reported as `bom_mismatch`.
    """
    has_bom = sample.startswith(UTF8_BOM)
    bom_bytes = len(UTF8_BOM) if has_bom else 0
    if declared is None:
        encoding = _body_encoding(sample[bom_bytes:])
    elif _codec(declared) in ("utf-8", "utf-8-sig"):
        encoding = "utf-8"
    elif _single_byte(declared):
        encoding = declared
    else:
        return TextEncoding(declared)  # a UTF-8 BOM means nothing to UTF-16 and the like
    return TextEncoding(encoding, bom_bytes, bom_mismatch=has_bom and encoding != "utf-8")


def detect_text_encoding(path: Path, declared: str | None = None) -> TextEncoding:
    """How to decode the file at `path`, from its first 64 KiB (see `sniff_text_encoding`)."""
    with path.open("rb") as handle:
        return sniff_text_encoding(handle.read(SNIFF_BYTES), declared)


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (`utf-8-sig` behind a BOM) when the bytes decode as such, otherwise Windows-1252.

    Administrations' non-UTF-8 files are nearly always Windows-1252 (Excel's "CSV" on French
    Windows); ISO-8859-1 lacks `œ` and `€`, and statistical guessers mislabel such files as
    cp1250 or cp775. cp1252 leaves five bytes undefined: a file using them is Latin-1. A BOM
    does not make the body UTF-8: see `sniff_text_encoding`, which says how to skip it.
    """
    return sniff_text_encoding(sample).label


@dataclass(frozen=True)
class _Record:
    cells: list[str]
    # Physical lines read up to the end of this record (a quoted cell may span several).
    end_line: int


def _sample_records(text: str, delimiter: str, truncated: bool, limit: int = HEADER_SCAN_ROWS) -> list[_Record]:
    """The first records of a sample, quotes respected; a record the sample's end cuts is left out."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: list[_Record] = []
    try:
        for cells in reader:
            records.append(_Record(cells, reader.line_num))
            if len(records) > limit:
                return records[:limit]
    except csv.Error:
        truncated = True  # an unbalanced quote: the record it opens is not one to judge by
    return records[:-1] if truncated and len(records) > 1 else records


def _stripped(cells: list[str]) -> list[str | None]:
    """A record's fields as header detection sees them: stripped, None when empty."""
    return [cell.strip() or None for cell in cells]


def detect_delimiter(text: str, truncated: bool = False) -> str:
    """The candidate whose most common record width (>1) explains the most cells.

    Counting cells rather than records matters when quoted cells span lines: with the wrong
    delimiter the quotes are not at a field's start, so every physical line becomes a short record.
    """
    best, best_score = ",", (0, 0)
    for candidate in DELIMITER_CANDIDATES:
        counts = [len(record.cells) for record in _sample_records(text, candidate, truncated) if any(c.strip() for c in record.cells)]
        if not counts:
            continue
        mode = max(set(counts), key=counts.count)
        score = (counts.count(mode) * mode, mode) if mode > 1 else (0, 0)
        if score > best_score:
            best, best_score = candidate, score
    return best


def detect_header_row(widths: list[int]) -> int:
    """Index of the first record with as many fields as most non-empty records (skips title rows
    above a table; empty lines, 0 wide, never decide the table's width)."""
    filled = [width for width in widths if width]
    if not filled:
        return 0
    table_width = max(set(filled), key=lambda width: (filled.count(width), width))
    return next(i for i, width in enumerate(widths) if width == table_width)


def detect_csv_layout(path: Path, options: CsvOptions) -> CsvLayout:
    """Encoding, delimiter and header of a delimited file, from its first 64 KiB; declared options win."""
    with path.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    text = sniff_text_encoding(sample, options.encoding)
    decoded = text.decode(sample, errors="replace")
    truncated = len(sample) == SNIFF_BYTES
    delimiter = options.delimiter or detect_delimiter(decoded, truncated)
    records = _sample_records(decoded, delimiter, truncated)
    widths = [len(record.cells) if any(c.strip() for c in record.cells) else 0 for record in records]
    header_row = options.header_row if options.header_row is not None else detect_header_row(widths)
    rows = [_stripped(record.cells) for record in records]
    header_rows = options.header_rows or detect_header_rows(rows, header_row)
    data_row = header_row + header_rows
    header = tuple(tuple(record.cells) for record in records[header_row:data_row])
    data_line = records[data_row - 1].end_line if 0 < data_row <= len(records) else None
    return CsvLayout(text=text, delimiter=delimiter, header_row=header_row, header_rows=header_rows, header=header, data_line=data_line)


def undecodable_line(path: Path, text: TextEncoding, stop_after_line: int | None = None) -> str | None:
    """Where the file first fails to decode ("line 12: byte 0xe9 cannot be decoded as utf-8"), or None.

    Streams the file from after its BOM; lines are counted on `\\n`, which ASCII-compatible
    encodings never use inside a character.
    """
    decoder = codecs.getincrementaldecoder(text.encoding)()
    line = 1
    with path.open("rb") as handle:
        handle.seek(text.bom_bytes)
        while True:
            chunk = handle.read(1 << 20)
            try:
                decoded = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                line += exc.object[: exc.start].count(b"\n")
                bad = " ".join(f"0x{byte:02x}" for byte in exc.object[exc.start : exc.end])
                return f"line {line}: byte(s) {bad} cannot be decoded as {text.encoding}"
            line += decoded.count("\n")
            if not chunk or (stop_after_line is not None and line > stop_after_line):
                return None


def _encoding_error(
    path: Path, name: str, layout: CsvLayout, options: CsvOptions, stop_after_line: int | None = None
) -> ParseError | None:
    where = undecodable_line(path, layout.text, stop_after_line)
    if where is None:
        return None
    if options.encoding:
        hint = f"the registry declares source.csv.encoding {options.encoding!r}; check it"
    else:
        hint = f"{layout.encoding} was detected from the first {SNIFF_BYTES // 1024} KiB; declare source.csv.encoding"
    return ParseError(f"{name}: {where} ({hint})")


@dataclass(frozen=True)
class _BytesToText:
    """A single-byte encoding that keeps ASCII as it is (Windows-1252, Latin-1, ISO-8859-15...),
    so that Arrow can parse the file's bytes as they are and each column becomes UTF-8 text
    afterwards (`text_table`), instead of Arrow transcoding the whole file through Python's codec
    before parsing it (`ReadOptions(encoding=...)`).

    The result is the same text, and a byte the encoding leaves undefined (0x81 in Windows-1252)
    is the same UnicodeDecodeError. The gain: the codec, which holds the GIL, sees only the columns
    that hold a byte above 0x7F (names and addresses; not codes, numbers nor dates), about a
    third of a typical French file; the others are ASCII, already UTF-8."""

    encoding: str
    # Per byte value, how many more bytes its character takes in UTF-8 (0 for ASCII).
    widening: np.ndarray

    @classmethod
    def of(cls, encoding: str) -> _BytesToText | None:
        if _codec(encoding) == "utf-8" or not _single_byte(encoding):
            return None
        characters = bytes(range(256)).decode(encoding, errors="replace")
        if characters[:128] != bytes(range(128)).decode("ascii"):
            return None  # EBCDIC and the like: the delimiter's byte is not ASCII's
        widening = np.array([len(character.encode("utf-8")) - 1 for character in characters], dtype=np.int64)
        return cls(encoding, widening)

    def text_array(self, array: pa.Array) -> pa.Array:
        """A large_binary array of this encoding's bytes, as large_string."""
        if array.offset:
            array = pa.concat_arrays([array])
        _, offset_buffer, data_buffer = array.buffers()
        offsets = np.frombuffer(offset_buffer, dtype=np.int64, count=len(array) + 1)
        data = np.frombuffer(data_buffer, dtype=np.uint8, count=int(offsets[-1])) if data_buffer is not None else np.empty(0, np.uint8)
        high = np.flatnonzero(data >= 0x80)
        if not len(high):
            return array.view(pa.large_string())
        text = data.tobytes().decode(self.encoding).encode("utf-8")
        widened = np.zeros(len(high) + 1, dtype=np.int64)
        np.cumsum(self.widening[data[high]], out=widened[1:])
        moved = offsets + widened[np.searchsorted(high, offsets)]
        return pa.LargeStringArray.from_buffers(
            len(array), pa.py_buffer(moved), pa.py_buffer(text), array.buffers()[0], array.null_count
        )

    def text_table(self, table: pa.Table) -> pa.Table:
        columns = [pa.chunked_array([self.text_array(chunk) for chunk in column.chunks], pa.large_string()) for column in table.columns]
        return pa.Table.from_arrays(columns, names=table.column_names)


@dataclass(frozen=True)
class _CsvReading:
    """How Arrow reads a delimited file: its layout, and the options of Arrow's readers (which read
    bytes, made text by `bytes_to_text`, when the encoding allows it)."""

    layout: CsvLayout
    header: list[str]
    read_options: pacsv.ReadOptions
    parse_options: pacsv.ParseOptions
    convert_options: pacsv.ConvertOptions
    bytes_to_text: _BytesToText | None = None

    def text(self, table: pa.Table) -> pa.Table:
        return self.bytes_to_text.text_table(table) if self.bytes_to_text is not None else table


def _csv_reading(path: Path, options: CsvOptions, name: str, block_size: int | None = None) -> _CsvReading:
    layout = detect_csv_layout(path, options)
    with path.open("rb") as handle:
        head = layout.text.decode(handle.read(SNIFF_BYTES), errors="replace")
    if not head.strip():
        raise ParseError(f"{name}: the file is empty")
    where = _rows_where("line", layout.header_row, layout.header_rows)
    if len(layout.header) < layout.header_rows:
        raise ParseError(f"{name}: the header ({where}) is past the records read in the first 64 KiB")
    if any("\ufffd" in cell for row in layout.header for cell in row) and (
        error := _encoding_error(path, name, layout, options, layout.skip_lines)
    ):
        raise error
    names = header_names([_stripped(list(row)) for row in layout.header], options.header_names)
    # A repeated name is kept, twice: cleaning drops an empty copy and blocks on one with values,
    # and the conformance report names it (duplicate-label).
    header = [column or "" for column in names]
    bytes_to_text = _BytesToText.of(layout.text.encoding)
    read_options = pacsv.ReadOptions(
        encoding="utf8" if bytes_to_text else layout.text.encoding, skip_rows=layout.skip_lines, column_names=header
    )
    if block_size is not None:
        read_options.block_size = block_size
    cell_type = pa.large_binary() if bytes_to_text else pa.large_string()
    return _CsvReading(
        layout=layout,
        header=header,
        read_options=read_options,
        parse_options=pacsv.ParseOptions(delimiter=layout.delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={column: cell_type for column in header},
            strings_can_be_null=True,
            null_values=[""],
            quoted_strings_can_be_null=True,
        ),
        bytes_to_text=bytes_to_text,
    )


def _csv_failure(exc: Exception, path: Path, name: str, reading: _CsvReading, options: CsvOptions) -> ParseError:
    """What Arrow's refusal of the file means, with its line: Arrow's messages have none, so the
    cause is found again, line by line."""
    error = _encoding_error(path, name, reading.layout, options)
    if error is not None:
        return error
    ragged = _find_ragged_rows(path, reading.layout, len(reading.header))
    if ragged:
        return ParseError(f"{name}: {ragged}")
    return ParseError(f"{name}: {_without_path(str(exc), path, name)}")


def read_csv(path: Path, options: CsvOptions, *, name: str | None = None) -> tuple[pd.DataFrame, CsvLayout]:
    """Every column as text; ragged rows and bad encodings are errors naming the line.

    `name` is the file's name in messages (default: the path's), as for every reader here.
    """
    name = name or path.name
    reading = _csv_reading(path, options, name)
    try:
        table = reading.text(pacsv.read_csv(
            path, read_options=reading.read_options, parse_options=reading.parse_options, convert_options=reading.convert_options
        ))
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _csv_failure(exc, path, name, reading, options) from None
    return table.to_pandas(), reading.layout


# Bytes of text Arrow's streaming reader parses at a time. Its read-ahead holds several blocks
# whatever their size (measured on the 10M-row DVF-like file: 32 MiB blocks, 1.2 GB held and
# 24 s; 4 MiB, 160 MB and 15 s), so blocks are small and gathered into batches of
# CSV_BATCH_ROWS rows for the cleaning, whose fixed cost per batch they amortise.
CSV_BLOCK_BYTES = 4 << 20
CSV_BATCH_ROWS = 1 << 17


@dataclass(frozen=True)
class TextBatches:
    """A file's text table as consecutive batches of rows, each a DataFrame of text whose index is
    its rows' 0-based positions in the file's data; there is always at least one (maybe empty)."""

    labels: list[str]
    batches: Iterator[pd.DataFrame]
    detected: dict[str, Any]


def _csv_batches(path: Path, options: CsvOptions, name: str, reading: _CsvReading) -> Iterator[pd.DataFrame]:
    offset = 0

    def frame_of(batches: list[pa.RecordBatch]) -> pd.DataFrame:
        try:
            frame = reading.text(pa.Table.from_batches(batches)).to_pandas()
        except UnicodeDecodeError as exc:
            raise _csv_failure(exc, path, name, reading, options) from None
        frame.index = pd.RangeIndex(offset, offset + len(frame))
        return frame

    gathered: list[pa.RecordBatch] = []
    gathered_rows = 0
    try:
        # Read once, from start to end: past the page cache (lib/uncached.py), as it was downloaded.
        with UncachedReader(path) as source, pacsv.open_csv(
            source, read_options=reading.read_options, parse_options=reading.parse_options, convert_options=reading.convert_options
        ) as reader:
            for batch in reader:
                if batch.num_rows:
                    gathered.append(batch)
                    gathered_rows += batch.num_rows
                if gathered_rows >= CSV_BATCH_ROWS:
                    frame, gathered, gathered_rows = frame_of(gathered), [], 0
                    offset += len(frame)
                    yield frame
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _csv_failure(exc, path, name, reading, options) from None
    if gathered:
        frame = frame_of(gathered)
        offset += len(frame)
        yield frame
    if offset == 0:
        yield pd.DataFrame({column: pd.Series([], dtype="str") for column in dict.fromkeys(reading.header)}, columns=reading.header)


def _find_ragged_rows(path: Path, layout: CsvLayout, width: int, limit: int = 5) -> str | None:
    """Describe the rows whose field count differs from the header's, with their line numbers.

    Only called after Arrow refused the file (Arrow's message has no line number).
    """
    bad: list[str] = []
    with layout.text.open(path, errors="replace") as handle:
        reader = csv.reader(handle, delimiter=layout.delimiter)
        for index, row in enumerate(reader):
            if index < layout.data_row or not row:
                continue
            if len(row) != width:
                bad.append(f"line {reader.line_num} has {len(row)} fields")
                if len(bad) == limit:
                    break
    if not bad:
        return None
    where = _rows_where("line", layout.header_row, layout.header_rows)
    return f"ragged rows: the header ({where}) has {width} fields but " + "; ".join(bad)


# --- JSON and GeoJSON ----------------------------------------------------------------------------


def _load_json(path: Path, name: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ParseError(f"{name}: not valid JSON: {exc}") from None


def _walk(document: Any, record_path: str | None, name: str) -> list[tuple[str | None, Any]]:
    """The records at `record_path`, each with the object key its last `*` segment matched.

    A plain segment is an object key; `*` is every member of an object or item of a list. The
    path must end on lists of records, or (after a `*`) on the records themselves.
    """
    # (key matched by the last `*`, node, whether the node was reached through `*`)
    nodes: list[tuple[str | None, Any, bool]] = [(None, document, False)]
    for key in record_path.split(".") if record_path else []:
        reached: list[tuple[str | None, Any, bool]] = []
        for matched, node, _ in nodes:
            if key == "*" and isinstance(node, dict):
                reached.extend((member, value, True) for member, value in node.items())
            elif key == "*" and isinstance(node, list):
                reached.extend((matched, value, True) for value in node)
            elif key != "*" and isinstance(node, dict) and key in node:
                reached.append((matched, node[key], False))
            else:
                found = f"a {type(node).__name__}" if key == "*" else f"no key {key!r} in a {type(node).__name__}"
                raise ParseError(f"{name}: record path {record_path!r}: key {key!r} not found ({found})")
        nodes = reached
    records: list[tuple[str | None, Any]] = []
    for matched, node, member in nodes:
        if isinstance(node, list):
            records.extend((matched, item) for item in node)
        elif isinstance(node, dict) and member:
            records.append((matched, node))
        else:
            where = f"record path {record_path!r}" if record_path else "the top level"
            at_key = f" (member {matched!r})" if member and matched is not None else ""
            raise ParseError(f"{name}: expected a list of records at {where}, found a {type(node).__name__}{at_key}")
    return records


def read_json(
    path: Path, record_path: str | None, key_column: str | None = None, *, name: str | None = None
) -> pd.DataFrame:
    """One row per record (object) at `record_path`; nested objects and lists as JSON text."""
    name = name or path.name
    records: list[dict[str, Any]] = []
    for index, (key, record) in enumerate(_walk(_load_json(path, name), record_path, name)):
        if not isinstance(record, dict):
            raise ParseError(f"{name}: record {index} is a {type(record).__name__}, expected an object")
        if key_column is not None:
            if key_column in record:
                raise ParseError(f"{name}: record {index} already has a field {key_column!r} (the key_column)")
            record = {key_column: key, **record}
        records.append(record)
    return _records_frame(records)


def read_geojson(path: Path, *, name: str | None = None) -> pd.DataFrame:
    """One row per feature: its properties as columns, its geometry as compact GeoJSON text.

    The geometry's numbers are not rounded, so the FeatureCollection can be rebuilt (and
    published as GeoJSON) from the table. A feature's own `id` goes to an `id` column.
    """
    name = name or path.name
    document = _load_json(path, name)
    kind = document.get("type") if isinstance(document, dict) else type(document).__name__
    if kind == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list):
            raise ParseError(f"{name}: the FeatureCollection's 'features' is not a list")
    elif kind == "Feature":
        features = [document]
    else:
        raise ParseError(f"{name}: expected a GeoJSON FeatureCollection or Feature, found {kind!r}")
    with_ids = any(isinstance(feature, dict) and "id" in feature for feature in features)
    reserved = {GEOMETRY_COLUMN, "id"} if with_ids else {GEOMETRY_COLUMN}
    records: list[dict[str, Any]] = []
    for index, feature in enumerate(features):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise ParseError(f"{name}: feature {index} is not a GeoJSON Feature")
        properties = feature.get("properties") or {}
        if not isinstance(properties, dict):
            kind = type(properties).__name__
            raise ParseError(f"{name}: feature {index}: 'properties' is a {kind}, expected an object")
        clashes = sorted(reserved & properties.keys())
        if clashes:
            raise ParseError(
                f"{name}: feature {index}: properties {clashes} clash with the feature's own id/geometry columns"
            )
        record = {"id": feature.get("id")} if with_ids else {}
        records.append({**record, **properties, GEOMETRY_COLUMN: feature.get("geometry")})
    frame = _records_frame(records)
    if records:
        frame = frame[[column for column in frame.columns if column != GEOMETRY_COLUMN] + [GEOMETRY_COLUMN]]
    return frame


# --- XML -----------------------------------------------------------------------------------------


class _DoctypeRefused(Exception):
    pass


class _NoDoctypeBuilder(ET.TreeBuilder):
    """Refuses DOCTYPE declarations: without one there are no entity declarations to expand
    (billion laughs) and no external entities to fetch, which is what defusedxml guards against."""

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise _DoctypeRefused(name)


def _local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def _parse_xml(path: Path, name: str) -> ET.Element:
    content = path.read_bytes()
    parser = ET.XMLParser(target=_NoDoctypeBuilder())
    try:
        parser.feed(content)
        root = parser.close()
    except _DoctypeRefused:
        line = content[: max(content.find(b"<!DOCTYPE"), 0)].count(b"\n") + 1
        raise ParseError(
            f"{name}: line {line}: DOCTYPE declarations are refused (entity expansion and external "
            "entities are a security risk); ask the producer for plain XML"
        ) from None
    except ET.ParseError as exc:
        raise ParseError(f"{name}: not well-formed XML: {exc}") from None
    # Namespaces are dropped: records and columns are addressed by local names.
    for element in root.iter():
        element.tag = _local_name(element.tag)
    return root


def _element_value(element: ET.Element) -> Any:
    """Text for a leaf element; otherwise a mapping of its children (repeated ones as a list),
    attributes as `@name` and mixed text as `#text` (the xmltodict convention)."""
    children = list(element)
    if not children and not element.attrib:
        return element.text
    value: dict[str, Any] = {f"@{_local_name(name)}": text for name, text in element.attrib.items()}
    tags = [child.tag for child in children]
    for child in children:
        if tags.count(child.tag) > 1:
            value.setdefault(child.tag, []).append(_element_value(child))
        else:
            value[child.tag] = _element_value(child)
    text = (element.text or "").strip()
    if text:
        value["#text"] = text
    return value


def _xml_records(root: ET.Element, record_path: str | None, name: str) -> list[ET.Element]:
    if record_path is None:
        elements = list(root)
    elif "/" in record_path.strip("/"):
        first, _, below = record_path.strip("/").partition("/")
        if first not in (root.tag, "*"):
            raise ParseError(f"{name}: record path {record_path!r}: the root element is <{root.tag}>, not <{first}>")
        try:
            elements = root.findall(below)
        except SyntaxError as exc:
            raise ParseError(f"{name}: record path {record_path!r} is not a valid element path: {exc}") from None
    else:
        elements = list(root.iter(record_path.strip("/")))
    if not elements:
        raise ParseError(f"{name}: no element matches record path {record_path!r} (the root element is <{root.tag}>)")
    return elements


def read_xml(path: Path, record_path: str | None, *, name: str | None = None) -> pd.DataFrame:
    """One row per record element; its attributes and child elements as columns, nested ones as JSON text."""
    name = name or path.name
    records = []
    for element in _xml_records(_parse_xml(path, name), record_path, name):
        value = _element_value(element)
        records.append(value if isinstance(value, dict) else {element.tag: value})
    return _records_frame(records)


# --- Spreadsheets --------------------------------------------------------------------------------


def detect_sheet_header_row(rows: list[list[str | None]]) -> int:
    """Index of the first row as full as the fullest of the first rows (skips title rows).

    Unlike a delimited file, where every line has the same number of fields, a sheet's width is
    how many cells are filled: title rows fill one cell, sparse data rows fewer than the header.
    """
    filled = [sum(cell is not None for cell in row) for row in rows[:HEADER_SCAN_ROWS]]
    if not filled or max(filled) == 0:
        return 0
    return filled.index(max(filled))


def _sheet_name(sheets: list[str], wanted: str | int, name: str) -> str:
    if isinstance(wanted, int):
        if wanted >= len(sheets):
            raise ParseError(
                f"{name}: sheet {wanted} (0-based) does not exist; the workbook has {len(sheets)} sheet(s): {sheets}"
            )
        return sheets[wanted]
    if wanted not in sheets:
        raise ParseError(f"{name}: sheet {wanted!r} not found; the workbook's sheets are {sheets}")
    return wanted


@contextmanager
def _reading(path: Path, name: str, what: str) -> Iterator[None]:
    """Turns a reader's failure on the file into a ParseError saying `what` could not be read.

    calamine raises its own errors for a file that is not a workbook (such as an HTML error page),
    and a Rust panic on some corrupt files, which pyo3 raises as a BaseException (`PanicException`)
    that `except Exception` misses. The library's message is kept, without the local path.
    """
    try:
        yield
    except BaseException as exc:
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise
        detail = _without_path(str(exc), path, name)
        raise ParseError(f"{name}: {what} ({type(exc).__name__}: {detail})") from None


@dataclass(frozen=True)
class SheetGrid:
    """A sheet's cells as text (None when empty), and where its header is."""

    sheet: str
    rows: list[list[str | None]]
    header_row: int
    header_rows: int

    @property
    def data_row(self) -> int:
        return self.header_row + self.header_rows


def sheet_grid(path: Path, options: SpreadsheetOptions, file_format: str, *, name: str | None = None) -> SheetGrid:
    """Every row of one sheet as text, with its header found (title rows and a row of codes skipped)."""
    name = name or path.name
    with _reading(path, name, f"not a readable {file_format} workbook"):
        book = pd.ExcelFile(path, engine=SPREADSHEET_ENGINES[file_format])
    with book:
        sheet = _sheet_name(book.sheet_names, options.sheet, name)
        with _reading(path, name, f"sheet {sheet!r} cannot be read"):
            # dtype=object keeps the engine's Python values; na_filter=False keeps "NA", "N/A" as text.
            grid = pd.read_excel(book, sheet_name=sheet, header=None, dtype=object, na_filter=False)
    rows = [[text if text != "" else None for text in map(cell_text, row)] for row in grid.itertuples(index=False)]
    header_row = options.header_row if options.header_row is not None else detect_sheet_header_row(rows)
    if rows and header_row >= len(rows):
        raise ParseError(f"{name}: sheet {sheet!r}: header_row {header_row} is past its last row ({len(rows)} rows)")
    header_rows = options.header_rows or detect_header_rows(rows, header_row)
    if rows and header_row + header_rows > len(rows):
        where = _rows_where("row", header_row, header_rows)
        raise ParseError(f"{name}: sheet {sheet!r}: the header ({where}) goes past its last row ({len(rows)} rows)")
    return SheetGrid(sheet, rows, header_row, header_rows)


def read_spreadsheet(
    path: Path, options: SpreadsheetOptions, file_format: str, *, name: str | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One sheet as a text table: codes stay as written, integers stored as numbers lose no `.0`.

    Returns the table and what was detected: the sheet's name, `header_row` (0-based) and
    `header_rows` (2 when a row of codes under the labels was found or declared). Empty rows
    and unnamed empty columns beside the table are left out; a repeated header name is kept
    (cleaning decides what to do with it).
    """
    grid = sheet_grid(path, options, file_format, name=name)
    rows = grid.rows
    names = header_names(rows[grid.header_row : grid.data_row], options.header_names) if rows else []
    data = [row for row in rows[grid.data_row :] if any(cell is not None for cell in row)]
    column_names: list[str] = []
    columns: list[list[str | None]] = []
    for index, column in enumerate(names):
        values = [row[index] for row in data]
        if not column:
            if all(value is None for value in values):
                continue  # an empty column beside the table
            column = f"column_{get_column_letter(index + 1)}"
        column_names.append(column)
        columns.append(values)
    frame = pd.DataFrame(dict(enumerate(columns)), dtype="str") if columns else pd.DataFrame()
    frame.columns = column_names
    detected = {"sheet": grid.sheet, "header_row": grid.header_row, "header_rows": grid.header_rows}
    return frame, detected


# --- Dispatch ------------------------------------------------------------------------------------


def source_file_name(source: SourceSpec, path: Path) -> str:
    """How messages name the file: as the administration does (the URL's last segment), since
    the raw store keeps it under its sha256; the stored name follows when they differ."""
    served = unquote(PurePosixPath(urlsplit(source.url).path).name)
    if not served or served == path.name:
        return path.name
    return f"{served} (raw file {path.name[:12]})"


def _csv_detected(layout: CsvLayout) -> dict[str, Any]:
    return {
        "encoding": layout.encoding,
        "bom_mismatch": layout.text.bom_mismatch,
        "delimiter": layout.delimiter,
        "header_row": layout.header_row,
        "header_rows": layout.header_rows,
    }


def read_source(path: Path, source: SourceSpec) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The file as a text table, plus what was detected about it (for the asset's metadata).

    Delimited text: `encoding` (the body's; `utf-8-sig` for UTF-8 behind a BOM), `bom_mismatch`
    (True when a UTF-8 BOM stands before a body in another encoding, such as Windows-1252: read
    correctly, but a fault for the producer to fix), `delimiter`, `header_row` (0-based line where
    the header starts) and `header_rows` (how many lines it spans: 2 for labels over codes).
    Spreadsheets: `sheet`, `header_row` and `header_rows` (rows of the sheet).
    """
    name = source_file_name(source, path)
    if source.format == "csv":
        frame, layout = read_csv(path, source.csv, name=name)
        return frame, _csv_detected(layout)
    if source.format == "json":
        options: JsonOptions = source.json_options
        return read_json(path, options.record_path, options.key_column, name=name), {"record_path": options.record_path}
    if source.format == "geojson":
        return read_geojson(path, name=name), {"geometry_column": GEOMETRY_COLUMN}
    if source.format == "xml":
        return read_xml(path, source.xml.record_path, name=name), {"record_path": source.xml.record_path}
    if source.format in SPREADSHEET_ENGINES:
        return read_spreadsheet(path, source.spreadsheet, source.format, name=name)
    raise ParseError(f"{name}: unsupported format {source.format!r}")


def read_source_batches(path: Path, source: SourceSpec, block_size: int | None = None) -> TextBatches:
    """The file as a text table in batches of rows: a delimited file is streamed (memory does not
    grow with it); other formats are parsed whole and come as one batch. Same tables, same
    `detected` and same errors as `read_source`."""
    name = source_file_name(source, path)
    if source.format != "csv":
        frame, detected = read_source(path, source)
        return TextBatches([str(label) for label in frame.columns], iter([frame]), detected)
    reading = _csv_reading(path, source.csv, name, block_size or CSV_BLOCK_BYTES)
    return TextBatches(list(reading.header), _csv_batches(path, source.csv, name, reading), _csv_detected(reading.layout))


def decimal_separator(source: SourceSpec) -> str:
    """JSON, XML and spreadsheet numbers use a point; delimited files say theirs in the registry."""
    return source.csv.decimal if source.format == "csv" else "."
