"""The publication policy for a file whose shape differs from its declaration (issue 11, point 5).

Each case is a file's text table as the readers give it; the cleaned table is what would be
published, and `report.structure` what the quality check turns into warnings or blocking failures.
"""

from __future__ import annotations

import pandas as pd
import pytest

from dinum_pipelines.lib.clean.cleaning import clean_table
from dinum_pipelines.lib.quality import validate_dataset
from dinum_pipelines.lib.declare.registry import DatasetSpec

BASE = {
    "slug": "ds_structure",
    "title": "Jeu de test",
    "description": "x" * 120,
    "organization": {"slug": "org", "name": "Org"},
    "source": {"url": "https://example.org/f.csv", "format": "csv"},
    "license": "lov2",
    "frequency": "monthly",
}
COLUMNS = [
    {"name": "code", "source": "Code", "required": True},
    {"name": "nom_attribuant", "source": "nomAttribuant"},
    {"name": "montant", "type": "number"},
]


def spec(**extra) -> DatasetSpec:
    return DatasetSpec.model_validate({**BASE, "columns": extra.pop("columns", COLUMNS), **extra})


def frame(columns: list[str], rows: list[list[str | None]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns, dtype="str")


def findings(report, kind):
    return [finding for finding in report.structure if finding.kind == kind]


def blocking(dataset: DatasetSpec, cleaned, report) -> list[str]:
    quality = validate_dataset(cleaned, dataset, report)
    return [outcome.rule for outcome in quality.outcomes if not outcome.success and outcome.severity == "critical"]


def test_extra_columns_kept_as_text_with_a_warning():
    dataset = spec()
    cleaned, report = clean_table(frame(["Code", "nomAttribuant", "montant", "Commentaire"], [["01", "A", "1,5", "x"]]), dataset, ",")
    assert list(cleaned.columns) == ["code", "nom_attribuant", "montant", "commentaire"]
    [finding] = findings(report, "extra_columns")
    assert finding.severity == "warning" and finding.columns == ["Commentaire"]
    assert blocking(dataset, cleaned, report) == []


@pytest.mark.parametrize(("policy", "severity", "published"), [("drop", "warning", False), ("block", "critical", False)])
def test_extra_columns_dropped_or_blocking(policy, severity, published):
    dataset = spec(extra_columns=policy)
    cleaned, report = clean_table(frame(["Code", "nomAttribuant", "montant", "Commentaire"], [["01", "A", "1,5", "x"]]), dataset, ",")
    assert ("commentaire" in cleaned.columns) is published
    [finding] = findings(report, "extra_columns")
    assert finding.severity == severity
    assert (blocking(dataset, cleaned, report) == ["file_structure_extra_columns"]) is (policy == "block")


def test_missing_optional_column_published_empty_with_a_warning():
    dataset = spec()
    cleaned, report = clean_table(frame(["Code", "montant"], [["01", "1,5"], ["02", "2"]]), dataset, ",")
    assert cleaned["nom_attribuant"].isna().all() and list(cleaned.columns) == ["code", "nom_attribuant", "montant"]
    [finding] = findings(report, "missing_columns")
    assert finding.severity == "warning" and finding.columns == ["nomAttribuant"]
    assert blocking(dataset, cleaned, report) == []


def test_missing_required_column_blocks_and_the_rest_is_still_typed():
    dataset = spec()
    cleaned, report = clean_table(frame(["nomAttribuant", "montant"], [["A", "1,5"], ["B", "oops"]]), dataset, ",")
    assert cleaned["montant"].tolist()[0] == 1.5
    assert report.issues[0].column == "montant"  # the other columns are still checked
    [finding] = findings(report, "missing_columns")
    assert finding.severity == "critical" and finding.columns == ["Code"]
    assert "file_structure_missing_columns" in blocking(dataset, cleaned, report)


def test_header_differing_by_case_or_accents_is_read_with_a_warning():
    dataset = spec(columns=[{"name": "nom_attribuant", "source": "nomAttribuant"}, {"name": "libelle", "source": "Libellé"}])
    cleaned, report = clean_table(frame(["NomAttribuant", "LIBELLE"], [["A", "b"]]), dataset, ",")
    assert cleaned.to_dict("records") == [{"nom_attribuant": "A", "libelle": "b"}]
    [finding] = findings(report, "header_spelling")
    assert finding.severity == "warning" and sorted(finding.columns) == ["libelle", "nom_attribuant"]
    assert findings(report, "missing_columns") == [] and findings(report, "extra_columns") == []


def test_rename_reads_an_older_vocabulary():
    dataset = spec(rename={"coordonnnées": "nomAttribuant", "siret": "Code"})
    cleaned, report = clean_table(frame(["siret", "coordonnnées", "montant"], [["01", "A", "2"]]), dataset, ",")
    assert cleaned.to_dict("records") == [{"code": "01", "nom_attribuant": "A", "montant": 2.0}]
    assert report.structure == []
    assert report.renamed == {"siret": "code", "coordonnnées": "nom_attribuant"}


def test_rename_must_name_a_declared_column():
    with pytest.raises(ValueError, match="rename: 'old' -> 'nowhere'"):
        spec(rename={"old": "nowhere"})


def test_blank_rows_are_dropped_and_counted():
    dataset = spec()
    raw = frame(["Code", "nomAttribuant", "montant"], [["01", "A", "1"], [None, None, None], ["  ", " ", None], ["02", "B", "2"]])
    cleaned, report = clean_table(raw, dataset, ",")
    assert cleaned["code"].tolist() == ["01", "02"]
    [finding] = findings(report, "blank_rows")
    assert finding.count == 2 and finding.rows == [2, 3] and finding.severity == "warning"
    assert report.rows_in == 4 and report.rows_out == 2


def test_repeated_empty_header_is_dropped_with_a_warning():
    dataset = spec()
    raw = frame(["Code", "nomAttribuant", "montant", "montant"], [["01", "A", "1", None], ["02", "B", "2", " "]])
    cleaned, report = clean_table(raw, dataset, ",")
    assert list(cleaned.columns) == ["code", "nom_attribuant", "montant"] and cleaned["montant"].tolist() == [1.0, 2.0]
    [finding] = findings(report, "duplicate_headers")
    assert finding.severity == "warning" and finding.columns == ["montant"]
    assert blocking(dataset, cleaned, report) == []


def test_repeated_header_with_values_blocks():
    dataset = spec()
    raw = frame(["Code", "nomAttribuant", "montant", "montant"], [["01", "A", "1", "7"]])
    cleaned, report = clean_table(raw, dataset, ",")
    [finding] = findings(report, "duplicate_headers")
    assert finding.severity == "critical"
    assert "file_structure_duplicate_headers" in blocking(dataset, cleaned, report)


def test_duplicate_key_rows_keep_their_source_row_numbers_after_blank_rows():
    dataset = spec(columns=[{"name": "code", "source": "Code"}, {"name": "v", "source": "v"}], primary_key=["code"])
    raw = frame(["Code", "v"], [[None, None], ["01", "a"], ["01", "a"], ["02", "b"]])
    cleaned, report = clean_table(raw, dataset, ",")
    assert report.duplicates.dropped_rows == [3]
    assert cleaned["code"].tolist() == ["01", "02"]
