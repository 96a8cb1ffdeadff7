"""Reading an administration's file into a table of text, whatever its format, encoding and layout.

Parsing only splits the bytes into rows and columns: every cell stays text, so nothing is
guessed here (codes keep their leading zeros, `26 956,00` is not yet a number). Typing is the
cleaning step's job, driven by the dataset's declared columns. Nested values (JSON objects and
lists, XML sub-elements, GeoJSON geometries) become compact JSON text, which can be published
as is or parsed again by a reuser.

Formats: delimited text (`csv`), `json`, `geojson`, `xml`, and `xlsx` / `ods` workbooks. Every
error is a `ParseError` naming the file and where in it: the line, sheet and row, record or
field.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from openpyxl.utils import get_column_letter

from dinum_pipelines.lib.registry import CsvOptions, JsonOptions, SourceSpec, SpreadsheetOptions

SNIFF_BYTES = 64 * 1024
DELIMITER_CANDIDATES = ";,|\t"
# Rows of a sheet looked at to find its header below title rows.
HEADER_SCAN_ROWS = 50
SPREADSHEET_ENGINES = {"xlsx": "openpyxl", "ods": "odf"}
GEOMETRY_COLUMN = "geometry"
# Integral floats below this print without ".0" (exactly representable integers).
_EXACT_INTEGER_LIMIT = 2**53


class ParseError(ValueError):
    """The file cannot be read as declared; the message names the file and the line or field."""


@dataclass(frozen=True)
class CsvLayout:
    encoding: str
    delimiter: str
    header_row: int


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


def _check_header(names: list[str], file: str, where: str) -> None:
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ParseError(f"{file}: duplicate column names in the header ({where}): {duplicates}")


# --- Delimited text ------------------------------------------------------------------------------


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


def _undecodable_line(path: Path, encoding: str, stop_after_line: int | None = None) -> str | None:
    """Where the file first fails to decode in `encoding` ("line 12: byte 0xe9"), or None.

    Streams the file; lines are counted on `\\n`, which ASCII-compatible encodings never use
    inside a character.
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(1 << 20)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                line += exc.object[: exc.start].count(b"\n")
                bad = " ".join(f"0x{byte:02x}" for byte in exc.object[exc.start : exc.end])
                return f"line {line}: byte(s) {bad} cannot be decoded as {encoding}"
            line += text.count("\n")
            if not chunk or (stop_after_line is not None and line > stop_after_line):
                return None


def _encoding_error(
    path: Path, name: str, layout: CsvLayout, options: CsvOptions, stop_after_line: int | None = None
) -> ParseError | None:
    where = _undecodable_line(path, layout.encoding, stop_after_line)
    if where is None:
        return None
    if options.encoding:
        hint = f"the registry declares source.csv.encoding {options.encoding!r}; check it"
    else:
        hint = f"{layout.encoding} was detected from the first {SNIFF_BYTES // 1024} KiB; declare source.csv.encoding"
    return ParseError(f"{name}: {where} ({hint})")


def read_csv(path: Path, options: CsvOptions, *, name: str | None = None) -> tuple[pd.DataFrame, CsvLayout]:
    """Every column as text; ragged rows and bad encodings are errors naming the line.

    `name` is the file's name in messages (default: the path's), as for every reader here.
    """
    name = name or path.name
    layout = detect_csv_layout(path, options)
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES).decode(layout.encoding, errors="replace")
    header_line = _first_lines(head, layout.header_row + 1)[layout.header_row]
    if "\ufffd" in header_line and (error := _encoding_error(path, name, layout, options, layout.header_row + 1)):
        raise error
    header = [name.strip() for name in next(csv.reader([header_line], delimiter=layout.delimiter))]
    _check_header(header, name, f"line {layout.header_row + 1}")
    encoding = "utf-8" if layout.encoding == "utf-8-sig" else layout.encoding
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                encoding=encoding, skip_rows=layout.header_row + 1, column_names=header
            ),
            parse_options=pacsv.ParseOptions(delimiter=layout.delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.large_string() for name in header},
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        # Arrow's messages have no line number: find the cause again, line by line.
        error = _encoding_error(path, name, layout, options)
        if error is not None:
            raise error from None
        ragged = _find_ragged_rows(path, layout, len(header))
        if ragged:
            raise ParseError(f"{name}: {ragged}") from None
        raise ParseError(f"{name}: {exc}") from None
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


def read_spreadsheet(
    path: Path, options: SpreadsheetOptions, file_format: str, *, name: str | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One sheet as a text table: codes stay as written, integers stored as numbers lose no `.0`."""
    name = name or path.name
    engine = SPREADSHEET_ENGINES[file_format]
    try:
        book = pd.ExcelFile(path, engine=engine)
    # openpyxl and odfpy each raise their own errors (BadZipFile, KeyError, InvalidFileException...)
    # for a file that is not a workbook, such as an HTML error page.
    except Exception as exc:  # noqa: BLE001
        raise ParseError(f"{name}: not a readable {file_format} workbook ({type(exc).__name__}: {exc})") from None
    with book:
        sheet = _sheet_name(book.sheet_names, options.sheet, name)
        # dtype=object keeps each engine's Python values; na_filter=False keeps "NA", "N/A" as text.
        grid = pd.read_excel(book, sheet_name=sheet, header=None, dtype=object, na_filter=False)
    rows = [[text if text != "" else None for text in map(cell_text, row)] for row in grid.itertuples(index=False)]
    header_row = options.header_row if options.header_row is not None else detect_sheet_header_row(rows)
    if rows and header_row >= len(rows):
        raise ParseError(f"{name}: sheet {sheet!r}: header_row {header_row} is past its last row ({len(rows)} rows)")
    header = [name.strip() if name is not None else None for name in rows[header_row]] if rows else []
    data = [row for row in rows[header_row + 1 :] if any(cell is not None for cell in row)]
    columns: dict[str, list[str | None]] = {}
    column_names: list[str] = []
    for index, column in enumerate(header):
        values = [row[index] for row in data]
        if not column:
            if all(value is None for value in values):
                continue  # an empty column beside the table
            column = f"column_{get_column_letter(index + 1)}"
        column_names.append(column)
        columns[column] = values
    _check_header(column_names, name, f"sheet {sheet!r}, row {header_row + 1}")
    return pd.DataFrame(columns, dtype="str"), {"sheet": sheet, "header_row": header_row}


# --- Dispatch ------------------------------------------------------------------------------------


def source_file_name(source: SourceSpec, path: Path) -> str:
    """How messages name the file: as the administration does (the URL's last segment), since
    the raw store keeps it under its sha256; the stored name follows when they differ."""
    served = unquote(PurePosixPath(urlsplit(source.url).path).name)
    if not served or served == path.name:
        return path.name
    return f"{served} (raw file {path.name[:12]})"


def read_source(path: Path, source: SourceSpec) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The file as a text table, plus what was detected about it (for the asset's metadata)."""
    name = source_file_name(source, path)
    if source.format == "csv":
        frame, layout = read_csv(path, source.csv, name=name)
        return frame, {"encoding": layout.encoding, "delimiter": layout.delimiter, "header_row": layout.header_row}
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


def decimal_separator(source: SourceSpec) -> str:
    """JSON, XML and spreadsheet numbers use a point; delimited files say theirs in the registry."""
    return source.csv.decimal if source.format == "csv" else "."
