"""Reading messy administration files into text tables: encodings, delimiters, headers, errors."""

from __future__ import annotations

import json

import pytest

from dinum_pipelines.lib.parsing import ParseError, detect_encoding, read_csv, read_json
from dinum_pipelines.lib.registry import CsvOptions


def test_cp1252_with_oe_and_euro_is_not_mistaken():
    text = "Libellé;Montant\nŒuvre d’art;12 000 €\n"
    assert detect_encoding(text.encode("cp1252")) == "cp1252"
    assert detect_encoding(text.encode("utf-8")) == "utf-8"
    assert detect_encoding(b"\xef\xbb\xbf" + text.encode("utf-8")) == "utf-8-sig"


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


def test_duplicate_header_is_named(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("a;b;a\n1;2;3\n", encoding="utf-8")
    with pytest.raises(ParseError, match=r"dup\.csv: duplicate column names in the header \(line 1\): \['a'\]"):
        read_csv(path, CsvOptions())


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
