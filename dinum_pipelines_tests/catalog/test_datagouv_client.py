"""data.gouv.fr's own Python client, unchanged, against the catalog on SQLite and PostgreSQL.

datagouv-client is installed in a virtualenv of its own (it replaces urllib3 with
urllib3-future, which breaks libraries installed beside it), made once and kept in
.dinum/test-venvs/; datagouv_client_driver.py runs there as a subprocess and reports each step.
The client only knows data.gouv.fr's hosts: the driver points `client.base_url` at the catalog,
as DESIGN.md says. Tabular API methods (`Resource.rows`, `profile`, `columns`) are not driven:
they talk to api-tabular, not to the catalog.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dinum_pipelines.catalog import Publisher, RunningCatalog
from dinum_pipelines.catalog.nodes import machine_lock
from dinum_pipelines_tests.conftest import REPO_ROOT

CLIENT_REQUIREMENT = "datagouv-client==0.5.1"
CLIENT_VENV = REPO_ROOT / ".dinum" / "test-venvs" / CLIENT_REQUIREMENT.replace("==", "-")
DRIVER = Path(__file__).with_name("datagouv_client_driver.py")


@pytest.fixture(scope="session")
def client_python() -> Path:
    """The Python of datagouv-client's virtualenv, made on first use (pip from the package index)."""
    python = CLIENT_VENV / "bin" / "python"
    ready = CLIENT_VENV / ".installed"
    with machine_lock("datagouv-client-venv"):
        if not ready.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(CLIENT_VENV)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", CLIENT_REQUIREMENT],
                check=True, timeout=600,
            )
            ready.write_text(CLIENT_REQUIREMENT)
    return python


def test_datagouv_client_drives_the_catalog(client_python: Path, catalog: RunningCatalog, publisher: Publisher, tmp_path: Path) -> None:
    completed = subprocess.run(
        [str(client_python), str(DRIVER), catalog.url, publisher.token, str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    steps = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    table = "\n".join(f"{'ok ' if step['ok'] else 'FAIL'}  {step['step']:<55} {step['detail'].splitlines()[0][:90]}" for step in steps)
    print(f"\ndatagouv-client 0.5.1 against the catalog ({len(steps)} steps):\n{table}")
    failures = "\n\n".join(f"{step['step']}:\n{step['detail']}" for step in steps if not step["ok"])
    assert completed.returncode == 0 and not failures, f"{table}\n\n{failures}\n{completed.stderr[-3000:]}"
    assert publisher.token not in completed.stdout + completed.stderr
    assert len(steps) >= 45
