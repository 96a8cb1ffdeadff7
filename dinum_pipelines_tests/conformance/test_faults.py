"""Each fault issue 11 names, on a file made here that reproduces it: now reported with its code,
row and column (or read right), and the rest of the file still checked."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import openpyxl
import pytest

from dinum_pipelines.lib.conformance import parse_schema, source, validate_file
from dinum_pipelines.lib.declare.registry import SourceSpec

SCHEMA = {
    "fields": [
        {"name": "id", "type": "integer", "constraints": {"required": True, "unique": True}},
        {"name": "NomAttribuant", "type": "string", "constraints": {"required": True, "pattern": "[A-Z].*"}},
        {"name": "Libellé", "type": "string"},
        {"name": "montant", "type": "number", "constraints": {"minimum": 0}},
        {"name": "actif", "type": "boolean", "trueValues": ["oui"], "falseValues": ["non"]},
        {"name": "date", "type": "date"},
        {"name": "commentaire", "type": "string"},
    ],
    "missingValues": ["", "NC"],
    "primaryKey": ["id"],
}


def judge(tmp_path: Path, content: bytes | str, schema: dict = SCHEMA, name: str = "f.csv", **source):
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    fmt = "xlsx" if name.endswith(".xlsx") else "csv"
    spec = SourceSpec(url=f"https://data.example.gouv.fr/{name}", format=fmt, **source)
    return validate_file(path, parse_schema(schema), spec, f"https://data.example.gouv.fr/{name}")


def faults(report, code=None):
    return [(f.code, f.row, f.field, f.value) for f in report.faults if code is None or f.code == code]


HEADER = "id,NomAttribuant,Libellé,montant,actif,date,commentaire\n"


def test_an_absent_optional_column_is_one_fault_and_the_rest_is_checked(tmp_path):
    report = judge(tmp_path, "id,NomAttribuant,Libellé,montant,actif,date\n1,Ville,x,-3,oui,2024-01-31\n2,Ville,y,5,non,2024-02-30\n")
    assert faults(report, "missing-label") == [("missing-label", None, "commentaire", None)]
    assert faults(report, "constraint-error") == [("constraint-error", 2, "montant", "-3")]
    assert faults(report, "type-error") == [("type-error", 3, "date", "2024-02-30")]


def test_extra_columns_are_each_reported(tmp_path):
    report = judge(tmp_path, HEADER.strip() + ",source,autre\n1,Ville,x,3,oui,2024-01-31,,a,b\n")
    assert [(f.code, f.value, f.field_number) for f in report.faults] == [("extra-label", "source", 8), ("extra-label", "autre", 9)]


def test_the_schemas_true_false_and_missing_values_are_the_only_ones(tmp_path):
    report = judge(tmp_path, HEADER + "1,Ville,x,3,yes,2024-01-31,\n2,Ville,x,3,non,2024-01-31,\nNC,Ville,x,NC,oui,NC,\n")
    assert faults(report) == [
        ("type-error", 2, "actif", "yes"),
        ("constraint-error", 4, "id", "NC"),  # NC is missing, and id is required
        ("primary-key", 4, None, None),
    ]


def test_a_header_differing_by_case_or_accents_is_mapped_and_its_cells_checked(tmp_path):
    report = judge(tmp_path, "id,nomattribuant,Libelle,montant,actif,date,commentaire\n1,ville,x,3,oui,2024-01-31,\n")
    assert [(f.code, f.field, f.value) for f in report.faults] == [
        ("label-case-or-accents", "NomAttribuant", "nomattribuant"),
        ("label-case-or-accents", "Libellé", "Libelle"),
        ("constraint-error", "NomAttribuant", "ville"),  # its pattern wants a capital
    ]
    assert "nomattribuant" in report.faults[0].message and "casse ou les accents" in report.faults[0].message


def test_blank_rows_are_reported_with_their_numbers(tmp_path):
    report = judge(tmp_path, HEADER + "1,Ville,x,3,oui,2024-01-31,\n,,,,,,\n\n2,Ville,x,3,oui,2024-01-31,\n")
    assert faults(report) == [("blank-row", 3, None, None), ("blank-row", 4, None, None)]


def test_a_bom_before_a_windows_1252_body(tmp_path):
    content = b"\xef\xbb\xbf" + (HEADER + "1,Ville,Sauvegarde des œuvres,3,oui,2024-01-31,été\n").encode("cp1252")
    report = judge(tmp_path, content)
    assert faults(report) == [("bom-before-other-encoding", None, None, "cp1252")]
    assert report.labels[2] == "Libellé" and report.labels[0] == "id"  # no "ï»¿id", no false missing column
    assert "UTF-8" in report.faults[0].message


def test_replacement_characters_and_mojibake_are_reported(tmp_path):
    report = judge(tmp_path, HEADER + "1,Ville,Op\ufffdration,3,oui,2024-01-31,\n2,Ville,x,3,oui,2024-01-31,Ã©tÃ©\n3,Ville,Opération,3,oui,2024-01-31,\n")
    assert faults(report) == [
        ("replacement-character", 2, "Libellé", "Op\ufffdration"),
        ("mojibake", 3, "commentaire", "Ã©tÃ©"),
    ]


def test_an_undecodable_file_is_one_fault_and_is_still_checked(tmp_path):
    content = (HEADER + "1,Ville,x,3,oui,2024-01-31,\n").encode() + b"2,Ville,\xff\xfe,-1,oui,2024-01-31,\n"
    report = judge(tmp_path, content, csv={"encoding": "utf-8"})
    codes = [f.code for f in report.faults]
    assert codes[0] == "encoding-error" and "line 3" in report.faults[0].expected
    assert ("constraint-error", 3, "montant", "-1") in faults(report)
    assert ("replacement-character", 3, "Libellé", "\ufffd\ufffd") in faults(report)


def _bad_styles_workbook(tmp_path: Path) -> bytes:
    """A workbook with labels over a row of codes, whose one font colour openpyxl refuses (as it
    refused a real INSEE workbook)."""
    path = tmp_path / "built.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Communes"
    for row in (["Code géographique", "Libellé géographique", "Population municipale"], ["CODGEO", "LIBGEO", "PMUN"],
                ["01001", "L'Abergement-Clémenciat", 832], ["01002", "L'Abergement-de-Varey", "huit"]):
        sheet.append(row)
    sheet["A1"].font = openpyxl.styles.Font(bold=True, color="FF0000FF")
    book.save(path)
    source = zipfile.ZipFile(path)
    patched = io.BytesIO()
    with zipfile.ZipFile(patched, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/styles.xml":
                data = data.replace(b'<color rgb="FF0000FF" />', b'<color rgb="invalid" />')
            target.writestr(item, data)
    return patched.getvalue()


def test_a_workbook_openpyxl_refuses_with_a_row_of_codes(tmp_path):
    schema = {"fields": [{"name": "Code géographique", "type": "string", "constraints": {"pattern": "[0-9AB]{5}"}},
                         {"name": "Libellé géographique"}, {"name": "Population municipale", "type": "integer"}]}
    report = judge(tmp_path, _bad_styles_workbook(tmp_path), schema, name="populations.xlsx")
    assert report.detected["header_rows"] == 2
    assert report.rows == 2  # the codes are not a data row
    assert faults(report) == [("type-error", 4, "Population municipale", "huit")]
    assert report.source == "https://data.example.gouv.fr/populations.xlsx"
    assert str(tmp_path) not in report.to_text()


def test_a_repeated_header_and_the_files_other_structural_faults(tmp_path):
    report = judge(tmp_path, "id,NomAttribuant,Libellé,montant,actif,date,commentaire,montant\n1,Ville,x,3,oui,2024-01-31,,9\n\n2,Ville\n3,Ville,x,3,oui,2024-01-31,,9,extra\n")
    assert faults(report) == [
        ("duplicate-label", None, "montant", "montant"),
        ("blank-row", 3, None, None),
        *[("missing-cell", 4, name, "") for name in ("Libellé", "montant", "actif", "date", "commentaire", "montant")],
        ("extra-cell", 5, "", "extra"),
    ]


def test_rows_are_numbered_as_records_across_the_arrow_to_python_handover(tmp_path):
    """A ragged row far into a large file: Arrow reads the first blocks, Python the rest, and every
    row keeps its number (a quoted cell spanning lines counts as one row)."""
    lines = [HEADER, '1,Ville,"deux\nlignes",3,oui,2024-01-31,\n']
    lines += [f"{i},Ville,x,{i},oui,2024-01-31,{'a' * 20}\n" for i in range(2, 100_000)]
    lines.append("100000,Ville,x,-5,oui,2024-01-31\n")  # one cell short, and a negative amount
    lines.append("100001,Ville,x,7,maybe,2024-01-31,\n")
    report = judge(tmp_path, "".join(lines))
    assert 100_000 > source.BATCH_ROWS  # Arrow gave a batch before handing over
    assert faults(report) == [
        ("constraint-error", 100001, "montant", "-5"),
        ("missing-cell", 100001, "commentaire", ""),
        ("type-error", 100002, "actif", "maybe"),
    ]
    assert report.rows == 100001


@pytest.mark.parametrize("fast", [True, False])
def test_every_fault_is_listed_none_capped(tmp_path, fast):
    body = "".join(f"{i},Ville,x,-{i},oui,2024-01-31,\n" for i in range(1, 3001))
    path = tmp_path / "f.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    spec = SourceSpec(url="https://data.example.gouv.fr/f.csv", format="csv")
    report = validate_file(path, parse_schema(SCHEMA), spec, "f.csv", fast=fast)
    assert len(report.faults) == 3000 and len(report.to_dict()["errors"]) == 3000


def test_control_characters_are_reported(tmp_path):
    report = judge(tmp_path, HEADER + "1,Ville,x\x00y,3,oui,2024-01-31,\x0c\n2,Ville,x,3,oui,2024-01-31,ok\tfine\n")
    assert faults(report) == [("control-character", 2, "Libellé", "x\x00y"), ("control-character", 2, "commentaire", "\x0c")]
    assert "x\\x00y" in report.faults[0].message  # spelled out where people read it


def test_an_empty_file_cannot_be_judged(tmp_path):
    from dinum_pipelines.lib.conformance import SourceError

    for content in (b"", b"\xef\xbb\xbf", b"\n\n"):
        with pytest.raises(SourceError, match="the file is empty"):
            judge(tmp_path, content)


def test_trailing_empty_lines_neither_move_the_header_nor_pass_unseen(tmp_path):
    report = judge(tmp_path, (HEADER + "1,Ville,x,3,oui,2024-01-31,\n").replace("\n", "\r\n") + "\r\n\r\n")
    assert report.labels[0] == "id"
    assert faults(report) == [("blank-row", 3, None, None), ("blank-row", 4, None, None)]
