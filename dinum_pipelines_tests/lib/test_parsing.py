"""Reading messy administration files into text tables: encodings, delimiters, headers, errors."""

from __future__ import annotations

import json
import random
from datetime import date, datetime
from pathlib import Path

import charset_normalizer
import openpyxl
import pandas as pd
import pyarrow as pa
import pytest

from dinum_pipelines.lib.clean import parsing
from dinum_pipelines.lib.clean.parsing import (
    ParseError,
    detect_encoding,
    read_csv,
    read_geojson,
    read_json,
    read_source,
    read_source_batches,
    read_spreadsheet,
    read_xml,
)
from dinum_pipelines.lib.ingest.http import fetch_to_file, make_session
from dinum_pipelines.lib.declare.registry import CsvOptions, SourceSpec, SpreadsheetOptions
from dinum_pipelines_tests.httpserver import Reply, ScriptedServer


def test_cp1252_with_oe_and_euro_is_not_mistaken():
    text = "Libellé;Montant\nŒuvre d’art;12 000 €\n"
    assert detect_encoding(text.encode("cp1252")) == "cp1252"
    assert detect_encoding(text.encode("utf-8")) == "utf-8"
    assert detect_encoding(b"\xef\xbb\xbf" + text.encode("utf-8")) == "utf-8-sig"


# French cp1252 text that charset-normalizer (what requests uses to guess) labels cp1250:
# decoded that way, "cœur" becomes "cśur" and "garçon" "garčon".
CP1250_LOOKALIKE = (
    "code;libellé;montant\n75606;Ardèche où cœur;8118,97\n59915;garçon Moselle bœuf;3440,12\n"
    "64944;Côte-d'Or bœuf fête;9953,97\n01276;élève où à;9686,13\n42606;Côte-d'Or Moselle «;151,48\n"
)


def test_cp1252_file_a_naive_guesser_calls_cp1250_is_read_as_cp1252(tmp_path):
    data = CP1250_LOOKALIKE.encode("cp1252")
    naive = charset_normalizer.from_bytes(data).best()
    assert naive is not None and naive.encoding == "cp1250", "the trap this test is about"
    with ScriptedServer() as server:
        server.plan(Reply(200, data, {"Content-Type": "text/csv"}))  # no charset, as administrations serve it
        download = fetch_to_file(make_session(), f"{server.url}/lieux.csv", tmp_path)
    frame, layout = read_csv(download.path, CsvOptions(), name="lieux.csv")
    assert layout.encoding == "cp1252"
    assert list(frame["libellé"]) == [line.split(";")[1] for line in CP1250_LOOKALIKE.splitlines()[1:]]
    assert frame["code"].tolist()[3] == "01276"


def test_utf8_sample_cut_in_the_middle_of_a_character_is_utf8():
    sample = ("é" * 10).encode("utf-8")[:-1]
    assert detect_encoding(sample) == "utf-8"


def test_title_rows_above_the_header_are_skipped(tmp_path):
    path = tmp_path / "with_titles.csv"
    path.write_bytes(
        "Préfecture de démonstration\nExport du 01/02/2024\n\ncode;nom;montant\n01053;Bourg-en-Bresse;1 234,50\n2A004;Ajaccio;7,00\n".encode("cp1252")
    )
    frame, layout = read_csv(path, CsvOptions())
    assert layout.header_row == 3 and layout.delimiter == ";" and layout.encoding == "cp1252"
    assert list(frame.columns) == ["code", "nom", "montant"]
    assert frame["code"].tolist() == ["01053", "2A004"]


def test_quoted_multiline_cells(tmp_path):
    path = tmp_path / "multiline.csv"
    path.write_text('id,commentaire\n1,"ligne un\nligne deux"\n2,simple\n', encoding="utf-8")
    frame, _ = read_csv(path, CsvOptions())
    assert frame["commentaire"].tolist() == ["ligne un\nligne deux", "simple"]


def test_duplicate_header_is_kept_for_cleaning_to_judge(tmp_path):
    # Cleaning drops an empty repeat and blocks on one with values; the conformance report names it.
    path = tmp_path / "dup.csv"
    path.write_text("a;b;a\n1;2;3\n", encoding="utf-8")
    frame, _ = read_csv(path, CsvOptions())
    assert list(frame.columns) == ["a", "b", "a"] and frame.iloc[0].tolist() == ["1", "2", "3"]


def test_real_ragged_row_is_reported_with_its_line(real_file):
    path = real_file("datagouvfr_data_pipelines__test_datasets_catalog.csv")
    with pytest.raises(ParseError, match="the header \\(line 1\\) has 40 fields but line 4 has 37 fields"):
        read_csv(path, CsvOptions())


@pytest.mark.parametrize(
    ("name", "encoding", "delimiter", "rows", "columns"),
    [
        ("ban-data__depts2014.txt", "cp1252", "\t", 101, 6),
        ("ban-data__epcicom2015.csv", "cp1252", ";", 36588, 14),
        ("validateur-bal__sample.csv", "utf-8-sig", ";", 15, 13),
        ("csv-detective__ValeursFoncieres-2024.txt", "utf-8", "|", 100, 43),
        ("schema-stationnement__exemple-valide.csv", "utf-8", ",", 2, 30),
    ],
)
def test_real_files_layout_is_detected(real_file, name, encoding, delimiter, rows, columns):
    frame, layout = read_csv(real_file(name), CsvOptions())
    assert (layout.encoding, layout.delimiter) == (encoding, delimiter)
    assert frame.shape == (rows, columns)
    # Every cell is text: codes keep their leading zeros.
    assert all(str(dtype) in ("str", "string", "object") for dtype in frame.dtypes)


def test_real_latin1_codes_keep_leading_zeros(real_file):
    frame, _ = read_csv(real_file("ban-data__depts2014.txt"), CsvOptions())
    assert {"01", "2A", "2B", "976"} <= set(frame["DEP"])
    assert "Ardèche" in set(frame["NCCENR"])


def test_json_record_path(tmp_path):
    path = tmp_path / "feed.json"
    path.write_text(json.dumps({"meta": {}, "data": {"records": [{"code": "01053", "n": 3.5, "ok": True, "tags": ["a"]}, {"code": "2A004", "n": None}]}}))
    frame = read_json(path, "data.records")
    assert frame["code"].tolist() == ["01053", "2A004"]
    assert frame["n"].tolist()[0] == "3.5" and frame["ok"].tolist()[0] == "true"


def test_json_wrong_record_path_is_named(tmp_path):
    path = tmp_path / "feed.json"
    path.write_text(json.dumps({"data": {"items": []}}))
    with pytest.raises(ParseError, match=r"feed\.json: record path 'data\.records': key 'records' not found"):
        read_json(path, "data.records")


def test_html_instead_of_json_is_reported(tmp_path):
    path = tmp_path / "feed.json"
    path.write_text("<html><body>Service indisponible</body></html>")
    with pytest.raises(ParseError, match=r"feed\.json: not valid JSON"):
        read_json(path, None)


# --- Encodings declared wrong --------------------------------------------------------------------


def test_declared_utf8_on_a_cp1252_file_names_the_line_and_bytes(tmp_path):
    path = tmp_path / "subventions.csv"
    path.write_bytes("code;libellé\n01053;Bourg\n01004;Ambérieu\n".encode("cp1252"))
    with pytest.raises(ParseError) as error:
        read_csv(path, CsvOptions(encoding="utf-8"))
    message = str(error.value)
    # The header itself holds the first bad byte (é = 0xe9).
    assert message.startswith("subventions.csv: line 1: byte(s) 0xe9 cannot be decoded as utf-8")
    assert "declares source.csv.encoding 'utf-8'" in message


def test_undecodable_byte_in_the_data_is_located(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"code;nom\n01053;Bourg\n01004;Amb\x81rieu\n")
    with pytest.raises(ParseError, match=r"data\.csv: line 3: byte\(s\) 0x81 cannot be decoded as cp1252"):
        read_csv(path, CsvOptions(encoding="cp1252"))
    # Streamed, in batches of a few rows: the batch holding it fails the same way.
    source = SourceSpec(url="http://example.org/data.csv", format="csv", csv=CsvOptions(encoding="cp1252"))
    with pytest.raises(ParseError, match=r"data\.csv: line 3: byte\(s\) 0x81 cannot be decoded as cp1252"):
        list(read_source_batches(path, source, block_size=16).batches)


def test_detected_encoding_wrong_past_the_sample_says_to_declare_it(tmp_path):
    path = tmp_path / "long.csv"
    filler = "".join(f"{i:05d};ligne ordinaire\n" for i in range(6000)).encode("ascii")
    path.write_bytes(b"code;nom\n" + filler + "99999;Ambérieu\n".encode("cp1252"))
    with pytest.raises(ParseError, match=r"long\.csv: line 6002: byte\(s\) 0xe9 cannot be decoded as utf-8 \(utf-8 was detected from the first 64 KiB; declare source\.csv\.encoding"):
        read_csv(path, CsvOptions())


# --- JSON record paths ---------------------------------------------------------------------------


DECP_LIKE = {
    "marches": {
        "marche": [{"id": "M1", "titulaires": [{"titulaire": {"id": "552"}}], "montant": 575000.0}],
        "contrat-concession": [{"id": "C1", "valeurGlobale": 10.3}, {"id": "C2", "nested": {"a": None}}],
    }
}


def test_json_object_of_arrays_with_a_wildcard_and_key_column(tmp_path):
    path = tmp_path / "decp.json"
    path.write_text(json.dumps(DECP_LIKE), encoding="utf-8")
    frame = read_json(path, "marches.*", key_column="type")
    assert frame["type"].tolist() == ["marche", "contrat-concession", "contrat-concession"]
    assert frame["id"].tolist() == ["M1", "C1", "C2"]
    # Nested values are compact JSON; integral floats lose their ".0".
    assert frame["titulaires"].tolist()[0] == '[{"titulaire":{"id":"552"}}]'
    assert frame["nested"].tolist()[2] == '{"a":null}'
    assert frame["montant"].tolist()[0] == "575000"
    assert frame["valeurGlobale"].tolist()[1] == "10.3"
    assert read_json(path, "marches.marche")["id"].tolist() == ["M1"]


def test_json_object_of_objects_gives_one_row_per_member(tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({"definitions": {"a": {"type": "string"}, "b": {"type": "integer", "minimum": 0}}}))
    frame = read_json(path, "definitions.*", key_column="definition")
    assert frame["definition"].tolist() == ["a", "b"] and frame["type"].tolist() == ["string", "integer"]
    assert frame["minimum"].isna().tolist() == [True, False] and frame["minimum"].tolist()[1] == "0"


@pytest.mark.parametrize(
    ("record_path", "key_column", "message"),
    [
        ("marches.*.id", None, r"decp\.json: record path 'marches\.\*\.id': key 'id' not found \(no key 'id' in a list\)"),
        ("marches", None, r"decp\.json: expected a list of records at record path 'marches', found a dict"),
        ("marches.*", "id", r"decp\.json: record 0 already has a field 'id' \(the key_column\)"),
    ],
)
def test_json_record_path_errors_are_named(tmp_path, record_path, key_column, message):
    path = tmp_path / "decp.json"
    path.write_text(json.dumps(DECP_LIKE), encoding="utf-8")
    with pytest.raises(ParseError, match=message):
        read_json(path, record_path, key_column)


# --- GeoJSON -------------------------------------------------------------------------------------


def _feature(properties, geometry, **extra):
    return {"type": "Feature", "properties": properties, "geometry": geometry, **extra}


def test_geojson_features_become_rows_with_a_geometry_column(tmp_path):
    polygon = {"type": "Polygon", "coordinates": [[[2.408554054441555, 48.83481394970757], [2.4, 48.8], [2.41, 48.9], [2.408554054441555, 48.83481394970757]]]}
    collection = {
        "type": "FeatureCollection",
        "features": [
            _feature({"code": "01053", "date_debut": "2019-07-01", "critair": ["V4", "V5"]}, polygon),
            _feature({"code": "2A004", "extra": 1.5}, None),
        ],
    }
    path = tmp_path / "zones.geojson"
    path.write_text(json.dumps(collection, indent=2), encoding="utf-8")
    frame = read_geojson(path)
    assert list(frame.columns) == ["code", "date_debut", "critair", "extra", "geometry"]
    assert frame["code"].tolist() == ["01053", "2A004"]
    assert frame["critair"].tolist()[0] == '["V4","V5"]'
    assert json.loads(frame["geometry"].tolist()[0]) == polygon
    assert frame["geometry"].tolist()[0].startswith('{"type":"Polygon","coordinates":[[[2.408554054441555,48.83481394970757],')
    assert pd.isna(frame["geometry"].tolist()[1])


def test_geojson_single_feature_with_id(tmp_path):
    path = tmp_path / "zone.geojson"
    path.write_text(json.dumps(_feature({"nom": "Centre"}, {"type": "Point", "coordinates": [1, 2]}, id="z1")))
    frame = read_geojson(path)
    assert frame.to_dict("records") == [{"id": "z1", "nom": "Centre", "geometry": '{"type":"Point","coordinates":[1,2]}'}]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"type": "Topology", "objects": {}}, r"expected a GeoJSON FeatureCollection or Feature, found 'Topology'"),
        ([1, 2], r"expected a GeoJSON FeatureCollection or Feature, found 'list'"),
        ({"type": "FeatureCollection", "features": [{"type": "Point"}]}, r"feature 0 is not a GeoJSON Feature"),
        ({"type": "FeatureCollection", "features": [_feature({"geometry": "x"}, None)]}, r"feature 0: properties \['geometry'\] clash"),
    ],
)
def test_geojson_errors_are_named(tmp_path, document, message):
    path = tmp_path / "zones.geojson"
    path.write_text(json.dumps(document))
    with pytest.raises(ParseError, match=rf"zones\.geojson: {message}"):
        read_geojson(path)


# --- XML -----------------------------------------------------------------------------------------

MARCHES_XML = """<marches xmlns="urn:test">
    <marche statut="publie">
        <id>M1</id>
        <acheteur><id>21750001630040</id></acheteur>
        <considerationsSociales>
            <considerationSociale>Clause sociale</considerationSociale>
            <considerationSociale>Critère social</considerationSociale>
        </considerationsSociales>
        <montant>575000</montant>
        <vide/>
    </marche>
    <marche><id>M2</id><montant>12,5</montant></marche>
    <autre><marche><id>M3</id></marche></autre>
</marches>
"""


def test_xml_records_by_tag_anywhere_or_by_path_from_the_root(tmp_path):
    path = tmp_path / "marches.xml"
    path.write_text(MARCHES_XML, encoding="utf-8")
    anywhere = read_xml(path, "marche")
    assert anywhere["id"].tolist() == ["M1", "M2", "M3"]
    assert read_xml(path, "marches/marche")["id"].tolist() == ["M1", "M2"]
    assert read_xml(path, "marches/autre/marche")["id"].tolist() == ["M3"]
    first = anywhere.iloc[0]
    assert first["@statut"] == "publie"
    assert first["acheteur"] == '{"id":"21750001630040"}'
    assert first["considerationsSociales"] == '{"considerationSociale":["Clause sociale","Critère social"]}'
    assert first["montant"] == "575000" and pd.isna(first["vide"])
    # Without a record path, the root's children are the records.
    assert len(read_xml(path, None)) == 3


def test_xml_doctype_is_refused_before_any_entity_is_expanded(tmp_path):
    path = tmp_path / "bomb.xml"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n <!ENTITY lol2 "&lol;&lol;&lol;&lol;">\n]>\n<lolz><a>&lol2;</a></lolz>\n'
    )
    with pytest.raises(ParseError, match=r"bomb\.xml: line 2: DOCTYPE declarations are refused"):
        read_xml(path, None)


@pytest.mark.parametrize(
    ("content", "record_path", "message"),
    [
        ("<marches>\n<marche>\n<id>1</id>\n</marches>", "marche", r"not well-formed XML: mismatched tag: line 4, column 2"),
        (MARCHES_XML, "contrats/marche", r"record path 'contrats/marche': the root element is <marches>, not <contrats>"),
        (MARCHES_XML, "contrat", r"no element matches record path 'contrat' \(the root element is <marches>\)"),
        ("<html><body>Erreur 500</body></html>", "marche", r"no element matches record path 'marche' \(the root element is <html>\)"),
    ],
)
def test_xml_errors_are_named(tmp_path, content, record_path, message):
    path = tmp_path / "marches.xml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ParseError, match=rf"marches\.xml: {message}"):
        read_xml(path, record_path)


# --- Spreadsheets --------------------------------------------------------------------------------


def _workbook(path: Path, sheets: dict[str, list[list]]) -> Path:
    """An xlsx written cell by cell (openpyxl), so cell types are exactly what a producer's Excel holds."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


TITLED_SHEET = [
    ["Préfecture de démonstration — subventions 2024"],
    ["Export du 01/02/2024"],
    [],
    ["Code commune", "SIRET", "Effectif", "Montant", "Date", "Statut", None],
    ["01053", "410463723 00016", 123, 1234.5, datetime(2024, 2, 3), "N/A", None],
    ["2A004", None, 7, 0.1, datetime(2024, 2, 3, 10, 30), "NA", None],
    [None, None, None, None, None, None, None],
    ["97101", "200061463 00010", 4.0, -3, date(2024, 12, 31), True, None],
]


def test_xlsx_title_rows_are_skipped_and_cells_keep_what_was_written(tmp_path):
    path = _workbook(tmp_path / "subventions.xlsx", {"Notes": [["à lire"]], "Données": TITLED_SHEET})
    frame, detected = read_spreadsheet(path, SpreadsheetOptions(sheet="Données"), "xlsx")
    assert detected == {"sheet": "Données", "header_row": 3, "header_rows": 1}
    assert list(frame.columns) == ["Code commune", "SIRET", "Effectif", "Montant", "Date", "Statut"]
    assert frame["Code commune"].tolist() == ["01053", "2A004", "97101"]
    assert frame["SIRET"].tolist()[0] == "410463723 00016"
    # Integers stored as numbers (even as 4.0) stay integers: no "123.0".
    assert frame["Effectif"].tolist() == ["123", "7", "4"]
    assert frame["Montant"].tolist() == ["1234.5", "0.1", "-3"]
    assert frame["Date"].tolist() == ["2024-02-03", "2024-02-03T10:30:00", "2024-12-31"]
    # "N/A" and "NA" are values, not missing; the blank row is dropped.
    assert frame["Statut"].tolist() == ["N/A", "NA", "true"]


def test_sheet_by_index_and_explicit_header_row(tmp_path):
    path = _workbook(tmp_path / "book.xlsx", {"Notes": [["à lire"]], "Données": TITLED_SHEET})
    frame, detected = read_spreadsheet(path, SpreadsheetOptions(sheet=1, header_row=4), "xlsx")
    assert detected == {"sheet": "Données", "header_row": 4, "header_rows": 1}
    assert list(frame.columns)[:2] == ["01053", "410463723 00016"] and len(frame) == 2


def test_ods_is_read_like_xlsx(tmp_path):
    path = tmp_path / "effectifs.ods"
    frame = pd.DataFrame({"uai": ["0010001W", "0691234A"], "code_commune": ["01053", "69123"], "effectif": [120, 87], "taux": [0.5, None]})
    with pd.ExcelWriter(path, engine="odf") as writer:
        frame.to_excel(writer, sheet_name="Écoles", index=False)
    read, detected = read_spreadsheet(path, SpreadsheetOptions(), "ods")
    assert detected == {"sheet": "Écoles", "header_row": 0, "header_rows": 1}
    assert read["uai"].tolist() == ["0010001W", "0691234A"]
    assert read["code_commune"].tolist() == ["01053", "69123"]
    assert read["effectif"].tolist() == ["120", "87"]
    assert read["taux"].tolist()[0] == "0.5" and pd.isna(read["taux"].tolist()[1])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (SpreadsheetOptions(sheet="Feuil2"), r"book\.xlsx: sheet 'Feuil2' not found; the workbook's sheets are \['Notes', 'Données'\]"),
        (SpreadsheetOptions(sheet=5), r"book\.xlsx: sheet 5 \(0-based\) does not exist; the workbook has 2 sheet\(s\)"),
        (SpreadsheetOptions(sheet="Données", header_row=40), r"book\.xlsx: sheet 'Données': header_row 40 is past its last row \(8 rows\)"),
    ],
)
def test_spreadsheet_errors_are_named(tmp_path, options, message):
    path = _workbook(tmp_path / "book.xlsx", {"Notes": [["à lire"]], "Données": TITLED_SHEET})
    with pytest.raises(ParseError, match=message):
        read_spreadsheet(path, options, "xlsx")


def test_spreadsheet_duplicate_header_is_kept_for_cleaning_to_judge(tmp_path):
    path = _workbook(tmp_path / "dup.xlsx", {"Feuil1": [["Titre"], ["a", "b", "a"], [1, 2, 3]]})
    frame, detected = read_spreadsheet(path, SpreadsheetOptions(), "xlsx")
    assert list(frame.columns) == ["a", "b", "a"] and frame.iloc[0].tolist() == ["1", "2", "3"]
    assert detected["header_row"] == 1


def test_html_served_as_xlsx_is_reported(tmp_path):
    path = tmp_path / "export.xlsx"
    path.write_text("<html><body>Maintenance</body></html>")
    with pytest.raises(ParseError, match=r"export\.xlsx: not a readable xlsx workbook"):
        read_spreadsheet(path, SpreadsheetOptions(), "xlsx")


# --- Dispatch ------------------------------------------------------------------------------------


def test_messages_name_the_file_as_served_not_as_stored(tmp_path):
    stored = tmp_path / "3f2a9c0d1e7b4a5f"  # the raw store keeps files under their sha256
    stored.write_text("<html>", encoding="utf-8")
    source = SourceSpec(url="${DINUM_X:-http://127.0.0.1:9}/exports/march%C3%A9s.json", format="json")
    with pytest.raises(ParseError, match=r"^marchés\.json \(raw file 3f2a9c0d1e7b\): not valid JSON"):
        read_source(stored, source)


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "iso-8859-15"])
def test_columns_read_as_bytes_become_the_same_text_as_the_codec_gives(encoding):
    """A single-byte file is parsed as bytes and made text column by column (_BytesToText): each
    cell must be what Python's codec makes of it, nulls and slices included."""
    bytes_to_text = parsing._BytesToText.of(encoding)
    assert bytes_to_text is not None
    alphabet = [c for c in bytes(range(1, 256)).decode(encoding, errors="replace") if c != "\ufffd"]
    rng = random.Random(13)
    cells = []
    for _ in range(2000):
        pick = rng.random()
        if pick < 0.1:
            cells.append(None)
        elif pick < 0.5:
            cells.append("".join(rng.choices("0123456789;,. abc", k=rng.randrange(0, 12))))  # ASCII only
        else:
            cells.append("".join(rng.choices(alphabet, k=rng.randrange(0, 30))))
    binary = pa.array([None if cell is None else cell.encode(encoding) for cell in cells], pa.large_binary())
    for array, expected in ((binary, cells), (binary.slice(7, 1500), cells[7:1507])):
        text = bytes_to_text.text_array(array)
        text.validate(full=True)
        assert text.type == pa.large_string() and text.to_pylist() == expected
    ascii_only = pa.array([b"01053", None, b"1 234,50"], pa.large_binary())
    assert bytes_to_text.text_array(ascii_only).to_pylist() == ["01053", None, "1 234,50"]


def test_a_byte_the_encoding_leaves_undefined_is_the_codecs_error():
    bytes_to_text = parsing._BytesToText.of("cp1252")
    with pytest.raises(UnicodeDecodeError):
        bytes_to_text.text_array(pa.array([b"caf\xe9", b"\x81"], pa.large_binary()))


def test_only_ascii_compatible_single_byte_encodings_are_read_as_bytes():
    assert parsing._BytesToText.of("utf-8") is None
    assert parsing._BytesToText.of("cp500") is None  # EBCDIC: ';' is not byte 0x3B
    assert parsing._BytesToText.of("utf-16") is None
