"""Declared rules compiled to Great Expectations and run for real on small tables."""

from __future__ import annotations

import pandas as pd

from dinum_pipelines.lib.clean.cleaning import clean_table
from dinum_pipelines.lib.quality import validate_dataset
from dinum_pipelines_tests.lib.test_cleaning import spec, text

COLUMNS = [
    {"name": "code", "required": True, "pattern": r"\d{5}|2[AB]\d{3}"},
    {"name": "effectif", "type": "integer", "minimum": 0, "severity": "warning"},
    {"name": "type", "enum": ["public", "privé"]},
]


def run(frame_text: dict, **extra):
    dataset = spec(COLUMNS, primary_key=["code"], **extra)
    cleaned, cleaning = clean_table(pd.DataFrame({k: text(v) for k, v in frame_text.items()}), dataset, ",")
    return validate_dataset(cleaned, dataset, cleaning)


def test_clean_data_passes_every_rule():
    report = run({"code": ["01053", "2A004"], "effectif": ["12", "0"], "type": ["public", "privé"]})
    assert report.passed and not report.warnings
    assert report.success_percent == 100.0
    rules = {(o.rule, o.column) for o in report.outcomes}
    assert ("expect_column_values_to_match_regex", "code") in rules
    assert ("expect_column_values_to_be_unique", "code") in rules


def test_pattern_failure_blocks_and_names_column_rows_and_values():
    report = run({"code": ["01053", "2C004", "2A004", "2C004"], "effectif": ["1", "2", "3", "4"], "type": ["public"] * 4})
    assert not report.passed
    failure = next(o for o in report.blocking_failures if o.rule == "expect_column_values_to_match_regex")
    assert failure.column == "code" and failure.unexpected_count == 2
    assert failure.samples == ["2C004", "2C004"] and failure.rows == [2, 4]
    assert "column 'code'" in failure.describe()


def test_pattern_is_a_full_match():
    report = run({"code": ["010534"], "effectif": ["1"], "type": ["public"]})
    assert not report.passed


def test_warning_rule_does_not_block():
    report = run({"code": ["01053", "01054"], "effectif": ["-3", "2"], "type": ["public", "public"]})
    assert report.passed
    assert [(o.column, o.rule) for o in report.warnings] == [("effectif", "expect_column_values_to_be_between")]


def test_unparsed_values_fail_their_type_rule():
    report = run({"code": ["01053"], "effectif": ["beaucoup"], "type": ["public"]})
    parse = next(o for o in report.outcomes if o.rule == "values_parse_as_integer")
    assert not parse.success and parse.samples == ["beaucoup"] and parse.severity == "warning"


def test_duplicate_primary_key_and_enum():
    report = run({"code": ["01053", "01053"], "effectif": ["1", "1"], "type": ["public", "associatif"]})
    failed = {(o.rule, o.column) for o in report.blocking_failures}
    assert ("expect_column_values_to_be_unique", "code") in failed
    assert ("expect_column_values_to_be_in_set", "type") in failed


def test_empty_table_fails():
    report = run({"code": [], "effectif": [], "type": []})
    assert any(o.rule == "expect_table_row_count_to_be_between" for o in report.blocking_failures)
