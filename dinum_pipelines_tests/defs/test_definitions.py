"""The code location loads, as Dagster and `dg` load it, with one chain per registered dataset."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from dinum_pipelines.defs.keys import QUALITY_CHECK_NAME, clean_key, job_name, published_key, raw_key
from dinum_pipelines.definitions import build_definitions, defs
from dinum_pipelines.lib.declare.registry import RegistryError, load_registry
from dinum_pipelines_tests.conftest import REPO_ROOT, VALID_DATASET


def test_every_dataset_has_its_chain_check_and_job():
    definitions = defs()
    dg.Definitions.validate_loadable(definitions)
    graph = definitions.resolve_asset_graph()
    for slug in load_registry():
        for key in (raw_key(slug), clean_key(slug), published_key(slug)):
            assert graph.has(key), key
        assert dg.AssetCheckKey(clean_key(slug), QUALITY_CHECK_NAME) in graph.asset_check_keys
        assert definitions.resolve_job_def(job_name(slug)) is not None
        assert graph.get(published_key(slug)).parent_keys == {clean_key(slug)}


def test_a_bad_registry_file_stops_the_load(write_registry):
    folder = write_registry({"broken": VALID_DATASET.format(slug="broken", url="http://127.0.0.1:9/a.csv").replace("lov2", "lov9")})
    with pytest.raises(RegistryError, match=r"broken\.yaml: field 'license'"):
        build_definitions(str(folder))


def test_dg_check_defs_passes(tmp_path):
    dg_cli = Path(sys.executable).parent / "dg"
    # The project seen through links, without the repo's .env: `make demo` writes one naming its
    # instance folder, and dg lets .env override the environment.
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "dinum_pipelines"):
        (project / name).symlink_to(REPO_ROOT / name)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run(
        [str(dg_cli), "check", "defs"], cwd=project, capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
