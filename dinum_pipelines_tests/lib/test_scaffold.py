"""`dinum-pipelines add` (lib/declare/scaffold.py, cli/add.py) on small files written here, one question each."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import yaml
from stdnum.fr import siret

from dinum_pipelines.cli import add
from dinum_pipelines.lib.declare import scaffold
from dinum_pipelines.lib.declare.registry import (
    DATASET_COMPONENT_TYPE,
    RegistryError,
    load_registry,
    read_declaration,
)
from dinum_pipelines.lib.declare.tableschema import SCHEMA_CACHE_ENV

URL = "https://data.example.gouv.fr/fichiers"


@pytest.fixture(autouse=True)
def schema_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(SCHEMA_CACHE_ENV, str(tmp_path / "schema_cache"))


def _sirets(count: int) -> list[str]:
    found, candidate = [], 73282932000000
    while len(found) < count:
        candidate += 1
        if siret.is_valid(str(candidate)):
            found.append(str(candidate))
    return found


def _subventions(rows: int = 40) -> str:
    """A prefecture's export: cp1252, semicolons, French numbers and dates, codes with zeros."""
    communes = [("01053", "01000"), ("2A004", "20000"), ("75056", "75001"), ("13055", "13001")]
    lines = ["N° dossier;Code INSEE;Code postal;SIRET;Dispositif;Montant attribué (€);Adhérents;Date de décision;Courriel"]
    for index, number in enumerate(_sirets(rows)):
        insee, postal = communes[index % 4]
        dispositif = ["FDVA", "Sport", "Jeunesse"][index % 3]
        email = "jean.dupont@gmail.com" if index == 3 else ""
        lines.append(f"SUB-{index:05d};{insee};{postal};{number};{dispositif};{1000 + index},50;{index * 3};0{1 + index % 9}/03/2024;{email}")
    return "\n".join(lines) + "\n"


def _add(tmp_path: Path, file_name: str, content: bytes, *extra: str) -> tuple[int, str, Path]:
    source = tmp_path / "download" / file_name
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(content)
    out = io.StringIO()
    arguments = add.build_parser().parse_args(["add", str(source), "--out", str(tmp_path / "sources"), *extra])
    return add.run(arguments, out=out), out.getvalue(), source


def _written(tmp_path: Path, slug: str) -> Path:
    """Where `add` writes a dataset: its component file in the registry folder."""
    return tmp_path / "sources" / slug / "defs.yaml"


def _write(path: Path, declaration: dict) -> None:
    document = {**yaml.safe_load(path.read_text(encoding="utf-8")), "attributes": declaration}
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _fill(path: Path, **fields) -> None:
    _write(path, {**read_declaration(path), **fields})


TITLE = {"title": "Subventions aux associations", "description": "Les subventions versées aux associations par la préfecture, dossier par dossier, avec leur montant et leur date."}


def test_add_proposes_types_french_formats_and_conservative_rules(tmp_path):
    code, printed, _ = _add(tmp_path, "subventions.csv", _subventions().encode("cp1252"), "--url", f"{URL}/subventions.csv", "--org", "prefecture-test")
    assert code == add.EXIT_OK, printed
    written = yaml.safe_load(_written(tmp_path, "subventions").read_text(encoding="utf-8"))
    assert written["type"] == DATASET_COMPONENT_TYPE
    document = written["attributes"]
    assert document["source"] == {
        "url": f"{URL}/subventions.csv", "format": "csv",
        "csv": {"encoding": "cp1252", "delimiter": ";", "decimal": ",", "header_row": 0, "header_rows": 1},
    }  # fmt: skip
    columns = {c["name"]: c for c in document["columns"]}
    assert columns["n_dossier"] == {"name": "n_dossier", "source": "N° dossier", "type": "string", "required": True, "unique": True}
    assert columns["code_insee"]["format"] == "insee_commune" and columns["code_postal"]["format"] == "code_postal"
    assert columns["siret"]["format"] == "siret"
    assert columns["dispositif"]["enum"] == ["FDVA", "Jeunesse", "Sport"] and columns["dispositif"]["severities"] == {"enum": "warning"}
    assert columns["montant_attribue"] | {} == {
        "name": "montant_attribue", "source": "Montant attribué (€)", "type": "number", "required": True, "unique": True,
        "minimum": 1000.5, "maximum": 1039.5, "severities": {"range": "warning"},
    }  # fmt: skip
    assert columns["adherents"]["type"] == "integer" and columns["adherents"]["minimum"] == 0
    assert columns["date_de_decision"]["type"] == "date" and columns["date_de_decision"]["date_formats"] == ["%d/%m/%Y"]
    assert not columns["courriel"].get("required")
    # One line per column saying why, the personal data flagged, and the verdict on the file itself.
    for name in columns:
        assert f"  {name}: " in printed
    assert "csv-detective: siret" in printed
    assert "PERSONAL DATA: courriel: email" in printed and "would BLOCK" in printed
    assert "PERSONAL DATA in column 'courriel'" in _written(tmp_path, "subventions").read_text(encoding="utf-8")


def test_the_registry_refuses_the_placeholders_naming_the_field(tmp_path):
    code, _printed, _ = _add(tmp_path, "subventions.csv", _subventions().encode("cp1252"))
    assert code == add.EXIT_OK
    path = _written(tmp_path, "subventions")
    with pytest.raises(RegistryError, match=r"subventions/defs\.yaml: field 'title': still the placeholder 'À COMPLÉTER'"):
        load_registry(path.parent.parent)
    _fill(path, title=TITLE["title"])
    with pytest.raises(RegistryError, match=r"field 'description': still the placeholder"):
        load_registry(path.parent.parent)
    _fill(path, description=TITLE["description"])
    # A local path and no --org: the organization and the URL are a human's to write too.
    with pytest.raises(RegistryError, match=r"field 'organization.slug': still the placeholder"):
        load_registry(path.parent.parent)
    document = read_declaration(path)
    _fill(path, organization={"slug": "prefecture-test", "name": "Préfecture de test"})
    with pytest.raises(RegistryError, match=r"field 'source.url': still the placeholder"):
        load_registry(path.parent.parent)
    _fill(path, source={**document["source"], "url": f"{URL}/subventions.csv"})
    spec = load_registry(path.parent.parent)["subventions"]
    assert spec.column("code_insee").format == "insee_commune"


def test_a_file_whose_header_is_a_known_schema_gets_the_schema(tmp_path):
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    shutil.copy(scaffold.DEMO_SCHEMAS / "fontaines-eau.json", schemas / "fontaines__schema.json")
    fields = json.loads((schemas / "fontaines__schema.json").read_text(encoding="utf-8"))["fields"]
    header = ",".join(f["name"] for f in fields)
    known = scaffold.known_schemas([schemas])
    assert scaffold.match_schema([f["name"].upper() for f in fields], known).name == "demo-fontaines-eau"
    # Half of the columns are not the schema's: hand-written columns instead.
    assert scaffold.match_schema([f["name"] for f in fields[:3]] + ["autre_1", "autre_2", "autre_3"], known) is None
    code, printed, _ = _add(tmp_path, "fontaines.csv", (header + "\n").encode(), "--url", f"{URL}/fontaines.csv", "--org", "metropole", "--schemas", str(schemas))
    assert code == add.EXIT_OK, printed
    path = _written(tmp_path, "fontaines")
    document = read_declaration(path)
    assert document["schema"] == {"name": "demo-fontaines-eau", "version": "1.0.0"} and "columns" not in document
    assert f"of the file's {len(fields)} columns are its fields" in printed
    _fill(path, **TITLE)
    spec = load_registry(path.parent.parent)["fontaines"]  # found in the schema cache, where `add` put it
    assert [c.source_name for c in spec.columns] == [f["name"] for f in fields]


def test_json_records_are_found_where_they_are():
    assert scaffold._record_path({"meta": {"n": 2}, "data": {"records": [{"a": 1}, {"a": 2}]}}) == ("data.records", None)
    decp = {"marches": {"marche": [{"id": 1}, {"id": 2}], "contrat-concession": [{"id": 3}]}}
    assert scaffold._record_path(decp) == ("marches.*", "type")
    assert scaffold._record_path([{"a": 1}]) == (None, None)


def test_update_prints_a_diff_and_writes_only_when_asked(tmp_path):
    content = _subventions()
    _add(tmp_path, "subventions.csv", content.encode("cp1252"), "--url", f"{URL}/subventions.csv", "--org", "prefecture-test")
    path = _written(tmp_path, "subventions")
    _fill(path, **TITLE)
    document = read_declaration(path)
    document["columns"][0]["description"] = "Numéro du dossier."
    _write(path, document)
    before = path.read_text(encoding="utf-8")
    # The producer adds a column and leaves a dossier number empty.
    lines = content.splitlines()
    lines[0] += ";Observations"
    lines[1:] = [line + ";RAS" for line in lines[1:]]
    lines[5] = ";" + lines[5].split(";", 1)[1]
    changed = ("\n".join(lines) + "\n").encode("cp1252")
    code, printed, _ = _add(tmp_path, "subventions.csv", changed, "--url", f"{URL}/subventions.csv", "--slug", "subventions", "--update")
    assert code == add.EXIT_OK
    assert "+  - name: observations" in printed and "-    required: true" in printed and "-    unique: true" in printed
    assert path.read_text(encoding="utf-8") == before
    code, printed, _ = _add(tmp_path, "subventions.csv", changed, "--url", f"{URL}/subventions.csv", "--slug", "subventions", "--update", "--write")
    spec = load_registry(path.parent.parent)["subventions"]
    assert spec.title == TITLE["title"] and spec.column("n_dossier").description == "Numéro du dossier."
    assert not spec.column("n_dossier").required and spec.column("observations").type == "string"


def test_add_refuses_to_overwrite_and_to_update_nothing(tmp_path):
    _add(tmp_path, "subventions.csv", _subventions().encode("cp1252"))
    code, _printed, _ = _add(tmp_path, "subventions.csv", _subventions().encode("cp1252"))
    assert code == add.EXIT_USAGE
    code, _printed, _ = _add(tmp_path, "autre.csv", _subventions().encode("cp1252"), "--update")
    assert code == add.EXIT_USAGE
