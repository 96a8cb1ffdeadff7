"""Data Docs: archived validation results of real validations, built into one site, swapped atomically."""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from dinum_pipelines.lib.quality import validate_dataset
from dinum_pipelines.lib.quality import data_docs
from dinum_pipelines.lib.quality.data_docs import archive_validation, archived_validations, build_site
from dinum_pipelines_tests.quality.helpers import clean, dataset

SPEC = dataset([{"name": "code_postal", "format": "code_postal"}, {"name": "montant", "type": "number", "minimum": 0}])


def gx_result(codes: list[str]) -> dict:
    table, cleaning = clean(SPEC, {"code_postal": codes, "montant": ["1"] * len(codes)})
    # Through JSON, as the pipeline saves it.
    return json.loads(json.dumps(validate_dataset(table, SPEC, cleaning).gx_result, default=str))


def test_archive_keeps_the_newest_results(tmp_path):
    results = [gx_result(["75001"]) for _ in range(4)]
    for result in results:
        archive_validation(tmp_path, result, keep=3)
    kept = archived_validations([("jeu_test", tmp_path)])["jeu_test"]
    assert [r["meta"]["validation_time"] for r in kept] == [r["meta"]["validation_time"] for r in results[1:]]
    assert archived_validations([("absent", tmp_path / "nothing")]) == {}


def test_site_shows_every_validation_and_the_failing_values(tmp_path):
    good, bad = gx_result(["75001", "2A004"]), gx_result(["75001", "7500"])
    index = build_site({"jeu_test": [good, bad]}, tmp_path / "data_docs")
    assert index == tmp_path / "data_docs" / "index.html" and index.is_file()
    assert (tmp_path / "data_docs").is_symlink()
    pages = sorted((tmp_path / "data_docs" / "validations" / "jeu_test_suite" / "jeu_test").glob("*/jeu_test.html"))
    assert len(pages) == 2
    failed_page = pages[-1].read_text(encoding="utf-8")
    assert "7500" in failed_page and "code_postal" in failed_page
    assert "jeu_test_suite" in index.read_text(encoding="utf-8")
    assert (tmp_path / "data_docs" / "expectations" / "jeu_test_suite.html").is_file()


def test_a_rebuild_swaps_the_site_and_removes_stale_builds(tmp_path, monkeypatch):
    site = tmp_path / "data_docs"
    build_site({"jeu_test": [gx_result(["75001"])]}, site)
    first = site.resolve()
    monkeypatch.setattr(data_docs, "STALE_BUILD_SECONDS", -1)
    build_site({"jeu_test": [gx_result(["75001"]), gx_result(["13001"])]}, site)
    assert site.resolve() != first and not first.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [site.resolve().name]


def test_concurrent_builds_leave_one_complete_site(tmp_path):
    # Separate processes, as two Dagster runs would be (a GX context is not shared between threads).
    site = tmp_path / "data_docs"
    validations = {"jeu_test": [gx_result(["75001"])]}
    with ProcessPoolExecutor(max_workers=3, mp_context=multiprocessing.get_context("fork")) as pool:
        indexes = list(pool.map(build_site, [validations] * 3, [site] * 3))
    assert indexes == [site / "index.html"] * 3
    assert (site / "index.html").is_file() and (site / "expectations" / "jeu_test_suite.html").is_file()
