"""A pattern RE2 refuses or reads otherwise than Python's `re` is evaluated as plain GX evaluates it."""

from __future__ import annotations

import pytest

from dinum_pipelines_tests.quality.helpers import check_text, dataset

CODES = ["75001", "00123", "٧٥٠٠١", "2A004", "", "75001", "00999"]


@pytest.mark.parametrize(
    ("pattern", "failing"),
    [
        (r"(?!00)\d{5}", ["00123", "2A004", "00999"]),  # a lookahead (RE2 refuses it); Arabic-Indic digits are \d
        (r"\d{5}", ["2A004"]),
        (r"[0-9]{5}", ["٧٥٠٠١", "2A004"]),
        (r"(\d)\1\d{3}", ["75001", "٧٥٠٠١", "2A004", "75001"]),  # a backreference
    ],
)
def test_a_pattern_is_read_as_gx_reads_it(pattern, failing):
    spec = dataset([{"name": "code", "pattern": pattern}, {"name": "commune"}])
    report = check_text(spec, {"code": CODES, "commune": ["Paris"] * len(CODES)})
    (outcome,) = [o for o in report.outcomes if o.rule == "expect_column_values_to_match_regex"]
    assert "could not be evaluated" not in outcome.detail
    assert outcome.samples == failing
