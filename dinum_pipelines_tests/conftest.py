"""Shared fixtures: paths to the real files in ../shared/data/real, small registry helpers, and a
migrated SQLite catalog database to copy."""

from __future__ import annotations

import signal
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from dinum_pipelines.catalog.db import open_engine

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """anyio's names, imported now, in the main thread. anyio imports its modules on first use,
    and anyio is a pytest plugin, so pytest rewrites their asserts as it imports them: a catalog
    serving in a test's thread imported `anyio`'s file module on its first download, while another
    thread parsed too, and CPython 3.11's `ast.parse` is not thread-safe (a CI run's catalog failed
    a download with "SystemError: AST constructor recursion depth mismatch")."""
    import anyio

    for name in dir(anyio):
        getattr(anyio, name)
REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "real"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules marked `slow` (minutes each: the Celery deployment, the fault matrix) first,
    in their usual order, then the rest: pytest-xdist hands modules out in this order, and a
    long module handed out last would leave the other processes idle until it ends."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _sigterm_as_before() -> Iterator[None]:
    """SIGTERM's handler as it was before the test. A Dagster run in the test's process maps
    SIGTERM onto SIGINT's handler (dagster._utils.interrupts.setup_interrupt_handlers); when the
    suite is started in the background, SIGINT is ignored, so SIGTERM became ignored too, and so
    did every server the later tests of that process started: one did not stop on SIGTERM."""
    before = signal.getsignal(signal.SIGTERM)
    yield
    if before is not None and signal.getsignal(signal.SIGTERM) != before:
        signal.signal(signal.SIGTERM, before)


def require_real_data() -> Path:
    """../shared/data/real, the real producer files the oracle tests read in place. Its absence
    fails the test: CI has it beside the clone, and a skipped comparison proves nothing."""
    if not REAL_DATA.is_dir():
        pytest.fail(f"{REAL_DATA}: the real files are missing (../shared must stand beside the project)")
    return REAL_DATA


@pytest.fixture
def real_file():
    """Path to a file of ../shared/data/real (the test fails when that folder is absent)."""

    def get(name: str) -> Path:
        return require_real_data() / name

    return get


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite catalog database at the head revision, for each SQLite test to start from a copy
    of (running the revisions on every test's new file cost a fifth of a second a test; the
    revisions themselves are tested in test_migrations.py)."""
    path = tmp_path_factory.mktemp("migrated-sqlite") / "catalog.db"
    open_engine(f"sqlite:///{path}").dispose()  # the last connection closed: no WAL file left beside it
    return path


VALID_DATASET = """\
slug: {slug}
title: Jeu de données de test
description: >
  Un jeu de données de test assez long pour dépasser les cent caractères demandés par le critère
  de qualité de data.gouv.fr sur la description.
organization: {{slug: org-test, name: Organisation de test}}
source:
  url: "{url}"
  format: csv
license: lov2
frequency: monthly
"""


@pytest.fixture
def write_registry(tmp_path):
    """Write registry files into a fresh folder: write_registry({"slug": yaml_text}) -> folder."""

    def write(files: dict[str, str]) -> Path:
        folder = tmp_path / "sources"
        folder.mkdir(exist_ok=True)
        for slug, text in files.items():
            (folder / f"{slug}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
        return folder

    return write
