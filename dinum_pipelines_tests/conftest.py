"""Shared fixtures: paths to the real files in ../shared/data/real and small registry helpers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "real"


@pytest.fixture
def real_file():
    """Path to a file of ../shared/data/real; skips only when that folder is absent."""

    def get(name: str) -> Path:
        if not REAL_DATA.is_dir():
            pytest.skip("../shared/data/real is not present on this machine")
        return REAL_DATA / name

    return get


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
