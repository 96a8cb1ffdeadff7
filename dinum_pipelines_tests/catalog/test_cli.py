"""The `dinum-catalog` command: accounts created from the shell work against the server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from dinum_pipelines.catalog import CatalogSettings, CatalogStore, bootstrap_publisher, serve_in_thread
from dinum_pipelines.catalog.__main__ import main
from dinum_pipelines.catalog.events import DATASET_VIEW
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
    monkeypatch.delenv("DINUM_CATALOG_SCHEMAS_DIR", raising=False)
    assert CatalogSettings.from_env() == CatalogSettings("sqlite:///x.db", tmp_path, schemas_dir=Path(".dinum/catalog/schemas"))
    monkeypatch.setenv("DINUM_CATALOG_SCHEMAS_DIR", str(tmp_path / "schemas"))
    assert CatalogSettings.from_env().schemas_dir == tmp_path / "schemas"
    assert CatalogSettings.from_env("sqlite:///y.db").database_url == "sqlite:///y.db"


def test_settings_survive_the_environment_round_trip(tmp_path: Path) -> None:
    """How `serve --workers N` hands its settings to the worker processes."""
    settings = CatalogSettings(
        "sqlite:///w.db", tmp_path, public_url="https://catalog.example.org", simulated_clock=True, accel_redirect_prefix="/_accel/"
    )
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings.as_env().items():
            patch.setenv(name, value)
        assert CatalogSettings.from_env() == settings
        for name, value in CatalogSettings("sqlite:///w.db", tmp_path).as_env().items():
            patch.setenv(name, value)
        assert CatalogSettings.from_env() == CatalogSettings("sqlite:///w.db", tmp_path)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_with_two_workers_answers_and_a_clean_stop_keeps_every_view(catalog_settings: CatalogSettings, tmp_path: Path) -> None:
    """Two processes, each with its own usage-log writer, on one database; SIGTERM drains both.
    They share their anonymous answers in a folder of the system's temporary one, gone at the stop."""
    with CatalogStore(catalog_settings) as store:
        publisher = bootstrap_publisher(store, org_slug="insee", org_name="Insee", email="bot@insee.fr", name="Bot")
    port = free_port()
    command = [
        sys.executable, "-m", "dinum_pipelines.catalog", "serve", "--workers", "2", "--no-access-log", "--port", str(port),
        "--database-url", catalog_settings.database_url, "--files-dir", str(catalog_settings.files_dir),
    ]
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(temporary)},
    )
    base = f"http://127.0.0.1:{port}/api/1"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base}/datasets/licenses/", timeout=1)
                break
            except requests.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        headers = {"X-API-KEY": publisher.token}
        dataset = requests.post(
            f"{base}/datasets/", json={"title": "t", "description": "d", "organization": "insee"}, headers=headers, timeout=10
        ).json()

        def views(_client: int) -> list[int]:
            with requests.Session() as session:  # one connection: each client stays on one worker
                return [session.get(f"{base}/datasets/{dataset['id']}/", timeout=10).status_code for _ in range(20)]

        with ThreadPoolExecutor(6) as pool:
            statuses = [status for batch in pool.map(views, range(6)) for status in batch]
        assert statuses == [200] * 120
        [answers] = temporary.glob("dinum-catalog-answers-*")
        assert [path.name for path in answers.glob("*/*") if not path.name.endswith(".lock")]  # the dataset's answer
    finally:
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=30)
    assert server.returncode == 0, errors
    assert errors.count("Started server process") == 2
    assert errors.count("warmed up in") == 2  # each worker, before it served (catalog/warm_up.py)
    assert not list(temporary.glob("dinum-catalog-answers-*"))
    with CatalogStore(catalog_settings) as store:
        assert len(store.events.list(kind=DATASET_VIEW)) == 120
