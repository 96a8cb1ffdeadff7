"""Every Table Schema type, format and constraint, on cells chosen at their edges, judged by us and
by frictionless 5: the same faults, row for row and field for field.

The real files cover what producers use; this file covers the rest of the specification (the
types no real file here has: yearmonth, duration, object, any, time formats; decimalChar,
groupChar, bareNumber; exclusive bounds; field-level missingValues; uniqueKeys) and the spellings
where a fast path could go wrong (spaces around numbers, exponents, underscores, impossible
dates, offsets, leap seconds).
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from dinum_pipelines.lib.conformance import parse_schema, validate_file
from dinum_pipelines.lib.declare.registry import SourceSpec
from dinum_pipelines_tests.conformance import real_pairs
from dinum_pipelines_tests.conformance.deviations import frictionless_view


# field -> (descriptor, cells); every field gets a column, rows are as long as the longest list.
FIELDS: dict[str, tuple[dict, list[str]]] = {
    "s": ({"type": "string", "constraints": {"minLength": 2, "maxLength": 4, "pattern": "[a-zé]+|X[0-9]"}},
          ["ab", "a", "abcde", "été", "X1", "X12", "ab\n", "AB", "x1"]),
    "s_enum": ({"type": "string", "constraints": {"enum": ["oui", "non"]}}, ["oui", "Oui", "non ", "non"]),
    "email": ({"type": "string", "format": "email"}, ["a@b.fr", "a@b", "jean.dupont@gouv.fr", "a b@c.fr", "@x.fr"]),
    "uri": ({"type": "string", "format": "uri"}, ["https://x.fr/a?b=1", "x.fr", "ftp://a", "http:// x", "mailto:a@b.fr"]),
    "uuid": ({"type": "string", "format": "uuid"}, ["65d5b6c7-102c-4440-ac3b-768f708edc0a", "65d5b6c7102c4440ac3b768f708edc0a", "x"]),
    "i": ({"type": "integer", "constraints": {"minimum": -5, "maximum": 100}},
          ["1", " 2", "+3", "-6", "101", "1.0", "1e2", "1_000", "٣", "9223372036854775808", "0x1", "--1"]),
    "i_bare": ({"type": "integer", "bareNumber": False}, ["€12", "12 €", "a1b", "1.5", "-3%"]),
    "n": ({"type": "number", "constraints": {"minimum": 0, "maximum": 10}},
          ["1.5", "0", "10", " 9.99 ", "1e-3", "NaN", "inf", "-0", ".5", "5.", "1,5", "1_0.5", "9" * 20]),
    "n_fr": ({"type": "number", "decimalChar": ",", "groupChar": " ", "constraints": {"minimum": 0}},
             ["1 234,5", "1234,5", "1.5", "-2", "12 3,4", "1,2,3", ",5", "1 234"]),
    "n_group_dot": ({"type": "number", "decimalChar": ",", "groupChar": "."}, ["1.234,5", "1.234", "1,5"]),
    "b": ({"type": "boolean", "trueValues": ["oui", "Oui"], "falseValues": ["non"]}, ["oui", "Oui", "OUI", "non", "true", "1"]),
    "b_default": ({"type": "boolean"}, ["true", "True", "TRUE", "1", "false", "0", "yes", "vrai"]),
    "d": ({"type": "date", "constraints": {"minimum": "2000-01-01", "maximum": "2030-12-31"}},
          ["2020-01-31", "2020-02-30", "2020-1-5", "1999-12-31", "2031-01-01", " 2020-01-01", "2020-01-01T00:00:00", "0000-01-01", "2024-02-29"]),
    "d_fr": ({"type": "date", "format": "%d/%m/%Y"}, ["05/12/2016", "31/02/2016", "5/12/2016", "2016-12-05", "29/02/2023"]),
    "d_year": ({"type": "date", "format": "%Y"}, ["2020", "20", "2020-01-01"]),
    "d_any": ({"type": "date", "format": "any"}, ["2020-01-31", "31 janvier 2020", "Jan 31 2020", "not a date"]),
    "dt": ({"type": "datetime"}, ["2025-10-15T15:00:00Z", "2025-10-15T15:00:00", "2025-10-15T15:00:00+02:00", "2025-10-15 15:00:00",
                                   "2025-10-15T24:00:00", "2025-10-15T23:59:60", "2025-13-15T15:00:00Z", "2025-10-15T15:00"]),
    "dt_fmt": ({"type": "datetime", "format": "%d/%m/%Y %H:%M"}, ["15/10/2025 15:00", "15/10/2025 25:00", "15/10/2025"]),
    "t": ({"type": "time"}, ["15:00:00", "03:00:00", "25:00:00", "15:00", "15:00:00Z", "15:00:00.5"]),
    "t_fmt": ({"type": "time", "format": "%Hh%M"}, ["15h30", "15:30", "24h00"]),
    "y": ({"type": "year", "constraints": {"minimum": 1900}}, ["2020", "1899", "20", "02020", " 202", "abcd"]),
    "ym": ({"type": "yearmonth"}, ["2020-01", "2020-13", "2020-1", "2020", "2020-01-01"]),
    "dur": ({"type": "duration"}, ["P1D", "PT3H", "P1Y2M", "3 heures", "PT"]),
    "gp": ({"type": "geopoint"}, ["2.35, 48.85", "2.35,48.85", "200, 48", "2.35", "a, b"]),
    "gp_array": ({"type": "geopoint", "format": "array"}, ["[2.35, 48.85]", "[2.35]", "[200, 1]", "2.35, 48.85"]),
    "gp_object": ({"type": "geopoint", "format": "object"}, ['{"lon": 2.35, "lat": 48.85}', '{"lon": 2.35}', '{"lat": 1, "lon": 2, "x": 3}']),
    "gj": ({"type": "geojson"}, ['{"type": "Point", "coordinates": [2.35, 48.85]}', '{"type": "Point"}', "[1, 2]", "{}",
                                 '{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}']),
    "obj": ({"type": "object", "constraints": {"minLength": 1}}, ['{"a": 1}', "{}", "[1]", "x"]),
    "arr": ({"type": "array", "constraints": {"maxLength": 2}}, ['["a", "b"]', '["a", "b", "c"]', '{"a": 1}', "[]"]),
    "arr_item": ({"type": "array", "arrayItem": {"type": "string", "constraints": {"enum": ["moteur", "mental"]}}},
                 ['["moteur"]', '["moteur", "visuel"]', '["mental"]']),
    "any": ({"type": "any", "constraints": {"enum": ["a", "b"]}}, ["a", "c"]),
    "req": ({"type": "string", "constraints": {"required": True}}, ["x", "", "NA", "y"]),
    "miss": ({"type": "integer", "missingValues": ["-", "n/a"]}, ["1", "-", "n/a", "", "x"]),
    "uniq": ({"type": "integer", "constraints": {"unique": True}}, ["1", "2", "01", "2", "3", "+3"]),
    "uniq_s": ({"type": "string", "constraints": {"unique": True}}, ["a", "b", "a", "A", "b", "c"]),
}


def _document() -> dict:
    return {
        "fields": [{"name": name, **descriptor} for name, (descriptor, _) in FIELDS.items()],
        "missingValues": ["", "NA"],
        "primaryKey": ["s", "i"],
    }


def _write(tmp_path) -> tuple:
    rows = max(len(cells) for _, cells in FIELDS.values())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FIELDS)
    for index in range(rows):
        writer.writerow([cells[index] if index < len(cells) else "" for _, cells in FIELDS.values()])
    path = tmp_path / "types.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path, _document()


def _frictionless_faults(path, document) -> list:
    report = real_pairs.frictionless_report(path, document)
    return [(code, field, row) for code, field, row, _ in report.flatten(["type", "fieldName", "rowNumber", "note"])]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
def test_every_type_and_constraint_as_frictionless_judges_it(tmp_path, fast):
    path, document = _write(tmp_path)
    schema = parse_schema(document)
    ours = validate_file(path, schema, SourceSpec(url="http://127.0.0.1/types.csv", format="csv"), "types.csv", fast=fast)
    theirs = _frictionless_faults(path, document)
    seen = frictionless_view(ours, schema)
    expected = {}
    for code, field, _ in theirs:
        expected[(code, field)] = expected.get((code, field), 0) + 1
    differences = {key: (seen.get(key, 0), expected.get(key, 0)) for key in set(seen) | set(expected) if seen.get(key, 0) != expected.get(key, 0)}
    assert not differences, f"(code, field): (ours as frictionless, frictionless) {differences}"
    # Row for row, on the codes neither side treats differently.
    mine = {(f.code, f.field, f.row) for f in ours.faults if f.code in ("type-error", "constraint-error", "unique-error")}
    theirs_cells = {tuple(fault) for fault in theirs if fault[0] in ("type-error", "constraint-error", "unique-error")}
    pattern_only = {(f.code, f.field, f.row) for f in ours.faults if f.constraint == "pattern"}
    assert mine - pattern_only == theirs_cells - pattern_only


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
def test_exclusive_bounds(tmp_path, fast):
    # frictionless 5 reads them only in a v2 data package; the rule is plain: strictly inside.
    path = tmp_path / "x.csv"
    path.write_text("n\n0\n0.5\n10\n9.99\nNaN\n", encoding="utf-8")
    document = {"fields": [{"name": "n", "type": "number", "constraints": {"exclusiveMinimum": 0, "exclusiveMaximum": 10}}]}
    report = validate_file(path, parse_schema(document), SourceSpec(url="http://127.0.0.1/x.csv", format="csv"), "x.csv", fast=fast)
    assert sorted((f.row, f.constraint) for f in report.faults) == [
        (2, "exclusiveMinimum"), (4, "exclusiveMaximum"), (6, "exclusiveMaximum"), (6, "exclusiveMinimum"),
    ]


def test_unique_keys_are_our_own_check(tmp_path):
    path = tmp_path / "k.csv"
    path.write_text("a,b,c\n1,x,1\n1,y,2\n1,x,3\n,x,4\n,x,5\n", encoding="utf-8")
    document = {"fields": [{"name": "a", "type": "integer"}, {"name": "b"}, {"name": "c"}], "uniqueKeys": [["a", "b"]]}
    report = validate_file(path, parse_schema(document), SourceSpec(url="http://127.0.0.1/k.csv", format="csv"), "k.csv")
    assert [(f.code, f.row) for f in report.faults] == [("unique-keys", 4), ("unique-keys", 6)]


def test_lenient_reading_of_old_schemas():
    document = {
        "name": "Attributs des arbres urbains",
        "fields": [
            {"name": "id", "type": "integer", "required": "true", "constraints": {"unique": "true"}},
            {"name": "date", "type": "date", "format": "fmt:%d/%m/%Y"},
            {"name": "x", "type": "float"},
            {"name": "y", "constraints": "oops"},
        ],
        "primaryKey": "id",
        "foreignKeys": [{"fields": "id", "reference": {"resource": "", "fields": "id"}}],
    }
    schema = parse_schema(document)
    field = schema.field_named("id")
    assert field.constraints == {"unique": True}  # `required` beside `constraints`: reported, not applied
    assert schema.field_named("date").format == "%d/%m/%Y"
    assert schema.field_named("x").type == "any" and schema.primary_key == ("id",)
    assert schema.foreign_keys[0].fields == ("id",)
    assert len(schema.warnings) == 6  # one per departure
    assert any("Attributs des arbres urbains" in warning for warning in schema.warnings)


def test_json_dump_is_parsable(tmp_path):
    path, document = _write(tmp_path)
    report = validate_file(path, parse_schema(document), SourceSpec(url="http://127.0.0.1/t.csv", format="csv"), "t.csv")
    assert json.loads(json.dumps(report.to_dict(), default=str))["error_count"] == len(report.faults)
