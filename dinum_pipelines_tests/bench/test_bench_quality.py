"""The quality benchmark's code paths on a tiny file, so that `make bench` cannot rot."""

from __future__ import annotations

import json

import pytest

@pytest.fixture
def bench(bench_script):
    return bench_script("gen_dvf_like"), bench_script("bench_quality")


def test_quality_file_records_one_defect_per_rule(bench, tmp_path):
    gen, _ = bench
    record = gen.generate_quality(tmp_path / "q.csv", rows=3000, invalid_rate=0.05)
    assert set(record["expected_failures"]) == set(gen.QUALITY_DEFECTS)
    assert all(count > 0 for count in record["expected_failures"].values())
    assert json.loads((tmp_path / "q.csv.json").read_text(encoding="utf-8")) == record


def test_the_benchmark_finds_every_defect_and_matches_gx(bench, tmp_path, capsys):
    _, bench_quality = bench
    assert bench_quality.main(["--rows", "3000", "--runs", "1", "--gx-rows", "3000", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "pyarrow.csv.read_csv (reference)" in printed
    assert "failures per rule vs generator: equal for all 13 rules" in printed
    assert "identical to plain GX on the first 3,000 rows: yes" in printed
