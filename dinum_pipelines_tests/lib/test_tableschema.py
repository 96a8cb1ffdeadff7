"""A dataset's columns derived from its Table Schema at registry load: mapping, overrides, lookup, errors."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from dinum_pipelines.demo.server import ServedFile, serve_administrations
from dinum_pipelines.lib.declare.registry import RegistryError, load_registry
from dinum_pipelines.lib.declare.tableschema import SCHEMA_CACHE_ENV, cached_schema_path
from dinum_pipelines_tests.conftest import VALID_DATASET

SCHEMA = {
    "name": "schema-test",
    "version": "1.2.0",
    "primaryKey": "Identifiant",
    "fields": [
        {"name": "Identifiant", "type": "string", "description": "Identifiant du lieu",
         "constraints": {"required": True, "unique": True, "pattern": r"^\d{5}-P-\d{3}$"}},
        {"name": "type_usagers", "type": "string", "constraints": {"enum": ["tous", "abonnés"], "minLength": 3, "maxLength": 7}},
        {"name": "nb_places", "type": "integer", "constraints": {"required": True, "minimum": 0, "maximum": 5000}},
        {"name": "tarif", "type": "number", "constraints": {"minimum": 0}},
        {"name": "gratuit", "type": "boolean", "constraints": {"enum": ["true", "false"]}},
        {"name": "date_maj", "type": "date", "format": "%d/%m/%Y", "constraints": {"minimum": "2000-01-01"}},
        {"name": "date_ouverture", "type": "date"},
        {"name": "date_libre", "type": "date", "format": "any"},
        {"name": "date_fmt", "type": "date", "format": "fmt:%d.%m.%Y"},
        {"name": "horodatage", "type": "datetime", "format": "default"},
        {"name": "annee", "type": "year"},
        {"name": "position", "type": "geopoint", "title": "Coordonnées"},
    ],
}


def _write_schema(folder: Path, schema: dict | str, name: str = "schema.json") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema if isinstance(schema, str) else json.dumps(schema), encoding="utf-8")
    return path


def _dataset(schema_yaml: str, extra: str = "", slug: str = "ds_test") -> str:
    return VALID_DATASET.format(slug=slug, url="http://127.0.0.1:9/x.csv") + schema_yaml + extra


@pytest.fixture
def schema_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "schema_cache"
    monkeypatch.setenv(SCHEMA_CACHE_ENV, str(cache))
    return cache


def _load(write_registry, schema: dict | str, extra: str = "", reference: str | None = None):
    folder = write_registry({})
    _write_schema(folder / "schemas", schema)
    reference = reference or 'schema: {name: etalab/schema-test, version: "1.2.0", path: schemas/schema.json}\n'
    folder = write_registry({"ds_test": _dataset(reference, extra)})
    return load_registry(folder)["ds_test"], folder


def test_fields_become_columns_with_their_rules(write_registry, schema_cache):
    spec, _ = _load(write_registry, SCHEMA)
    columns = {c.name: c for c in spec.columns}
    assert list(columns) == [
        "identifiant", "type_usagers", "nb_places", "tarif", "gratuit", "date_maj",
        "date_ouverture", "date_libre", "date_fmt", "horodatage", "annee", "position",
    ]
    ident = columns["identifiant"]
    assert (ident.source, ident.type, ident.required, ident.unique) == ("Identifiant", "string", True, True)
    assert ident.pattern == r"^\d{5}-P-\d{3}$" and ident.description == "Identifiant du lieu"
    assert (columns["type_usagers"].enum, columns["type_usagers"].min_length, columns["type_usagers"].max_length) == (["tous", "abonnés"], 3, 7)
    assert (columns["nb_places"].type, columns["nb_places"].minimum, columns["nb_places"].maximum) == ("integer", 0, 5000)
    assert columns["tarif"].type == "number"
    # Constraints a column of that type cannot carry are not enforced (an enum on booleans);
    # a date minimum is, as a date.
    assert columns["gratuit"].type == "boolean" and columns["gratuit"].enum is None
    assert columns["date_maj"].date_formats == ["%d/%m/%Y"] and columns["date_maj"].minimum == date(2000, 1, 1)
    assert columns["date_ouverture"].date_formats == ["%Y-%m-%d"]  # Table Schema's default: ISO only
    assert columns["date_libre"].date_formats is None  # "any": cleaning's French defaults
    assert columns["date_fmt"].date_formats == ["%d.%m.%Y"]
    assert columns["horodatage"].type == "datetime" and columns["horodatage"].date_formats[0] == "%Y-%m-%dT%H:%M:%SZ"
    assert columns["annee"].type == "integer"
    assert columns["position"].type == "string" and columns["position"].description == "Coordonnées"
    assert spec.primary_key == ["identifiant"]
    assert spec.table_schema is not None and (spec.table_schema.name, spec.table_schema.version) == ("etalab/schema-test", "1.2.0")
    # Table Schema numbers use a point unless decimalChar says otherwise.
    assert spec.source.csv.decimal == "."


def test_yaml_columns_override_the_schema_key_by_key(write_registry, schema_cache):
    extra = (
        "columns:\n"
        "  - {name: identifiant, severity: warning}\n"
        "  - {name: places, source: nb_places, maximum: 100}\n"
        "  - {name: date_maj, date_formats: ['%Y-%m-%d']}\n"
        "  - {name: type_usagers, enum: null}\n"
        "  - {name: commentaire, type: string}\n"
    )
    spec, folder = _load(write_registry, SCHEMA, extra)
    columns = {c.name: c for c in spec.columns}
    assert columns["identifiant"].severity == "warning" and columns["identifiant"].pattern == r"^\d{5}-P-\d{3}$"
    assert "nb_places" not in columns
    places = columns["places"]
    assert (places.source, places.type, places.minimum, places.maximum) == ("nb_places", "integer", 0, 100)
    assert columns["date_maj"].date_formats == ["%Y-%m-%d"]
    # `null` drops a schema rule; the column's other rules stay.
    assert columns["type_usagers"].enum is None and columns["type_usagers"].min_length == 3
    assert list(columns)[-1] == "commentaire"
    # A decimal mark declared in the YAML is kept.
    text = (folder / "ds_test.yaml").read_text(encoding="utf-8").replace("format: csv", "format: csv\n  csv: {decimal: ','}")
    assert load_registry(write_registry({"ds_test": text}))["ds_test"].source.csv.decimal == ","


def test_primary_key_follows_a_renamed_column_and_the_yaml_wins(write_registry, schema_cache):
    spec, _ = _load(write_registry, SCHEMA, "columns:\n  - {name: id_lieu, source: Identifiant}\n")
    assert spec.primary_key == ["id_lieu"]
    spec, _ = _load(write_registry, SCHEMA, "primary_key: [nb_places, tarif]\n")
    assert spec.primary_key == ["nb_places", "tarif"]


def test_schema_decimal_char_is_used(write_registry, schema_cache):
    schema = {"fields": [{"name": "montant", "type": "number", "decimalChar": ","}]}
    spec, _ = _load(write_registry, schema, reference="schema: {name: test, path: schemas/schema.json}\n")
    assert spec.source.csv.decimal == ","


@pytest.mark.parametrize(
    ("schema", "reference", "field", "why"),
    [
        (SCHEMA, "schema: {name: etalab/schema-test, path: schemas/missing.json}\n", "schema.path", "missing.json: cannot read the schema"),
        ("{not json", None, "schema.path", "the schema is not valid JSON"),
        ({"type": "object", "properties": {}}, None, "schema.path", "not a Table Schema (no 'fields' list"),
        ({"fields": [{"type": "string"}]}, None, "schema.path", "field 'fields[0]' has no name"),
        ({**SCHEMA, "primaryKey": ["absent"]}, None, "schema.path", "field 'primaryKey': ['absent'] are not fields"),
        ({"fields": [{"name": "d", "type": "date", "format": "jj/mm/aaaa"}]}, None, "schema.path", "field 'd': unknown date format 'jj/mm/aaaa'"),
        (SCHEMA, 'schema: {name: etalab/schema-test, version: "9.9.9", path: schemas/schema.json}\n', "schema.version", "asks for version 9.9.9 but the schema is version 1.2.0"),
        (SCHEMA, "schema: {name: ../../etc, path: schemas/schema.json}\n", "schema.name", "String should match pattern"),
        (SCHEMA, "schema: {name: x, path: '${DINUM_UNSET_TEST_VARIABLE}/s.json'}\n", "schema.path", "DINUM_UNSET_TEST_VARIABLE is not set"),
        (SCHEMA, "schema: {name: x, path: schemas/schema.json, colour: blue}\n", "schema.colour", "Extra inputs are not permitted"),
    ],
)
def test_bad_schema_is_named_with_the_file_and_field(write_registry, schema_cache, schema, reference, field, why):
    with pytest.raises(RegistryError) as error:
        _load(write_registry, schema, reference=reference)
    message = str(error.value)
    assert "ds_test.yaml" in message and f"field '{field}'" in message and why in message


def test_a_bad_rule_in_the_schema_names_the_column_and_the_schema_field(write_registry, schema_cache):
    schema = {"fields": [{"name": "code", "constraints": {"pattern": "^(\\d{5}$"}}]}
    with pytest.raises(RegistryError, match=r"field 'columns\[0\]\.pattern': .*not a valid regular expression.* \(from Table Schema field 'code' of "):
        _load(write_registry, schema, reference="schema: {name: test, path: schemas/schema.json}\n")


def test_schema_is_read_from_the_cache_by_name_and_version(write_registry, schema_cache):
    reference = 'schema: {name: etalab/schema-test, version: "1.2.0"}\n'
    folder = write_registry({"ds_test": _dataset(reference)})
    with pytest.raises(RegistryError, match=r"field 'schema\.name': schema 'etalab/schema-test' version 1\.2\.0 is not in the schema cache"):
        load_registry(folder)
    _write_schema(cached_schema_path("etalab/schema-test", "1.2.0").parent, SCHEMA)
    assert load_registry(folder)["ds_test"].primary_key == ["identifiant"]


def test_schema_url_is_fetched_once_into_the_cache(write_registry, schema_cache):
    served = {"/schemas/schema.json": ServedFile(json.dumps(SCHEMA).encode(), "application/json", datetime(2025, 1, 1, tzinfo=UTC))}
    with serve_administrations(files=served) as server:
        reference = f'schema: {{name: etalab/schema-test, version: "1.2.0", path: "{server.url}/schemas/schema.json"}}\n'
        folder = write_registry({"ds_test": _dataset(reference)})
        load_registry(folder)
        assert cached_schema_path("etalab/schema-test", "1.2.0").is_file()
        missing = _dataset(reference.replace("1.2.0", "1.3.0").replace("schema.json", "absent.json"))
        with pytest.raises(RegistryError, match=r"field 'schema\.path': cannot download the schema: .*absent\.json: HTTP 404"):
            load_registry(write_registry({"ds_test": missing}))
        assert not cached_schema_path("etalab/schema-test", "1.3.0").exists()
        write_registry({"ds_test": _dataset(reference)})
    # The server is gone: the cached version is enough.
    assert load_registry(folder)["ds_test"].columns[0].name == "identifiant"
    assert [r.path for r in server.requests_seen].count("/schemas/schema.json") == 1
