"""French numbers and dates, codes as text, blanks and spaces, and nothing dropped silently."""

from __future__ import annotations

import pandas as pd
import pytest

from dinum_pipelines.lib.cleaning import CleaningError, clean_table, parse_dates, parse_numbers, snake_case
from dinum_pipelines.lib.registry import DatasetSpec

BASE = {
    "slug": "ds_test",
    "title": "Jeu de test",
    "description": "x" * 120,
    "organization": {"slug": "org", "name": "Org"},
    "source": {"url": "http://127.0.0.1:9/a.csv", "format": "csv"},
    "license": "lov2",
    "frequency": "monthly",
}


def spec(columns, **extra) -> DatasetSpec:
    return DatasetSpec.model_validate({**BASE, "columns": columns, **extra})


def text(values) -> pd.Series:
    return pd.Series(values, dtype="str")


def test_french_numbers():
    parsed = parse_numbers(text(["26 956,00", "1\u00a0234,5", "1\u202f000", "-3,5", "12", "1.234,5"]), ",")
    assert parsed.tolist() == [26956.0, 1234.5, 1000.0, -3.5, 12.0, 1234.5]


def test_point_decimal_numbers():
    assert parse_numbers(text(["3.25", "1 000.5"]), ".").tolist() == [3.25, 1000.5]


def test_mixed_date_formats_to_iso():
    parsed = parse_dates(text(["03/02/2024", "2024-02-03", "2024/02/03", "31/02/2024"]), ("%d/%m/%Y", "%Y-%m-%d", "%Y/%m/%d"))
    assert [d.date().isoformat() if pd.notna(d) else None for d in parsed] == ["2024-02-03"] * 3 + [None]


def test_snake_case_headers():
    assert snake_case("Montant attribué (€)") == "montant_attribue"
    assert snake_case("B/T/Q") == "b_t_q"
    assert snake_case("1 Articles CGI") == "c_1_articles_cgi"


def test_clean_table_types_renames_and_reports():
    raw = pd.DataFrame(
        {
            "Code INSEE": text(["01053", " 2A004 ", "97411", ""]),
            "Montant (€)": text(["26 956,00", "7,5", "n/a", None]),
            "Date de décision": text(["03/02/2024", "2024-02-04", "31/02/2024", "  "]),
            "Remarque": text(["  ok ", "", None, "x"]),
        }
    )
    cleaned, report = clean_table(
        raw,
        spec(
            [
                {"name": "code_commune", "source": "Code INSEE"},
                {"name": "montant", "source": "Montant (€)", "type": "number"},
                {"name": "date_decision", "source": "Date de décision", "type": "date"},
            ]
        ),
        ",",
    )
    assert list(cleaned.columns) == ["code_commune", "montant", "date_decision", "remarque"]
    assert cleaned["code_commune"].tolist()[:3] == ["01053", "2A004", "97411"]
    assert pd.isna(cleaned["code_commune"].iloc[3])
    assert cleaned["montant"].tolist()[:2] == [26956.0, 7.5]
    assert cleaned["remarque"].tolist()[0] == "ok" and pd.isna(cleaned["remarque"].iloc[1])
    issues = {issue.column: issue for issue in report.issues}
    assert issues["montant"].count == 1 and issues["montant"].samples == ["n/a"] and issues["montant"].rows == [3]
    assert issues["date_decision"].samples == ["31/02/2024"] and issues["date_decision"].rows == [3]
    assert report.renamed["Code INSEE"] == "code_commune"


def test_integer_column_refuses_fractions():
    raw = pd.DataFrame({"n": text(["12", "3,5", "1 000"])})
    cleaned, report = clean_table(raw, spec([{"name": "n", "type": "integer"}]), ",")
    assert str(cleaned["n"].dtype) == "Int64"
    assert cleaned["n"].tolist()[0] == 12 and cleaned["n"].tolist()[2] == 1000
    assert report.issues[0].samples == ["3,5"]


def test_booleans():
    raw = pd.DataFrame({"b": text(["Oui", "non", "VRAI", "peut-être"])})
    cleaned, report = clean_table(raw, spec([{"name": "b", "type": "boolean"}]), ",")
    assert cleaned["b"].tolist()[:3] == [True, False, True]
    assert report.issues[0].samples == ["peut-être"]


def test_missing_declared_column_is_named():
    raw = pd.DataFrame({"a": text(["1"])})
    with pytest.raises(CleaningError, match=r"declared column\(s\) \['Code INSEE'\] not found"):
        clean_table(raw, spec([{"name": "code", "source": "Code INSEE"}]), ",")


def test_undeclared_columns_can_be_dropped():
    raw = pd.DataFrame({"a": text(["1"]), "b": text(["2"])})
    cleaned, _ = clean_table(raw, spec([{"name": "a"}], keep_undeclared_columns=False), ",")
    assert list(cleaned.columns) == ["a"]
