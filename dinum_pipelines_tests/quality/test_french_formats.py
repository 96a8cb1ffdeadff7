"""French formats as expectations: valid generated values pass, invalid ones fail and name the field.

Every case runs through both engines (plain GX with the custom expectations, and the Arrow
engine), which must return the same validation result.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dinum_pipelines.defs.quality.checks import check_result
from dinum_pipelines.lib.quality import frformats
from dinum_pipelines.lib.declare.registry import RegistryError, parse_dataset_file
from dinum_pipelines_tests.quality.helpers import check_text, dataset, failed_columns

# format (+ options), valid values, invalid values (each must be reported)
CASES = {
    "insee_commune": ({}, ["01053", "2A004", "75056", "97411"], ["2C004", "75000", "99999"]),
    "insee_commune_2023": ({"year": 2023}, ["01172", "2B033"], ["24430"]),  # 24430 was created in 2024
    "insee_commune_2024": ({"year": 2024}, ["24430", "27676"], ["01172"]),  # 01172 merged away in 2024
    "code_postal": ({}, ["01000", "75001", "97400", "20000"], ["00000", "7500", "75OO1"]),
    "departement": ({}, ["01", "2A", "2B", "971", "976"], ["20", "99", "1"]),
    "region": ({}, ["11", "84", "94", "01"], ["22", "00"]),
    "region_2015": ({"year": 2015}, ["22", "11"], ["84"]),
    "siren": ({}, ["732829320", "356000000", "732 829 320"], ["732829321", "12345678", "abcdefghi"]),
    "siret": ({}, ["73282932000074", "35600000000048", "35600000049837", "732 829 320 00074"], ["73282932000075", "35600000049838", "7328293200007"]),
    "email": ({}, ["contact@mairie-lyon.fr", "accueil.prefecture@interieur.gouv.fr"], ["contact@mairie", "a b@c.fr", "@c.fr"]),
    "telephone": ({}, ["01 23 45 67 89", "0123456789", "+33 1 23 45 67 89", "04.72.10.30.30"], ["12345", "00 23 45 67 89", "+44 20 7946 0958"]),
}


def _format_column(case: str, options: dict) -> dict:
    fmt = case.rsplit("_", 1)[0] if case[-4:].isdigit() else case
    return {"name": "valeur", "required": True, "format": fmt, **options}


@pytest.mark.parametrize("case", sorted(CASES))
def test_valid_values_pass_and_invalid_ones_fail_naming_the_field(case, tmp_path):
    options, valid, invalid = CASES[case]
    spec = dataset([{"name": "id", "required": True, "unique": True}, _format_column(case, options)], primary_key=["id"])

    good = check_text(spec, {"id": [str(i) for i in range(len(valid))], "valeur": valid})
    assert good.passed and not good.warnings, [o.describe() for o in good.blocking_failures]

    values = valid + invalid
    bad = check_text(spec, {"id": [str(i) for i in range(len(values))], "valeur": values})
    assert failed_columns(bad) == {"valeur"}
    failure = next(o for o in bad.blocking_failures if o.column == "valeur")
    assert failure.family == "format" and failure.unexpected_count == len(invalid)
    assert failure.samples == invalid and failure.rows == list(range(len(valid) + 1, len(values) + 1))

    result = check_result(bad, str(tmp_path / "quality.json"))
    assert not result.passed and result.severity.value == "ERROR"
    assert result.metadata["failed_columns"].value == "valeur"


def test_coordinates_inside_france_swapped_ones_fail():
    spec = dataset([
        {"name": "longitude", "type": "number", "format": "coordonnees_france", "latitude_column": "latitude"},
        {"name": "latitude", "type": "number"},
    ])
    good = check_text(spec, {"longitude": ["2.35", "55.45", "-61.5", "9.45"], "latitude": ["48.85", "-20.9", "16.2", "42.1"]})
    assert good.passed
    bad = check_text(spec, {"longitude": ["2.35", "48.85", "", "-70"], "latitude": ["48.85", "2.35", "45", "10"]})
    failure = bad.blocking_failures[0]
    assert (failure.column, failure.unexpected_count, failure.samples, failure.rows) == ("longitude+latitude", 2, [[48.85, 2.35], [-70.0, 10.0]], [2, 4])


def test_a_warning_format_reports_without_blocking():
    spec = dataset([{"name": "siret", "format": "siret", "severities": {"format": "warning"}}])
    report = check_text(spec, {"siret": ["73282932000074", "73282932000075"]})
    assert report.passed and [o.column for o in report.warnings] == ["siret"]


def test_vectorised_checks_agree_with_frformat_on_random_identifiers():
    rng = np.random.default_rng(7)
    numbers = [str(n) for n in rng.integers(10**13, 10**14, 20_000)] + ["356000000" + str(n).zfill(5) for n in range(2_000)]
    values = pa.chunked_array([pa.array(numbers + [n[:9] for n in numbers])])
    for name in ("siren", "siret"):
        expected = [frformats.reference_is_valid(name)(v) for v in values.to_pylist()]
        assert frformats.vectorized_is_valid(name, values).tolist() == expected
        assert 0 < sum(expected) < len(expected)


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ({"name": "x", "format": "siret", "type": "integer"}, r"field 'columns\[0\]': .*siret applies to string columns"),
        ({"name": "x", "format": "insee_commune", "year": 2019}, r"field 'columns\[0\]': .*exists for \['2023', '2024'\], not 2019"),
        ({"name": "x", "format": "nope"}, r"field 'columns\[0\]\.format'"),
        ({"name": "x", "type": "number", "format": "coordonnees_france"}, r"field 'columns\[0\]': .*latitude_column: needed"),
    ],
)
def test_bad_format_declarations_name_file_and_field(write_registry, column, message):
    import yaml

    from dinum_pipelines_tests.conftest import VALID_DATASET

    text = VALID_DATASET.format(slug="formats", url="http://127.0.0.1:9/a.csv") + yaml.safe_dump({"columns": [column]})
    folder = write_registry({"formats": text})
    with pytest.raises(RegistryError, match=rf"formats\.yaml: {message}"):
        parse_dataset_file(folder / "formats.yaml")
