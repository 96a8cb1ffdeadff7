"""Reading an administration's file into a table of text, whatever its encoding and layout.

Parsing only splits the bytes into rows and columns: every cell stays text, so nothing is
guessed here (codes keep their leading zeros, `26 956,00` is not yet a number). Typing is the
cleaning step's job, driven by the dataset's declared columns.
"""

from __future__ import annotations

import csv

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from dinum_pipelines.lib.registry import CsvOptions, SourceSpec

SNIFF_BYTES = 64 * 1024
DELIMITER_CANDIDATES = ";,|\t"


class ParseError(ValueError):
    """The file cannot be read as declared; the message names the file and the line or field."""


@dataclass(frozen=True)
class CsvLayout:
    encoding: str
    delimiter: str
    header_row: int


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM) when the bytes decode as such, otherwise Windows-1252.

    Administrations' non-UTF-8 files are nearly always Windows-1252 (Excel's "CSV" on French
    Windows); ISO-8859-1 lacks `œ` and `€`, and statistical guessers mislabel such files as
    cp1250 or cp775. cp1252 leaves five bytes undefined: a file using them is Latin-1.
    """
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
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


def _first_lines(text: str, count: int) -> list[str]:
    return text.splitlines()[:count]


def detect_delimiter(lines: list[str]) -> str:
    """The candidate that splits the most lines into the same number (>1) of fields."""
    best, best_score = ",", (0, 0)
    for candidate in DELIMITER_CANDIDATES:
        counts = [len(next(csv.reader([line], delimiter=candidate))) for line in lines if line.strip()]
        if not counts:
            continue
        mode = max(set(counts), key=counts.count)
        score = (counts.count(mode), mode) if mode > 1 else (0, 0)
        if score > best_score:
            best, best_score = candidate, score
    return best


def detect_header_row(lines: list[str], delimiter: str) -> int:
    """Index of the first line with as many fields as most lines (skips title rows above a table)."""
    widths = [len(next(csv.reader([line], delimiter=delimiter))) if line.strip() else 0 for line in lines]
    if not widths:
        return 0
    table_width = max(set(widths), key=widths.count)
    return next(i for i, width in enumerate(widths) if width == table_width)


def detect_csv_layout(path: Path, options: CsvOptions) -> CsvLayout:
    with path.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    encoding = options.encoding or detect_encoding(sample)
    text = sample.decode(encoding, errors="replace")
    lines = _first_lines(text, 50)
    if len(sample) == SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line of a truncated sample is partial
    delimiter = options.delimiter or detect_delimiter(lines)
    header_row = options.header_row if options.header_row is not None else detect_header_row(lines, delimiter)
    return CsvLayout(encoding=encoding, delimiter=delimiter, header_row=header_row)


def read_csv(path: Path, options: CsvOptions) -> tuple[pd.DataFrame, CsvLayout]:
    """Every column as text; ragged rows and bad encodings are errors naming the line."""
    layout = detect_csv_layout(path, options)
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES).decode(layout.encoding, errors="replace")
    header_line = _first_lines(head, layout.header_row + 1)[layout.header_row]
    header = [name.strip() for name in next(csv.reader([header_line], delimiter=layout.delimiter))]
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise ParseError(f"{path.name}: duplicate column names in the header (line {layout.header_row + 1}): {duplicates}")
    encoding = "utf-8" if layout.encoding == "utf-8-sig" else layout.encoding
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                encoding=encoding, skip_rows=layout.header_row + 1, column_names=header, block_size=16 << 20
            ),
            parse_options=pacsv.ParseOptions(delimiter=layout.delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        ragged = _find_ragged_rows(path, layout, len(header))
        if ragged:
            raise ParseError(f"{path.name}: {ragged}") from None
        raise ParseError(f"{path.name}: {exc}") from None
    return table.to_pandas(), layout


def _find_ragged_rows(path: Path, layout: CsvLayout, width: int, limit: int = 5) -> str | None:
    """Describe the rows whose field count differs from the header's, with their line numbers.

    Only called after Arrow refused the file (Arrow's message has no line number).
    """
    bad: list[str] = []
    with path.open(encoding=layout.encoding, errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=layout.delimiter)
        for index, row in enumerate(reader):
            if index <= layout.header_row or not row:
                continue
            if len(row) != width:
                bad.append(f"line {reader.line_num} has {len(row)} fields")
                if len(bad) == limit:
                    break
    if not bad:
        return None
    return f"ragged rows: the header (line {layout.header_row + 1}) has {width} fields but " + "; ".join(bad)


def _walk(document: Any, record_path: str | None, path: Path) -> list[Any]:
    node = document
    for key in record_path.split(".") if record_path else []:
        if not isinstance(node, dict) or key not in node:
            raise ParseError(f"{path.name}: record path {record_path!r}: key {key!r} not found")
        node = node[key]
    if not isinstance(node, list):
        where = f"record path {record_path!r}" if record_path else "the top level"
        raise ParseError(f"{path.name}: expected a list of records at {where}, found {type(node).__name__}")
    return node


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def read_json(path: Path, record_path: str | None) -> pd.DataFrame:
    try:
        document = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ParseError(f"{path.name}: not valid JSON: {exc}") from None
    records = _walk(document, record_path, path)
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ParseError(f"{path.name}: record {index} is a {type(record).__name__}, expected an object")
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    data = {name: [_as_text(record.get(name)) for record in records] for name in columns}
    return pd.DataFrame(data, dtype="str")


def read_source(path: Path, source: SourceSpec) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The file as a text table, plus what was detected about it (for the asset's metadata)."""
    if source.format == "csv":
        frame, layout = read_csv(path, source.csv)
        return frame, {"encoding": layout.encoding, "delimiter": layout.delimiter, "header_row": layout.header_row}
    if source.format == "json":
        return read_json(path, source.json_options.record_path), {"record_path": source.json_options.record_path}
    raise ParseError(f"{path.name}: unsupported format {source.format!r}")


def decimal_separator(source: SourceSpec) -> str:
    """JSON numbers always use a point; delimited files say theirs in the registry."""
    return source.csv.decimal if source.format == "csv" else "."



