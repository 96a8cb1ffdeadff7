"""The `dinum-catalog` command: accounts created from the shell work against the server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dinum_pipelines.catalog import CatalogSettings, serve_in_thread
from dinum_pipelines.catalog.__main__ import main
from dinum_pipelines_tests.catalog.conftest import Api


def run(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> str:
    storage = ["--database-url", f"sqlite:///{home / 'catalog.db'}", "--files-dir", str(home / "files")]
    assert main([args[0], *storage, *args[1:]]) == 0
    return capsys.readouterr().out.strip()


def test_cli_creates_accounts_and_tokens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    user_id = run(capsys, tmp_path, "create-user", "--email", "Jeanne@Insee.fr", "--name", "Jeanne Dupont")
    org_id = run(capsys, tmp_path, "create-org", "--slug", "insee", "--name", "Insee")
    run(capsys, tmp_path, "add-member", "--org", "insee", "--email", "jeanne@insee.fr", "--role", "editor")
    token = run(capsys, tmp_path, "create-token", "--email", "jeanne@insee.fr", "--name", "ci", "--expires-days", "30")
    assert token.startswith("udata_") and "\n" not in token

    with serve_in_thread(CatalogSettings.in_directory(tmp_path)) as catalog:
        me = Api(catalog, token).get("/me/").json()
        assert me["id"] == user_id
        assert (me["first_name"], me["last_name"]) == ("Jeanne", "Dupont")
        assert [org["id"] for org in me["organizations"]] == [org_id]
        created = Api(catalog, token).post("/datasets/", json={"title": "t", "description": "d", "organization": "insee"})
        assert created.status_code == 201


def test_cli_bootstrap_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("bootstrap", "--org", "insee", "--org-name", "Insee", "--email", "bot@insee.fr", "--name", "Bot")
    first, second = (json.loads(run(capsys, tmp_path, *args)) for _ in range(2))
    assert first["organization_id"] == second["organization_id"] and first["user_id"] == second["user_id"]
    assert first["token"] != second["token"]


def test_cli_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, tmp_path, "create-org", "--slug", "insee", "--name", "Insee")
    storage = ["--database-url", f"sqlite:///{tmp_path / 'catalog.db'}", "--files-dir", str(tmp_path / "files")]
    assert main(["create-org", *storage, "--slug", "insee", "--name", "Again"]) == 1
    assert main(["create-token", *storage, "--email", "nobody@example.org"]) == 1
    assert main(["create-org", *storage, "--slug", "Not A Slug", "--name", "x"]) == 1
    assert "error:" in capsys.readouterr().err


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DINUM_CATALOG_DATABASE_URL", raising=False)
    monkeypatch.delenv("DINUM_CATALOG_FILES_DIR", raising=False)
    default = CatalogSettings.from_env()
    assert default.database_url == "sqlite:///.dinum/catalog/catalog.db"
    assert default.files_dir == Path(".dinum/catalog/files")
    monkeypatch.setenv("DINUM_CATALOG_DATABASE_URL", "sqlite:///x.db")
    monkeypatch.setenv("DINUM_CATALOG_FILES_DIR", str(tmp_path))
    assert CatalogSettings.from_env() == CatalogSettings("sqlite:///x.db", tmp_path)
    assert CatalogSettings.from_env("sqlite:///y.db").database_url == "sqlite:///y.db"
