"""Datasets as Dagster components: what `dg` sees of them, how a broken defs.yaml is refused, the editor schema.

The `dg` commands run as a person runs them, in a subprocess from a project folder: the real one
seen through links, or a copy of its pyproject.toml with a defs folder written here.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import jsonschema
import pytest
import yaml
from dagster_shared.yaml_utils import parse_yamls_with_source_position

from dinum_pipelines.components import Dataset
from dinum_pipelines.components.schema import schema_text
from dinum_pipelines.defs.keys import published_key
from dinum_pipelines.lib.declare.registry import (
    COMPONENT_SCHEMA_FILE,
    DATASET_COMPONENT_TYPE,
    DEFAULT_SOURCES_DIR,
    RegistryError,
    load_registry,
    read_declaration,
)
from dinum_pipelines_tests.conftest import REPO_ROOT, VALID_DATASET

DG = Path(sys.executable).parent / "dg"


def _dg(project: Path, *arguments: str) -> subprocess.CompletedProcess:
    # DAGSTER_HOME in the project folder: no instance of the machine's, no .env of the repo's.
    env = {**os.environ, "DAGSTER_HOME": str(project), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([str(DG), *arguments], check=False, cwd=project, capture_output=True, text=True, timeout=300, env=env)


def _project(tmp_path: Path, *, linked_package: bool) -> Path:
    """A dg project folder: the repo's pyproject.toml, and the package linked or an empty defs folder."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").symlink_to(REPO_ROOT / "pyproject.toml")
    if linked_package:
        (project / "dinum_pipelines").symlink_to(REPO_ROOT / "dinum_pipelines")
    else:
        (project / "dinum_pipelines" / "defs" / "datasets").mkdir(parents=True)
    return project


def test_dg_list_defs_shows_every_dataset_built_by_its_component(tmp_path):
    result = _dg(_project(tmp_path, linked_package=True), "list", "defs", "--json")
    assert result.returncode == 0, result.stderr
    sources = {asset["asset_key"]: asset.get("source") for asset in json.loads(result.stdout)["assets"]}
    registry = load_registry()
    assert len(registry) >= 4
    for slug in registry:
        for step in ("raw", "clean", "published"):
            assert sources[f"{slug}/{step}"].startswith(f"dinum_pipelines/defs/datasets/{slug}/defs.yaml:"), (slug, step)
    # What watches every dataset at once is not a component's.
    assert not (sources["monitoring/quality_report"] or "").startswith("dinum_pipelines/defs/datasets/")


def test_dg_list_component_tree_shows_one_dataset_component_per_folder(tmp_path):
    result = _dg(_project(tmp_path, linked_package=True), "list", "component-tree")
    assert result.returncode == 0, result.stderr
    tree = result.stdout
    for slug in load_registry():
        assert f"{slug}\n" in tree
    assert tree.count("defs.yaml (Dataset)") == len(load_registry())


def test_dg_check_yaml_rejects_a_broken_defs_yaml_naming_the_file_and_the_field(tmp_path):
    project = _project(tmp_path, linked_package=False)
    folder = project / "dinum_pipelines" / "defs" / "datasets" / "fontaines_eau"
    shutil.copytree(DEFAULT_SOURCES_DIR / "fontaines_eau", folder)
    assert _dg(project, "check", "yaml", str(folder)).returncode == 0
    text = (folder / "defs.yaml").read_text(encoding="utf-8")
    (folder / "defs.yaml").write_text(text.replace("  license: lov2", "  licence: lov2").replace("format: csv", "format: pdf"), encoding="utf-8")
    result = _dg(project, "check", "yaml", str(folder))
    assert result.returncode == 1
    assert f"{folder / 'defs.yaml'}:" in result.stdout
    assert "attributes.licence Additional properties are not allowed ('licence' was unexpected)" in result.stdout
    assert "'license' is a required property" in result.stdout
    assert "attributes.source.format 'pdf' is not one of" in result.stdout


def test_each_package_defs_yaml_passes_the_schema_dg_check_yaml_applies():
    # `dg check yaml` (dg 1.13.27) keys the files it read by component type, so with several Dataset
    # files it validates only the last one: every file is validated here, read by dg's own YAML
    # reader and checked against the schema it uses (the committed one embeds it under `attributes`).
    validator = jsonschema.Draft202012Validator(json.loads(COMPONENT_SCHEMA_FILE.read_text(encoding="utf-8")))
    folders = sorted(path.parent for path in DEFAULT_SOURCES_DIR.glob("*/defs.yaml"))
    assert len(folders) >= 4
    for folder in folders:
        text = (folder / "defs.yaml").read_text(encoding="utf-8")
        document = parse_yamls_with_source_position(text, filename=str(folder / "defs.yaml"))[0].value
        assert document["type"] == DATASET_COMPONENT_TYPE
        assert not list(validator.iter_errors(document)), folder
        assert text.startswith(
            "# yaml-language-server: $schema=../../../components/dataset.schema.json\n"
        )
    document["attributes"]["frequency"] = 12
    assert [(list(error.absolute_path), error.message) for error in validator.iter_errors(document)] == [
        (["attributes", "frequency"], "12 is not of type 'string'")
    ]


def test_the_committed_editor_schema_is_the_components_schema():
    assert COMPONENT_SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        "run `python -m dinum_pipelines.components.schema` and commit dataset.schema.json"
    )


def test_dg_scaffold_defs_writes_a_declaration_the_registry_refuses_until_written(tmp_path):
    project = _project(tmp_path, linked_package=False)
    result = _dg(project, "scaffold", "defs", DATASET_COMPONENT_TYPE, "datasets/mon_jeu")
    assert result.returncode == 0, result.stdout + result.stderr
    path = project / "dinum_pipelines" / "defs" / "datasets" / "mon_jeu" / "defs.yaml"
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["type"] == DATASET_COMPONENT_TYPE
    with pytest.raises(RegistryError, match=r"mon_jeu/defs\.yaml: field 'title': still the placeholder"):
        load_registry(path.parent.parent)
    declaration = {
        **read_declaration(path),
        "title": "Mon jeu de données",
        "description": "Un jeu de données déclaré par dg scaffold defs, écrit ensuite à la main, assez long pour le critère de qualité.",
        "organization": {"slug": "org-test", "name": "Organisation de test"},
        "source": {"url": "https://data.example.gouv.fr/mon_jeu.csv", "format": "csv"},
    }
    path.write_text(yaml.safe_dump({"type": DATASET_COMPONENT_TYPE, "attributes": declaration}, allow_unicode=True), encoding="utf-8")
    assert load_registry(path.parent.parent)["mon_jeu"].title == "Mon jeu de données"


def _component_tree(tmp_path: Path, monkeypatch, declarations: dict[str, dict]) -> dg.ComponentTree:
    """A component tree over a defs module written here: one `<slug>/defs.yaml` per declaration."""
    package = tmp_path / "tree_project" / "tree_pkg"
    for slug, declaration in declarations.items():
        (package / "datasets" / slug).mkdir(parents=True)
        document = {"type": DATASET_COMPONENT_TYPE, "attributes": declaration}
        (package / "datasets" / slug / "defs.yaml").write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "datasets" / "__init__.py").write_text("", encoding="utf-8")
    monkeypatch.syspath_prepend(str(package.parent))
    return dg.ComponentTree.from_module(defs_module=importlib.import_module("tree_pkg.datasets"), project_root=package.parent)


def test_a_component_is_judged_by_the_registry_and_builds_its_chain(tmp_path, monkeypatch):
    valid = read_declaration(DEFAULT_SOURCES_DIR / "bornes_recharge" / "defs.yaml")
    tree = _component_tree(tmp_path, monkeypatch, {"bornes_recharge": valid, "autre": {**valid, "slug": "autre", "license": "lov9"}})
    with pytest.raises(Exception) as refused:
        tree.build_defs()
    # Dagster says which component failed and chains the registry's error, naming the file and field.
    assert "autre" in str(refused.value)
    causes = []
    error: BaseException | None = refused.value
    while error is not None:
        causes.append(error)
        error = error.__cause__ or error.__context__
    registry_error = next(cause for cause in causes if isinstance(cause, RegistryError))
    assert "autre/defs.yaml: field 'license': Value error, unknown licence id 'lov9'" in str(registry_error)
    defs = tree.build_defs("bornes_recharge")
    assert published_key("bornes_recharge") in {key for asset in defs.assets for key in asset.keys}
    assert [job.name for job in defs.jobs] == ["bornes_recharge_job"]
    component = tree.load_component("bornes_recharge")
    assert isinstance(component, Dataset) and component.spec.source.format == "json"


def _component_file(folder: Path, slug: str, declaration_text: str, *, component_type: str = DATASET_COMPONENT_TYPE) -> Path:
    path = folder / slug / "defs.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(f"type: {component_type}\nattributes:\n" + textwrap.indent(declaration_text, "  "), encoding="utf-8")
    return path


def test_the_registry_reads_component_files_and_names_their_mistakes(tmp_path):
    valid = VALID_DATASET.format(slug="mon_jeu", url="http://127.0.0.1:9/a.csv")
    _component_file(tmp_path, "mon_jeu", valid)
    assert list(load_registry(tmp_path)) == ["mon_jeu"]
    # The same slug as a plain file beside it.
    (tmp_path / "mon_jeu.yaml").write_text(valid, encoding="utf-8")
    with pytest.raises(RegistryError, match=r"field 'slug': 'mon_jeu' is declared twice"):
        load_registry(tmp_path)
    (tmp_path / "mon_jeu.yaml").unlink()
    _component_file(tmp_path, "autre_nom", valid)
    with pytest.raises(RegistryError, match=r"autre_nom/defs\.yaml: field 'slug': 'mon_jeu' must match the folder name 'autre_nom'"):
        load_registry(tmp_path)
    shutil.rmtree(tmp_path / "autre_nom")
    _component_file(tmp_path, "autre", valid.replace("mon_jeu", "autre"), component_type="dagster.DefsFolderComponent")
    with pytest.raises(RegistryError, match=r"autre/defs\.yaml: field 'type': expected 'dinum_pipelines.components.Dataset'"):
        load_registry(tmp_path)
