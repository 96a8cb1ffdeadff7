"""Rows repeating the primary key: what cleaning dropped stays visible, conflicts block."""

from __future__ import annotations

from dinum_pipelines_tests.quality.helpers import clean, dataset, validate_both

COLUMNS = [{"name": "siret"}, {"name": "montant", "type": "number"}]


def test_dropped_repeats_are_a_warning_that_names_the_key_and_rows():
    spec = dataset(COLUMNS, primary_key=["siret"])
    table, cleaning = clean(spec, {"siret": ["1", "2", "1", "1"], "montant": ["5", "6", "5", "5"]})
    report = validate_both(table, spec, cleaning)
    assert report.passed and not report.blocking_failures
    (warning,) = report.warnings
    assert (warning.rule, warning.column, warning.unexpected_count, warning.rows) == (
        "rows_repeating_the_primary_key_dropped", "siret", 2, [3, 4],
    )
    assert "on_duplicate_key: drop_identical" in warning.describe()


def test_conflicting_repeats_block_on_the_key():
    spec = dataset(COLUMNS, primary_key=["siret"])
    table, cleaning = clean(spec, {"siret": ["1", "2", "1"], "montant": ["5", "6", "7"]})
    report = validate_both(table, spec, cleaning)
    assert not report.passed
    assert {o.column for o in report.blocking_failures} == {"siret"}
    assert all(o.rule != "rows_repeating_the_primary_key_dropped" for o in report.outcomes)
