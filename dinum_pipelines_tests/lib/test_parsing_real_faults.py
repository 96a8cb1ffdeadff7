"""What real files throw at the readers (issue 11), each fault reproduced in a file made here.

A UTF-8 BOM before Windows-1252 text, workbooks openpyxl refuses, legacy `.xls`, a row of codes
under the header's labels, and library messages that would show the raw store's local path.
Files are read through `read_source`, as the clean asset reads them, from a path named like the
raw store's (a hash) with the administration's URL, so messages must name the served file.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
from datetime import date, datetime, time, timedelta
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow.csv as pacsv
import pytest
from pydantic import ValidationError

from dinum_pipelines.lib.clean import parsing
from dinum_pipelines.lib.clean.cleaning import clean_table
from dinum_pipelines.lib.clean.parsing import (
    ParseError,
    TextEncoding,
    detect_encoding,
    detect_header_rows,
    detect_text_encoding,
    read_csv,
    read_source,
    read_spreadsheet,
    sniff_text_encoding,
)
from dinum_pipelines.lib.declare.registry import (
    CsvOptions,
    DatasetSpec,
    SourceSpec,
    SpreadsheetOptions,
)
from dinum_pipelines_tests.lib.test_parsing import _workbook

BOM = b"\xef\xbb\xbf"
REAL_WORKBOOKS = [
    "csvapi__tourisme-handicap-etablissements-21022020.xlsx",
    "conformance/schema-arbre__exemple-valide.xlsx",
    "conformance/schema-inclusion-numerique__exemple-valide.xlsx",
]


def _stored(tmp_path: Path, content: bytes) -> Path:
    """The file as the raw store keeps it: under its sha256, without the served name."""
    folder = tmp_path / "raw"
    folder.mkdir(exist_ok=True)
    path = folder / hashlib.sha256(content).hexdigest()
    path.write_bytes(content)
    return path


def _source(served: str, file_format: str, **options) -> SourceSpec:
    return SourceSpec.model_validate({"url": f"http://127.0.0.1:9/exports/{served}", "format": file_format, **options})


def _read_error(tmp_path: Path, content: bytes, source: SourceSpec) -> str:
    """read_source's ParseError message, checked to name the served file and no local path."""
    with pytest.raises(ParseError) as error:
        read_source(_stored(tmp_path, content), source)
    message = str(error.value)
    served = source.url.rsplit("/", 1)[1]
    assert message.startswith(f"{served} (raw file "), message
    assert str(tmp_path) not in message and "/tmp" not in message, message
    return message


def _patched(path: Path, member: str, old: bytes, new: bytes) -> bytes:
    """The bytes of the zip (xlsx, ods) at `path` with one replacement inside `member`."""
    out = path.with_suffix(".patched")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == member:
                assert old in data, f"{old!r} not in {member}"
                data = data.replace(old, new)
            target.writestr(item, data)
    return out.read_bytes()


_xlsx = _workbook  # an xlsx written cell by cell with openpyxl (test_parsing's helper)


def _columns(frame: pd.DataFrame) -> dict[str, list[str | None]]:
    """The text table as lists, missing cells as None."""
    return {column: [None if pd.isna(value) else value for value in frame[column]] for column in frame.columns}


# --- A UTF-8 BOM before a Windows-1252 body ----------------------------------------------------

CP1252_TEXT = "code;libellé;montant\n01053;Œuvre d’art;12 000 €\n2A004;Ajaccio;7,5\n"
CP1252_ROWS = [
    {"code": "01053", "libellé": "Œuvre d’art", "montant": "12 000 €"},
    {"code": "2A004", "libellé": "Ajaccio", "montant": "7,5"},
]


def test_bom_before_cp1252_body_is_read_as_cp1252_and_reported(tmp_path):
    """Excel writes EF BB BF, then Windows-1252: detected, the BOM kept out of the first name."""
    content = BOM + CP1252_TEXT.encode("cp1252")
    frame, detected = read_source(_stored(tmp_path, content), _source("aides.csv", "csv"))
    assert list(frame.columns) == ["code", "libellé", "montant"]
    assert frame.to_dict("records") == CP1252_ROWS
    assert detected["encoding"] == "cp1252" and detected["bom_mismatch"] is True
    # Cleaning finds the declared first column (it was "ï»¿code" before: "column not found").
    spec = DatasetSpec.model_validate(
        {
            "slug": "aides",
            "title": "Aides",
            "description": "x" * 120,
            "organization": {"slug": "org", "name": "Org"},
            "source": {"url": "http://127.0.0.1:9/exports/aides.csv", "format": "csv"},
            "license": "lov2",
            "frequency": "monthly",
            "columns": [{"name": "code"}, {"name": "libelle", "source": "libellé"}],
        }
    )
    clean, _ = clean_table(frame, spec, ",")
    assert clean["code"].tolist() == ["01053", "2A004"]


@pytest.mark.parametrize("declared", ["cp1252", "windows-1252", "latin-1", "iso-8859-15"])
def test_declared_single_byte_encoding_strips_the_bom(tmp_path, declared):
    content = BOM + "code;nom\n01053;Ambérieu\n".encode("cp1252")
    frame, layout = read_csv(_stored(tmp_path, content), CsvOptions(encoding=declared), name="communes.csv")
    assert list(frame.columns) == ["code", "nom"] and frame["nom"].tolist() == ["Ambérieu"]
    assert layout.encoding == declared and layout.text == TextEncoding(declared, 3, bom_mismatch=True)


@pytest.mark.parametrize("declared", ["utf-8", "UTF8", "utf-8-sig", None])
def test_declared_utf8_on_a_bom_file_keeps_the_bom_out_of_the_first_name(tmp_path, declared):
    content = BOM + "code;nom\n01053;Ambérieu\n".encode("utf-8")
    frame, layout = read_csv(_stored(tmp_path, content), CsvOptions(encoding=declared), name="communes.csv")
    assert list(frame.columns) == ["code", "nom"] and frame["nom"].tolist() == ["Ambérieu"]
    assert layout.encoding == "utf-8-sig" and not layout.text.bom_mismatch


def test_real_cp1252_file_behind_a_bom_reads_as_without_it(real_file, tmp_path):
    """The INSEE departments list (real Windows-1252 bytes), re-saved by a tool that adds a BOM."""
    original = real_file("ban-data__depts2014.txt")
    expected, _ = read_csv(original, CsvOptions())
    frame, detected = read_source(_stored(tmp_path, BOM + original.read_bytes()), _source("depts2014.txt", "csv"))
    pd.testing.assert_frame_equal(frame, expected)
    assert detected["encoding"] == "cp1252" and detected["bom_mismatch"] is True
    assert list(frame.columns)[0] == "REGION"


@pytest.mark.parametrize(
    ("name", "first_column"),
    [("validateur-bal__sample.csv", "cle_interop"), ("conformance/schema-arbre__exemple-valide.csv", "id")],
)
def test_real_utf8_files_with_a_bom_are_not_a_mismatch(real_file, tmp_path, name, first_column):
    content = real_file(name).read_bytes()
    assert content.startswith(BOM)
    frame, detected = read_source(_stored(tmp_path, content), _source(name.rpartition("/")[2], "csv"))
    assert list(frame.columns)[0] == first_column
    assert (detected["encoding"], detected["bom_mismatch"]) == ("utf-8-sig", False)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (BOM + "Ambérieu".encode("cp1252"), TextEncoding("cp1252", 3, True)),
        # 0x81 is undefined in cp1252: Latin-1.
        (BOM + b"Amb\x81rieu \xe9", TextEncoding("latin-1", 3, True)),
        (BOM + "é".encode("utf-8"), TextEncoding("utf-8", 3, False)),
        ("é".encode("utf-8"), TextEncoding("utf-8", 0, False)),
        ("Ambérieu".encode("cp1252"), TextEncoding("cp1252", 0, False)),
        # A UTF-8 character cut by the end of the sample is still UTF-8.
        ("Ambérieu".encode("utf-8")[:4], TextEncoding("utf-8", 0, False)),
        (b"", TextEncoding("utf-8", 0, False)),
    ],
)
def test_detect_text_encoding(tmp_path, content, expected):
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    assert detect_text_encoding(path) == expected
    assert detect_encoding(content) == expected.label


def test_declared_encodings_and_the_bom():
    sample = BOM + b"code\n"
    assert sniff_text_encoding(sample, "utf-16") == TextEncoding("utf-16")  # a UTF-8 BOM means nothing there
    assert sniff_text_encoding(b"code\n", "cp1252") == TextEncoding("cp1252")
    assert sniff_text_encoding(sample, "cp1252").label == "cp1252"
    assert sniff_text_encoding(sample, "utf-8").label == "utf-8-sig"


def test_text_encoding_tells_another_reader_how_to_decode(tmp_path):
    """What the conformance reader does with it: pyarrow from after the BOM, or the csv module."""
    path = tmp_path / "aides.csv"
    path.write_bytes(BOM + CP1252_TEXT.encode("cp1252"))
    text = detect_text_encoding(path)
    with path.open("rb") as handle:
        handle.seek(text.bom_bytes)
        table = pacsv.read_csv(
            handle,
            read_options=pacsv.ReadOptions(encoding=text.encoding),
            parse_options=pacsv.ParseOptions(delimiter=";"),
        )
    assert table.column_names == ["code", "libellé", "montant"]
    with text.open(path) as handle:
        assert handle.readline() == "code;libellé;montant\n"


def test_faults_in_a_bom_file_are_located_on_the_right_line(tmp_path):
    ragged = BOM + "code;nom\n01053;Ambérieu\n01004;Bourg;en trop\n".encode("cp1252")
    message = _read_error(tmp_path, ragged, _source("communes.csv", "csv"))
    assert message.endswith("ragged rows: the header (line 1) has 2 fields but line 3 has 3 fields")
    undecodable = BOM + b"code;nom\n01053;Amb\x81rieu\n"
    message = _read_error(tmp_path, undecodable, _source("communes.csv", "csv", csv={"encoding": "cp1252"}))
    assert "line 2: byte(s) 0x81 cannot be decoded as cp1252" in message


def test_unknown_declared_encoding_is_refused_by_the_registry():
    with pytest.raises(ValidationError, match="unknown encoding 'cp-1252'"):
        CsvOptions(encoding="cp-1252")


# --- Spreadsheets: calamine, and the same cells as openpyxl -------------------------------------


def _with_engine(monkeypatch, file_format: str, engine: str) -> None:
    monkeypatch.setitem(parsing.SPREADSHEET_ENGINES, file_format, engine)


@pytest.mark.parametrize("name", REAL_WORKBOOKS)
def test_real_workbooks_read_by_calamine_as_by_openpyxl(real_file, monkeypatch, name):
    path = real_file(name)
    frame, detected = read_spreadsheet(path, SpreadsheetOptions(), "xlsx")
    assert parsing.SPREADSHEET_ENGINES["xlsx"] == "calamine"
    _with_engine(monkeypatch, "xlsx", "openpyxl")
    expected, expected_detected = read_spreadsheet(path, SpreadsheetOptions(), "xlsx")
    pd.testing.assert_frame_equal(frame, expected)
    assert detected == expected_detected


def test_real_workbook_cells(real_file):
    arbres = real_file("conformance/schema-arbre__exemple-valide.xlsx")
    frame, detected = read_spreadsheet(arbres, SpreadsheetOptions(), "xlsx")
    assert detected == {"sheet": "Sheet1", "header_row": 0, "header_rows": 1}
    # `id` is stored as the float 1.0, `date_plantation` as an Excel date, `code_insee` as text.
    assert frame["id"].tolist()[0] == "1"
    assert all(len(value) == 10 and value[4] == "-" for value in frame["date_plantation"].dropna())
    assert frame["code_insee"].str.fullmatch(r"\d[\dAB]\d{3}").all()
    tourisme, _ = read_spreadsheet(real_file(REAL_WORKBOOKS[0]), SpreadsheetOptions(), "xlsx")
    assert tourisme.shape == (3809, 12) and tourisme["SIRET"].tolist()[0] == "410463723 00016"
    assert tourisme["CP"].tolist()[0] == "29470"


CELL_KINDS = [
    ["code", "entier", "nombre", "date", "horodatage", "heure", "booleen", "duree", "texte"],
    ["01053", 123, 1234.5, date(2024, 12, 31), datetime(2024, 2, 3, 10, 30), time(10, 30), True, timedelta(hours=3), "N/A"],
    ["2A004", 4.0, 0.1, datetime(2024, 2, 3), datetime(2024, 2, 3, 10, 30, 15, 500000), time(0, 0), False, None, " x "],
    ["97101", 2**53 + 2, -3, None, None, None, None, None, "NA"],
    ["=A1", "=1/0", None, None, None, None, None, None, ""],
]


def _cell_kinds_xlsx(tmp_path: Path) -> Path:
    """Every kind of cell, and two formulas with cached values (a text and an error) as Excel saves them."""
    path = _xlsx(tmp_path / "kinds.xlsx", {"Feuil1": CELL_KINDS})
    for formula, cached in [
        (b'<c r="A5"><f>A1</f><v /></c>', b'<c r="A5" t="str"><f>A1</f><v>code</v></c>'),
        (b'<c r="B5"><f>1/0</f><v /></c>', b'<c r="B5" t="e"><f>1/0</f><v>#DIV/0!</v></c>'),
    ]:
        path.write_bytes(_patched(path, "xl/worksheets/sheet1.xml", formula, cached))
    return path


def test_every_kind_of_cell_reads_as_with_openpyxl(tmp_path, monkeypatch):
    path = _cell_kinds_xlsx(tmp_path)
    frame, _ = read_spreadsheet(path, SpreadsheetOptions(), "xlsx")
    assert _columns(frame) == {
        "code": ["01053", "2A004", "97101", "code"],
        "entier": ["123", "4", "9007199254740994", None],  # an error cell (#DIV/0!) is empty
        "nombre": ["1234.5", "0.1", "-3", None],
        "date": ["2024-12-31", "2024-02-03", None, None],
        "horodatage": ["2024-02-03T10:30:00", "2024-02-03T10:30:15.500000", None, None],
        "heure": ["10:30:00", "00:00:00", None, None],
        "booleen": ["true", "false", None, None],
        "duree": ["3:00:00", None, None, None],
        "texte": ["N/A", " x ", "NA", None],
    }
    _with_engine(monkeypatch, "xlsx", "openpyxl")
    pd.testing.assert_frame_equal(frame, read_spreadsheet(path, SpreadsheetOptions(), "xlsx")[0])


def test_ods_reads_as_with_odfpy(tmp_path, monkeypatch):
    path = tmp_path / "effectifs.ods"
    written = pd.DataFrame(
        {
            "uai": ["0010001W", "0691234A"],
            "effectif": [120, 87],
            "taux": [0.5, None],
            "date": [datetime(2024, 2, 3), datetime(2024, 2, 3, 10, 30)],
            "ouvert": [True, False],
        }
    )
    with pd.ExcelWriter(path, engine="odf") as writer:
        written.to_excel(writer, sheet_name="Écoles", index=False)
    frame, _ = read_spreadsheet(path, SpreadsheetOptions(), "ods")
    assert _columns(frame) == {
        "uai": ["0010001W", "0691234A"],
        "effectif": ["120", "87"],
        "taux": ["0.5", None],
        "date": ["2024-02-03", "2024-02-03T10:30:00"],
        "ouvert": ["true", "false"],
    }
    _with_engine(monkeypatch, "ods", "odf")
    pd.testing.assert_frame_equal(frame, read_spreadsheet(path, SpreadsheetOptions(), "ods")[0])


def _bad_styles_xlsx(tmp_path: Path) -> bytes:
    """A valid workbook whose one font colour is not an ARGB value: openpyxl refuses it on load,
    as it refused a real INSEE workbook."""
    path = _xlsx(tmp_path / "populations.xlsx", {"Feuil1": [["CODGEO", "P21_POP"], ["01001", 771]]})
    book = openpyxl.load_workbook(path)
    book["Feuil1"]["A1"].font = openpyxl.styles.Font(bold=True, color="FF0000FF")
    book.save(path)
    return _patched(path, "xl/styles.xml", b'<color rgb="FF0000FF" />', b'<color rgb="invalid" />')


def test_workbook_openpyxl_refuses_is_read(tmp_path, monkeypatch):
    content = _bad_styles_xlsx(tmp_path)
    stored = _stored(tmp_path, content)
    with pytest.raises(ValueError, match="could not read stylesheet"):
        openpyxl.load_workbook(io.BytesIO(content))
    frame, detected = read_source(stored, _source("populations.xlsx", "xlsx"))
    assert frame.to_dict("records") == [{"CODGEO": "01001", "P21_POP": "771"}]
    assert detected == {"sheet": "Feuil1", "header_row": 0, "header_rows": 1}
    # openpyxl's message names the path it was given; ours names the served file instead.
    _with_engine(monkeypatch, "xlsx", "openpyxl")
    message = _read_error(tmp_path, content, _source("populations.xlsx", "xlsx"))
    assert "not a readable xlsx workbook (ValueError: " in message
    assert "could not read stylesheet from populations.xlsx (raw file " in message


# --- Legacy .xls (BIFF8), written here byte by byte ------------------------------------------------

_END_OF_CHAIN, _FREE_SECTOR, _FAT_SECTOR, _NO_STREAM = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF


def _biff_record(kind: int, data: bytes = b"") -> bytes:
    return struct.pack("<HH", kind, len(data)) + data


def _biff_cell(row: int, column: int, value) -> bytes:
    """LABEL, BOOLERR or NUMBER; dates are numbers with the XF of a built-in date format (1, 2)."""
    if isinstance(value, str):
        return _biff_record(0x0204, struct.pack("<HHHHB", row, column, 0, len(value), 1) + value.encode("utf-16-le"))
    if isinstance(value, bool):
        return _biff_record(0x0205, struct.pack("<HHHBB", row, column, 0, int(value), 0))
    xf = 0
    if isinstance(value, date):
        xf = 2 if isinstance(value, datetime) else 1
        stamp = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
        value = (stamp - datetime(1899, 12, 30)) / timedelta(days=1)
    return _biff_record(0x0203, struct.pack("<HHHd", row, column, xf, float(value)))


def _xls(sheets: dict[str, list[list]]) -> bytes:
    """An Excel 97-2003 workbook: a BIFF8 `Workbook` stream in a minimal compound file.

    Nothing on this machine writes `.xls` (xlwt is long gone), and administrations still publish it.
    """
    bof = lambda kind: _biff_record(0x0809, struct.pack("<HHHHII", 0x0600, kind, 0x0DBB, 0x07CC, 0, 6))  # noqa: E731
    eof = _biff_record(0x000A)
    bodies = []
    for rows in sheets.values():
        width = max((len(row) for row in rows), default=0)
        dimensions = _biff_record(0x0200, struct.pack("<IIHHH", 0, len(rows), 0, width, 0))
        cells = [_biff_cell(r, c, value) for r, row in enumerate(rows) for c, value in enumerate(row) if value is not None]
        bodies.append(bof(0x0010) + dimensions + b"".join(cells) + eof)

    def globals_(offsets: list[int]) -> bytes:
        # Code page UTF-16, 1900 dates, XF 0 General, XF 1 date (format 14), XF 2 date-time (22).
        head = bof(0x0005) + _biff_record(0x0042, struct.pack("<H", 1200)) + _biff_record(0x0022, struct.pack("<H", 0))
        for number_format in (0, 14, 22):
            head += _biff_record(0x00E0, struct.pack("<HH", 0, number_format) + bytes(16))
        for title, offset in zip(sheets, offsets):
            head += _biff_record(0x0085, struct.pack("<IBBBB", offset, 0, 0, len(title), 1) + title.encode("utf-16-le"))
        return head + eof

    offsets, position = [], len(globals_([0] * len(sheets)))
    for body in bodies:
        offsets.append(position)
        position += len(body)
    # At least 4096 bytes, so the stream lives in ordinary sectors rather than the mini stream.
    stream = (globals_(offsets) + b"".join(bodies)).ljust(4096, b"\0")
    stream = stream.ljust(-(-len(stream) // 512) * 512, b"\0")
    count = len(stream) // 512
    # Sector 0: the allocation table; sector 1: the directory; sectors 2...: the stream.
    fat = [_FAT_SECTOR, _END_OF_CHAIN, *range(3, 2 + count), _END_OF_CHAIN]
    fat += [_FREE_SECTOR] * (128 - len(fat))

    def entry(title: str, kind: int, child: int, start: int, size: int) -> bytes:
        encoded = (title + "\0").encode("utf-16-le") if title else b""
        siblings = (_NO_STREAM, _NO_STREAM)
        return struct.pack("<64sHBBIII16sIQQIQ", encoded, len(encoded), kind, 1, *siblings, child, bytes(16), 0, 0, 0, start, size)

    directory = entry("Root Entry", 5, 1, _END_OF_CHAIN, 0) + entry("Workbook", 2, _NO_STREAM, 2, len(stream))
    directory += entry("", 0, _NO_STREAM, 0, 0) * 2
    # Version 3, 512-byte sectors; 1 allocation sector; directory at sector 1; no mini stream, no DIFAT.
    header = struct.pack("<8s16sHHHHH6s", bytes.fromhex("D0CF11E0A1B11AE1"), bytes(16), 0x3E, 3, 0xFFFE, 9, 6, bytes(6))
    header += struct.pack("<9I", 0, 1, 1, 0, 4096, _END_OF_CHAIN, 0, _END_OF_CHAIN, 0)
    header += struct.pack("<109I", 0, *[_FREE_SECTOR] * 108)
    return header + struct.pack("<128I", *fat) + directory + stream


XLS_SHEETS = {
    "Notes": [["à lire"]],
    "Données": [
        ["Subventions 2024"],
        ["Code commune", "Effectif", "Montant", "Date", "Horodatage", "Versé", "Statut"],
        ["01053", 123, 1234.5, date(2024, 12, 31), datetime(2024, 2, 3, 10, 30), True, "N/A"],
        ["2A004", 4.0, -3, None, None, False, None],
    ],
}


def test_xls_is_read_like_xlsx(tmp_path):
    source = _source("subventions.xls", "xls", spreadsheet={"sheet": "Données"})
    frame, detected = read_source(_stored(tmp_path, _xls(XLS_SHEETS)), source)
    assert detected == {"sheet": "Données", "header_row": 1, "header_rows": 1}
    assert _columns(frame) == {
        "Code commune": ["01053", "2A004"],
        "Effectif": ["123", "4"],
        "Montant": ["1234.5", "-3"],
        "Date": ["2024-12-31", None],
        "Horodatage": ["2024-02-03T10:30:00", None],
        "Versé": ["true", "false"],
        "Statut": ["N/A", None],
    }


# --- A sheet chosen by name ----------------------------------------------------------------------


def _two_sheet_workbook(tmp_path: Path, file_format: str) -> bytes:
    if file_format == "xls":
        return _xls({"Notes": [["à lire"]], "Données": [["code", "n"], ["01053", 3]]})
    path = tmp_path / f"book.{file_format}"
    with pd.ExcelWriter(path, engine="odf" if file_format == "ods" else "openpyxl") as writer:
        pd.DataFrame({"lire": ["à lire"]}).to_excel(writer, sheet_name="Notes", index=False)
        pd.DataFrame({"code": ["01053"], "n": [3]}).to_excel(writer, sheet_name="Données", index=False)
    return path.read_bytes()


@pytest.mark.parametrize("file_format", ["xlsx", "xls", "ods"])
def test_sheet_by_name_and_the_sheets_listed_when_it_is_missing(tmp_path, file_format):
    content = _two_sheet_workbook(tmp_path, file_format)
    served = f"book.{file_format}"
    frame, detected = read_source(_stored(tmp_path, content), _source(served, file_format, spreadsheet={"sheet": "Données"}))
    assert detected["sheet"] == "Données" and frame.to_dict("records") == [{"code": "01053", "n": "3"}]
    message = _read_error(tmp_path, content, _source(served, file_format, spreadsheet={"sheet": "Feuil2"}))
    assert message.endswith("sheet 'Feuil2' not found; the workbook's sheets are ['Notes', 'Données']")


# --- Unreadable workbooks: every message names the served file, never a local path ----------------


def _html_page(tmp_path: Path) -> bytes:
    return b"<html><body>Maintenance</body></html>"


def _truncated_zip(tmp_path: Path) -> bytes:
    return _xlsx(tmp_path / "t.xlsx", {"Feuil1": [["a"], [1]]}).read_bytes()[:300]


def _xls_with_a_bad_stream_size(tmp_path: Path) -> bytes:
    """A compound file whose stream size points into a mini stream that does not exist: calamine
    panics on it (a pyo3 PanicException, which is not an Exception)."""
    content = bytearray(_xls({"Feuil1": [["a"]]}))
    directory = 512 + 512  # header, then sector 0 (the allocation table)
    content[directory + 128 + 120 : directory + 128 + 128] = struct.pack("<Q", 100)
    return bytes(content)


@pytest.mark.parametrize(
    ("file_format", "make", "expected"),
    [
        ("xlsx", _html_page, "not a readable xlsx workbook (CalamineError: "),
        ("xls", _html_page, "not a readable xls workbook (CalamineError: "),
        ("ods", _html_page, "not a readable ods workbook (CalamineError: "),
        ("xlsx", _truncated_zip, "not a readable xlsx workbook ("),
        ("xls", _xls_with_a_bad_stream_size, "not a readable xls workbook (PanicException: "),
    ],
)
def test_unreadable_workbooks_are_parse_errors_naming_the_served_file(tmp_path, file_format, make, expected):
    message = _read_error(tmp_path, make(tmp_path), _source(f"export.{file_format}", file_format))
    assert expected in message


def test_csv_errors_name_the_served_file(tmp_path):
    message = _read_error(tmp_path, b"a;b\n1;2\n3;4;5\n", _source("export.csv", "csv"))
    assert "ragged rows" in message
    message = _read_error(tmp_path, b"a;b\n", _source("export.csv", "csv", csv={"header_row": 3}))
    assert message.endswith("the header (line 4) is past the records read in the first 64 KiB")
    assert _read_error(tmp_path, b"", _source("export.csv", "csv")).endswith("the file is empty")


# --- Title rows and a second header row of codes ---------------------------------------------------

INSEE_LINES = [
    "Populations légales 2021",
    "Source : Insee, recensement de la population",
    "",
    "Code géographique;Libellé géographique;Population municipale",
    "CODGEO;LIBGEO;P21_POP",
    "01001;L'Abergement-Clémenciat;832",
    "2A004;Ajaccio;73150",
]
LABELS = ["Code géographique", "Libellé géographique", "Population municipale"]
CODES = ["CODGEO", "LIBGEO", "P21_POP"]


def _insee_csv(lines: list[str] = INSEE_LINES) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


@pytest.mark.parametrize(("header_names", "names"), [("first", LABELS), ("last", CODES)])
def test_csv_second_header_row_of_codes_is_detected_below_title_rows(tmp_path, header_names, names):
    source = _source("base-pop.csv", "csv", csv={"header_names": header_names})
    frame, detected = read_source(_stored(tmp_path, _insee_csv()), source)
    assert (detected["header_row"], detected["header_rows"]) == (3, 2)
    assert list(frame.columns) == names
    assert frame.iloc[:, 0].tolist() == ["01001", "2A004"]  # the codes row is never data


def test_csv_second_header_row_composes_with_a_bom_mismatch(tmp_path):
    frame, detected = read_source(_stored(tmp_path, BOM + _insee_csv(INSEE_LINES[3:])), _source("base-pop.csv", "csv"))
    assert list(frame.columns) == LABELS and len(frame) == 2
    assert detected == {"encoding": "cp1252", "bom_mismatch": True, "delimiter": ";", "header_row": 0, "header_rows": 2}


def test_declared_header_rows(tmp_path):
    stored = _stored(tmp_path, _insee_csv())
    frame, _ = read_source(stored, _source("base-pop.csv", "csv", csv={"header_rows": 1}))
    assert frame.iloc[0].tolist() == CODES  # declared: the codes row is data
    # Lower-case codes with spaces in none of the labels: not detected, but declared.
    lines = ["code;libelle;population", "codgeo;libgeo;p21_pop", "01001;L'Abergement;832"]
    stored = _stored(tmp_path, _insee_csv(lines))
    codes = {"header_rows": 2, "header_names": "last"}
    frame, detected = read_source(stored, _source("base-pop.csv", "csv", csv=codes))
    assert list(frame.columns) == ["codgeo", "libgeo", "p21_pop"] and len(frame) == 1 and detected["header_rows"] == 2


@pytest.mark.parametrize(
    "lines",
    [
        # A first data row of plain words, but numbers below in one column.
        ["Nom de la commune;Statut;Population", "PARIS;Actif;2133111", "LYON;Actif;522250"],
        # Words only, in every row: nothing tells that first row from the data under it.
        ["Ville de départ;Ville d'arrivée", "PARIS;LYON", "LILLE;NANTES"],
        # Codes below a header of codes: no labels above them.
        ["code;nom;population", "CODGEO;LIBGEO;P21_POP", "01001;L'Abergement;832"],
        # Under labels, but the same words as the labels.
        ["Code géographique;LIBGEO;P21_POP", "CODGEO;LIBGEO;P21_POP", "01001;L'Abergement;832"],
        # No row below to compare with.
        ["Code géographique;Libellé géographique", "CODGEO;LIBGEO"],
    ],
)
def test_first_data_row_is_not_taken_for_codes(tmp_path, lines):
    frame, detected = read_source(_stored(tmp_path, _insee_csv(lines)), _source("f.csv", "csv"))
    assert detected["header_rows"] == 1 and len(frame) == len(lines) - 1


def test_detect_header_rows_on_cells():
    rows = [[None], LABELS, CODES, ["01001", "L'Abergement-Clémenciat", "832"]]
    assert detect_header_rows(rows, 1) == 2
    assert detect_header_rows(rows, 2) == 1
    assert detect_header_rows([LABELS, ["CODGEO", "CODGEO", "P21_POP"], ["01001", "x y", "1"]], 0) == 1  # codes repeat


def test_label_spanning_several_codes_names_them_by_their_codes(tmp_path):
    lines = ["Code géographique;Population;", "CODGEO;P21_POP;P15_POP", "01001;832;767"]
    frame, _ = read_source(_stored(tmp_path, _insee_csv(lines)), _source("f.csv", "csv"))
    assert list(frame.columns) == ["Code géographique", "Population", "P15_POP"]


def test_two_row_header_errors_name_both_rows(tmp_path):
    lines = ["Code géographique;Population;Population 2015", "CODGEO;P21_POP;P15_POP", "01001;832;767;9"]
    message = _read_error(tmp_path, _insee_csv(lines), _source("f.csv", "csv"))
    assert message.endswith("ragged rows: the header (lines 1-2) has 3 fields but line 3 has 4 fields")
    message = _read_error(tmp_path, _insee_csv(lines[:1]), _source("f.csv", "csv", csv={"header_rows": 2}))
    assert message.endswith("the header (lines 1-2) is past the records read in the first 64 KiB")


INSEE_SHEET = [
    ["Populations légales 2021"],
    ["Source : Insee"],
    [],
    ["Code géographique", "Libellé géographique", "Population municipale"],
    ["CODGEO", "LIBGEO", "P21_POP"],
    ["01001", "L'Abergement-Clémenciat", 832],
    ["2A004", "Ajaccio", 73150],
]


@pytest.mark.parametrize(("header_names", "names"), [("first", LABELS), ("last", CODES)])
def test_sheet_second_header_row_of_codes_below_title_rows(tmp_path, header_names, names):
    content = _xlsx(tmp_path / "pop.xlsx", {"Communes": INSEE_SHEET}).read_bytes()
    source = _source("base-pop.xlsx", "xlsx", spreadsheet={"header_names": header_names})
    frame, detected = read_source(_stored(tmp_path, content), source)
    assert detected == {"sheet": "Communes", "header_row": 3, "header_rows": 2}
    assert list(frame.columns) == names
    assert frame.to_dict("split")["data"] == [["01001", "L'Abergement-Clémenciat", "832"], ["2A004", "Ajaccio", "73150"]]


def test_sheet_header_rows_past_the_last_row(tmp_path):
    content = _xlsx(tmp_path / "pop.xlsx", {"Communes": INSEE_SHEET[:4]}).read_bytes()
    message = _read_error(tmp_path, content, _source("pop.xlsx", "xlsx", spreadsheet={"header_rows": 2}))
    assert message.endswith("sheet 'Communes': the header (rows 4-5) goes past its last row (4 rows)")


@pytest.mark.parametrize(
    "options",
    [{"header_rows": 0}, {"header_names": "middle"}, {"header_row": -1}],
)
def test_header_options_are_checked(options):
    with pytest.raises(ValidationError):
        CsvOptions(**options)
    with pytest.raises(ValidationError):
        SpreadsheetOptions(**options)
