"""Validata's custom checks, as the real schemas of schema.data.gouv.fr declare them, on files made
here: each check fails on the rows built to break it, and only there."""

from __future__ import annotations

import csv
import io
import json

from dinum_pipelines.lib.conformance import parse_schema, validate_file
from dinum_pipelines.lib.declare.registry import SourceSpec
from dinum_pipelines_tests.conformance.real_pairs import CONFORMANCE

DELIBERATIONS = CONFORMANCE / "schema.data.gouv.fr__scdl-deliberations-2.1.5__schema.json"
VALID_SIRET = "21380185500015"  # Grenoble's town hall: Luhn-valid
GOOD = {
    "COLL_NOM": "Ville de Grenoble", "COLL_SIRET": VALID_SIRET, "DELIB_ID": "2024-001", "DELIB_DATE": "2024-01-29",
    "DELIB_MATIERE_CODE": "7.1", "DELIB_MATIERE_NOM": "Finances locales/Décisions budgétaires", "DELIB_OBJET": "Budget primitif",
    "BUDGET_ANNEE": "2024", "BUDGET_NOM": "Budget principal", "PREF_ID": "038-213801855-20240129-1", "PREF_DATE": "2024-02-01",
    "VOTE_EFFECTIF": "59", "VOTE_REEL": "55", "VOTE_POUR": "40", "VOTE_CONTRE": "10", "VOTE_ABSTENTION": "5",
    "DELIB_URL": "https://example.gouv.fr/delib/1.pdf",
}


def judge(tmp_path, schema: dict, rows: list[dict]):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[field["name"] for field in schema["fields"]], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / "f.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return validate_file(path, parse_schema(schema), SourceSpec(url="http://127.0.0.1/f.csv", format="csv"), "f.csv")


def custom(report) -> list[tuple[str, int]]:
    return [(f.code, f.row) for f in report.faults if f.code not in ("type-error", "constraint-error")]


def test_the_deliberations_schemas_checks(tmp_path):
    schema = json.loads(DELIBERATIONS.read_bytes())
    rows = [
        GOOD,
        {**GOOD, "COLL_SIRET": "21380185500016"},                       # 3: Luhn fails
        {**GOOD, "BUDGET_ANNEE": "2025/2024"},                          # 4: interval backwards
        {**GOOD, "BUDGET_ANNEE": "2024/2025"},                          # valid interval
        {**GOOD, "BUDGET_NOM": ""},                                     # 6: BUDGET_ANNEE without BUDGET_NOM
        {**GOOD, "VOTE_ABSTENTION": ""},                                # 7: one vote column empty
        {**GOOD, "PREF_DATE": "2024-01-01"},                            # 8: sent before it was voted
        {**GOOD, "VOTE_REEL": "60", "VOTE_POUR": "45"},                 # 9: more voters than members
        {**GOOD, "VOTE_POUR": "39"},                                    # 10: the sum is wrong
        {**GOOD, "DELIB_MATIERE_NOM": "Voirie/Stationnement"},          # 11: not in the nomenclature
        {**GOOD, "BUDGET_ANNEE": "", "BUDGET_NOM": "", "VOTE_EFFECTIF": "", "VOTE_REEL": "", "VOTE_POUR": "",
         "VOTE_CONTRE": "", "VOTE_ABSTENTION": "", "PREF_DATE": ""},    # all optional groups empty: valid
    ]
    report = judge(tmp_path, schema, rows)
    assert custom(report) == [
        ("french-siret-value", 3),
        ("year-interval-value", 4),
        ("cohesive-columns-value", 6),
        ("cohesive-columns-value", 7),
        ("compare-columns-value", 8),
        ("compare-columns-value", 9),  # 60 voters, 59 members (45 + 10 + 5 = 60: the sum holds)
        ("sum-columns-value", 10),
        ("nomenclature-actes-value", 11),
    ]
    assert report.schema_warnings == []
    assert "VOTE_REEL (60) devrait être >= VOTE_POUR" not in report.to_text()  # 60 >= 45 holds
    assert "VOTE_EFFECTIF (59) devrait être >= VOTE_REEL (60)" in report.to_text()


def test_siren_phone_opening_hours_and_gps(tmp_path):
    schema = {
        "fields": [{"name": "siren"}, {"name": "tel"}, {"name": "horaires"}, {"name": "xy", "type": "geopoint", "format": "array"}],
        "custom_checks": [
            {"name": "french-siren-value", "params": {"column": "siren"}},
            {"name": "phone-number-value", "params": {"column": "tel"}},
            {"name": "opening-hours-value", "params": {"column": "horaires"}},
            {"name": "french_gps_coordinates", "params": {"column": "xy"}},
            {"name": "no-such-check", "params": {}},
            {"name": "one-of-required", "params": {"column1": "siren"}},
        ],
    }
    rows = [
        {"siren": "110043015", "tel": "01 23 45 67 89", "horaires": "Mo-Fr 09:00-12:00,14:00-17:30; Sa 09:00-12:00", "xy": "[2.35, 48.85]"},
        {"siren": "110043016", "tel": "12 34", "horaires": "lundi 9h-12h", "xy": "[48.85, 2.35]"},
        {"siren": "", "tel": "+33 1 23 45 67 89", "horaires": "24/7", "xy": "[55.45, -20.88]"},
    ]
    report = judge(tmp_path, schema, rows)
    assert custom(report) == [
        ("french-siren-value", 3), ("phone-number-value", 3), ("opening-hours-value", 3), ("french-gps-coordinates", 3),
    ]
    assert any("no-such-check" in warning for warning in report.schema_warnings)
    assert any("one-of-required" in warning for warning in report.schema_warnings)  # its params are incomplete


def test_one_of_required(tmp_path):
    schema = {"fields": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
              "custom_checks": [{"name": "one-of-required", "params": {"column1": "a", "column2": "b"}}]}
    report = judge(tmp_path, schema, [{"a": "x", "b": "", "c": "1"}, {"a": "", "b": "", "c": "2"}, {"a": "", "b": "y", "c": "3"}])
    assert custom(report) == [("one-of-required", 3)]
