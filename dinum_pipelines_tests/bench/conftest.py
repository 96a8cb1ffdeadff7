"""bench/ is a folder of scripts, not a package: its tests import them by name from there."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

import pytest

from dinum_pipelines_tests.conftest import REPO_ROOT

BENCH_DIR = REPO_ROOT / "bench"


@pytest.fixture
def bench_script(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """`bench_script("bench_quality")`: that script, imported as a module."""
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    return importlib.import_module
