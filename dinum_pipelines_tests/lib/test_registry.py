"""A bad registry file fails the load with a message naming the file and the field."""

from __future__ import annotations

import pytest

from dinum_pipelines.lib.declare.registry import RegistryError, load_registry
from dinum_pipelines_tests.conftest import VALID_DATASET

URL = "http://127.0.0.1:9/x.csv"


def _valid(slug: str = "ds_test", url: str = URL) -> str:
    return VALID_DATASET.format(slug=slug, url=url)


def test_valid_file_loads(write_registry):
    registry = load_registry(write_registry({"ds_test": _valid()}))
    spec = registry["ds_test"]
    assert spec.license == "lov2"
    assert spec.source.csv.decimal == ","


@pytest.mark.parametrize(
    ("change", "field", "why"),
    [
        (("license: lov2", "license: lov3"), "license", "unknown licence id 'lov3'"),
        (("frequency: monthly", "frequency: sometimes"), "frequency", "unknown frequency id"),
        (("format: csv", "format: pdf"), "source.format", "Input should be 'csv', 'json', 'xlsx', 'xls', 'ods', 'geojson' or 'xml'"),
        (('url: "http://127.0.0.1:9/x.csv"', "url: ftp://example.org/x.csv"), "source.url", "must be an http(s) URL"),
        (("title: Jeu de données de test\n", ""), "title", "Field required"),
        (("frequency: monthly", "frequency: monthly\ncolour: blue"), "colour", "Extra inputs are not permitted"),
    ],
)
def test_bad_field_is_named_with_the_file(write_registry, change, field, why):
    text = _valid().replace(*change)
    folder = write_registry({"ds_test": text})
    with pytest.raises(RegistryError) as error:
        load_registry(folder)
    message = str(error.value)
    assert str(folder / "ds_test.yaml") in message
    assert f"field '{field}'" in message
    assert why in message


def test_short_description_is_refused(write_registry):
    text = _valid().split("description:")[0] + "description: trop court\norganization:" + _valid().split("organization:")[1]
    with pytest.raises(RegistryError, match=r"ds_test\.yaml: field 'description': String should have at least 101"):
        load_registry(write_registry({"ds_test": text}))


def test_column_rules_are_checked(write_registry):
    text = _valid() + "columns:\n  - {name: Code, type: string}\n  - {name: n, type: money}\nprimary_key: [missing]\n"
    with pytest.raises(RegistryError) as error:
        load_registry(write_registry({"ds_test": text}))
    message = str(error.value)
    assert "field 'columns[0].name'" in message
    assert "field 'columns[1].type'" in message


def test_primary_key_must_be_declared(write_registry):
    text = _valid() + "columns:\n  - {name: code}\nprimary_key: [id]\n"
    with pytest.raises(RegistryError, match="primary_key: 'id' is not a declared column"):
        load_registry(write_registry({"ds_test": text}))


def test_invalid_regex_is_refused(write_registry):
    text = _valid() + "columns:\n  - {name: code, pattern: '^(\\d{5}$'}\n"
    with pytest.raises(RegistryError, match=r"field 'columns\[0\]\.pattern': Value error, is not a valid regular expression"):
        load_registry(write_registry({"ds_test": text}))


def test_slug_must_match_file_name(write_registry):
    with pytest.raises(RegistryError, match=r"other\.yaml: field 'slug': 'ds_test' must match the file name 'other'"):
        load_registry(write_registry({"other": _valid()}))


def test_not_yaml_mapping(write_registry):
    with pytest.raises(RegistryError, match=r"ds_test\.yaml: expected a mapping"):
        load_registry(write_registry({"ds_test": "- just\n- a list\n"}))


def test_broken_yaml(write_registry):
    with pytest.raises(RegistryError, match=r"ds_test\.yaml: cannot read YAML"):
        load_registry(write_registry({"ds_test": "title: [unclosed\n"}))


def test_env_reference_in_url(write_registry, monkeypatch):
    folder = write_registry({"ds_test": _valid(url="${DINUM_TEST_HOST:-http://127.0.0.1:9}/a.csv")})
    spec = load_registry(folder)["ds_test"]
    assert spec.source.resolved_url == "http://127.0.0.1:9/a.csv"
    monkeypatch.setenv("DINUM_TEST_HOST", "http://127.0.0.1:5555")
    assert spec.source.resolved_url == "http://127.0.0.1:5555/a.csv"


def test_empty_folder(tmp_path):
    with pytest.raises(RegistryError, match="no dataset files"):
        load_registry(tmp_path)


@pytest.mark.parametrize(
    ("source", "check"),
    [
        ("format: xlsx\n  spreadsheet: {sheet: Feuil1, header_row: 2}", lambda s: (s.spreadsheet.sheet, s.spreadsheet.header_row) == ("Feuil1", 2)),
        ("format: ods\n  spreadsheet: {sheet: 1}", lambda s: s.spreadsheet.sheet == 1 and s.spreadsheet.header_row is None),
        ("format: xml\n  xml: {record_path: marches/marche}", lambda s: s.xml.record_path == "marches/marche"),
        ("format: geojson", lambda s: s.format == "geojson"),
        ("format: json\n  json: {record_path: marches.*, key_column: type}", lambda s: s.json_options.key_column == "type"),
    ],
)
def test_new_formats_and_their_options_load(write_registry, source, check):
    spec = load_registry(write_registry({"ds_test": _valid().replace("format: csv", source)}))["ds_test"]
    assert check(spec.source)


@pytest.mark.parametrize(
    ("source", "field", "why"),
    [
        ("format: xlsx\n  spreadsheet: {sheet: -1}", "source.spreadsheet.sheet", "greater than or equal to 0"),
        ("format: xlsx\n  spreadsheet: {header: 2}", "source.spreadsheet.header", "Extra inputs are not permitted"),
        ("format: xml\n  xml: {record_path: ''}", "source.xml.record_path", "at least 1 character"),
        ("format: json\n  json: {record_path: data.records, key_column: type}", "source.json", "key_column needs a `*` segment"),
    ],
)
def test_bad_format_options_are_named(write_registry, source, field, why):
    with pytest.raises(RegistryError) as error:
        load_registry(write_registry({"ds_test": _valid().replace("format: csv", source)}))
    assert f"field '{field}" in str(error.value) and why in str(error.value)
