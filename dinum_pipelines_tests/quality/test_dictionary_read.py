"""The check step reads repetitive text columns from the clean Parquet's dictionaries: every rule
must give what plain GX and the in-memory engine give on the same table."""

from __future__ import annotations

import pytest

from dinum_pipelines.lib.clean import tables
from dinum_pipelines_tests.quality.helpers import clean, dataset, validate_both

# Each text column repeats its values (at most half of them distinct, in the whole table and in
# its first row group of 3 rows), with missing cells, values that break their rule, repeated keys
# and personal data among the repeated values.
ROWS = {
    "commune": ["Lyon", "Lyon", "Lyon", "Dijon", "", "Brest", "Lyon", "Dijon", "Nice-sur-Mer-la-Longue", "Brest", "Brest", "Nice-sur-Mer-la-Longue"],
    "code": ["69001", "69001", "69001", "2100", "69001", "29200", "69001", "2100", "06000", "29200", "", "06000"],
    "statut": ["public", "public", "public", "privé", "associatif", "public", "privé", "associatif", "public", "public", "", "privé"],
    "contact": ["mairie@lyon.fr"] * 3 + ["jean.dupont@gmail.com", "", "mairie@brest.fr", "mairie@lyon.fr", "jean.dupont@gmail.com", "", "", "", ""],
    "nom": ["Dupont", "Dupont", "Dupont", "Martin", "", "Martin", "Dupont", "", "Martin", "", "", "Dupont"],
    "date_naissance": ["01/02/1980", "", "", "03/04/1990", "", "", "01/02/1980", "", "", "", "", "05/06/1970"],
}
COLUMNS = [
    {"name": "commune", "max_length": 12, "severity": "warning"},
    {"name": "code", "pattern": r"\d{5}", "required": True},
    {"name": "statut", "enum": ["public", "privé"]},
    {"name": "contact", "unique": True},
    {"name": "nom"},
    {"name": "date_naissance", "type": "date"},
]
TEXT = ["commune", "code", "statut", "contact", "nom"]


@pytest.fixture
def dictionaries_read(monkeypatch) -> list[list[str]]:
    """The columns each Parquet read of the check step took from the file's dictionaries."""
    seen: list[list[str]] = []
    original = tables.parquet_batches

    def recording(path, batch_rows=None, columns=None, dictionaries=None):
        seen.append(sorted(dictionaries or []))
        return original(path, batch_rows, columns, dictionaries)

    monkeypatch.setattr(tables, "parquet_batches", recording)
    return seen


def test_rules_on_columns_read_from_the_parquet_dictionaries_match_gx(dictionaries_read):
    spec = dataset(COLUMNS, primary_key=["commune", "code"])
    table, cleaning = clean(spec, ROWS)
    report = validate_both(table, spec, cleaning)
    assert sorted(TEXT) in dictionaries_read
    failed = {(o.rule, o.column): (o.unexpected_count, o.rows) for o in report.outcomes if not o.success and o.rule.startswith("expect_")}
    assert failed == {
        ("expect_column_values_to_not_be_null", "commune"): (1, [4]),
        ("expect_column_value_lengths_to_be_between", "commune"): (2, [8, 11]),
        ("expect_column_values_to_not_be_null", "code"): (1, [10]),
        ("expect_column_values_to_match_regex", "code"): (2, [3, 7]),
        ("expect_column_values_to_be_in_set", "statut"): (2, [4, 7]),
        ("expect_column_values_to_be_unique", "contact"): (5, [1, 2, 3, 6, 7]),
        ("expect_compound_columns_to_be_unique", "commune+code"): (9, [1, 2, 3, 5, 6]),
        ("expect_column_values_to_not_be_personal_data", "contact"): (2, [3, 7]),
        ("expect_column_pair_values_to_not_be_name_and_birth_date", "nom+date_naissance"): (4, [1, 3, 6, 11]),
    }


def test_a_column_mostly_distinct_is_read_as_text(dictionaries_read):
    spec = dataset([{"name": "ref", "pattern": r"R\d+"}, {"name": "commune"}])
    rows = {"ref": [f"R{n}" for n in range(11)] + ["X"], "commune": ["Lyon"] * 12}
    table, cleaning = clean(spec, rows)
    report = validate_both(table, spec, cleaning)
    assert ["commune"] in dictionaries_read
    (failure,) = [o for o in report.outcomes if not o.success]
    assert (failure.column, failure.rows, failure.samples) == ("ref", [12], ["X"])
