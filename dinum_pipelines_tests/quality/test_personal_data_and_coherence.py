"""The personal-data guard and the coherence rules, through both engines."""

from __future__ import annotations

import pytest

from dinum_pipelines.lib.quality.coherence import profile_table
from dinum_pipelines.lib.declare.registry import RegistryError, parse_dataset_file
from dinum_pipelines_tests.conftest import VALID_DATASET
from dinum_pipelines_tests.quality.helpers import check_text, clean, dataset, failed_columns, validate_both

ELUS = {
    "commune": ["Lyon", "Dijon", "Brest", "Nice"],
    "email_elu": ["jean.dupont@gmail.com", "m.martin@ville-dijon.fr", "contact@mairie-brest.fr", "anne-marie.durand@nice.fr"],
}
LEGAL = {"column": "email_elu", "kinds": ["email"], "legal_basis": "Code général des collectivités territoriales, art. L. 2121-..."}


def test_a_column_of_personal_emails_blocks_publication():
    spec = dataset([{"name": "commune"}, {"name": "email_elu"}])
    report = check_text(spec, ELUS)
    failure = next(o for o in report.blocking_failures if o.family == "personal_data")
    assert failed_columns(report) == {"email_elu"}
    # The functional address contact@mairie-brest.fr is not personal.
    assert failure.samples == ["jean.dupont@gmail.com", "m.martin@ville-dijon.fr", "anne-marie.durand@nice.fr"]
    assert failure.rows == [1, 2, 4]


def test_the_same_column_declared_public_with_its_legal_basis_passes():
    spec = dataset([{"name": "commune"}, {"name": "email_elu"}], personal_data=[LEGAL])
    report = check_text(spec, ELUS)
    # Both columns are still scanned, email_elu for the kinds it does not declare (phone, NIR, IBAN).
    assert report.passed and [o.column for o in report.by_family("personal_data")] == ["commune", "email_elu"]
    scanned = {r["expectation_config"]["kwargs"]["column"]: r["expectation_config"]["kwargs"]["kinds"] for r in report.gx_result["results"] if r["expectation_config"]["type"] == "expect_column_values_to_not_be_personal_data"}
    assert scanned == {"commune": ["email", "phone", "nir", "iban"], "email_elu": ["phone", "nir", "iban"]}


@pytest.mark.parametrize(
    ("values", "personal"),
    [
        (["06 12 34 56 78", "+33 7 12 34 56 78", "01 42 76 40 40"], ["06 12 34 56 78", "+33 7 12 34 56 78"]),
        (["1 84 12 76 451 089 46", "184127645108947", "2 90 02 2A 004 123 41"], ["1 84 12 76 451 089 46"]),
        (["FR76 3000 6000 0112 3456 7890 189", "FR76 3000 6000 0112 3456 7890 188", "GB82WEST12345698765432"],
         ["FR76 3000 6000 0112 3456 7890 189", "GB82WEST12345698765432"]),
    ],
    ids=["mobile phones", "NIR with a valid key", "IBAN with valid mod-97"],
)
def test_phones_nir_and_iban_are_found_by_their_checks(values, personal):
    spec = dataset([{"name": "info"}])
    report = check_text(spec, {"info": values})
    failure = next(o for o in report.blocking_failures if o.family == "personal_data")
    assert failure.samples == personal


def test_name_and_birth_date_columns_identify_persons():
    spec = dataset([{"name": "nom"}, {"name": "date_naissance", "type": "date"}, {"name": "ville"}])
    rows = {"nom": ["Dupont", "Martin", ""], "date_naissance": ["01/02/1980", "", "03/04/1990"], "ville": ["Lyon"] * 3}
    report = check_text(spec, rows)
    failure = next(o for o in report.blocking_failures if o.family == "personal_data")
    assert (failure.column, failure.unexpected_count, failure.rows) == ("nom+date_naissance", 1, [1])
    declared = [{"column": "nom", "kinds": ["name_birth_date"], "legal_basis": "Répertoire national des élus, décret n° 2014-..."}]
    assert check_text(dataset(spec.model_dump()["columns"], personal_data=declared), rows).passed


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"column": "absent", "legal_basis": "Code électoral, art. L. 1"}, r"personal_data\[0\]\.column: 'absent' is not a declared column"),
        ({"column": "email_elu"}, r"field 'personal_data\[0\]\.legal_basis': Field required"),
        ({"column": "email_elu", "legal_basis": "Code électoral, art. L. 1", "kinds": ["adresse"]}, r"field 'personal_data\[0\]\.kinds\[0\]'"),
    ],
)
def test_personal_data_declarations_are_validated_naming_file_and_field(write_registry, entry, message):
    import yaml

    text = VALID_DATASET.format(slug="elus", url="http://127.0.0.1:9/a.csv") + yaml.safe_dump(
        {"columns": [{"name": "email_elu"}], "personal_data": [entry]}
    )
    folder = write_registry({"elus": text})
    with pytest.raises(RegistryError, match=rf"elus\.yaml: .*{message}"):
        parse_dataset_file(folder / "elus.yaml")


COLUMNS = [{"name": "code", "required": True}, {"name": "effectif", "type": "integer"}, {"name": "note"}]


def _previous(rows: dict):
    table, _ = clean(dataset(COLUMNS), rows)
    return profile_table(table)


def test_coherence_with_the_last_published_version():
    previous = _previous({"code": [str(i) for i in range(10)], "effectif": ["1"] * 10, "note": ["a"] * 10})
    # Same shape: passes.
    same = check_text(dataset(COLUMNS), {"code": [str(i) for i in range(9)], "effectif": ["2"] * 9, "note": ["b"] * 9}, previous)
    assert same.passed and not same.warnings
    # Half the rows gone: critical. A column mostly empty: warning.
    dropped = check_text(dataset(COLUMNS), {"code": ["1", "2", "3", "4"], "effectif": ["1", "", "", ""], "note": ["x"] * 4}, previous)
    assert [(o.rule, o.family) for o in dropped.blocking_failures] == [("expect_table_row_count_to_be_between", "coherence")]
    assert [(o.rule, o.column) for o in dropped.warnings] == [("expect_column_proportion_of_non_null_values_to_be_between", "effectif")]


def test_removed_added_and_retyped_columns(tmp_path):
    previous = _previous({"code": ["1", "2"], "effectif": ["1", "2"], "note": ["a", "b"]})
    columns = [{"name": "code", "required": True}, {"name": "effectif"}, {"name": "nouvelle"}]
    spec = dataset(columns, quality={"coherence": {"retyped_columns": "critical"}})
    table, cleaning = clean(spec, {"code": ["1", "2"], "effectif": ["un", "deux"], "nouvelle": ["x", "y"]})
    report = validate_both(table, spec, cleaning, previous)
    blocking = {(o.rule, o.detail) for o in report.blocking_failures}
    assert ("column_type_unchanged", "was int64 in the last published version, now string") in blocking
    assert any(rule == "expect_table_columns_to_match_set" and "'missing': ['note']" in detail for rule, detail in blocking)
    added = next(o for o in report.warnings if o.rule == "expect_table_columns_to_match_set")
    assert "'unexpected': ['nouvelle']" in added.detail
