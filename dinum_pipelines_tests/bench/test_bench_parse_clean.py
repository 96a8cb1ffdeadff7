"""The parse+clean benchmark's code paths, on 1,000 rows, so that `make bench` cannot rot."""

from __future__ import annotations

import json

import pytest

@pytest.fixture
def bench(bench_script):
    return bench_script("gen_dvf_like"), bench_script("bench_parse_clean")


def test_generator_is_deterministic_and_records_its_defects(bench, tmp_path):
    gen, _ = bench
    first = gen.generate(tmp_path / "a.csv", rows=1000, invalid_rate=0.05)
    gen.generate(tmp_path / "b.csv", rows=1000, invalid_rate=0.05)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    lines = (tmp_path / "a.csv").read_bytes().decode("cp1252").split("\r\n")
    assert len(lines) == 1000 + 2 and lines[-1] == ""  # header, rows, and the last CRLF
    assert all(line.count(";") == 15 for line in lines[:-1])
    assert sum(first["expected_issues"].values()) > 0
    assert json.loads((tmp_path / "a.csv.json").read_text(encoding="utf-8")) == first


def test_our_path_reports_exactly_the_injected_defects(bench, tmp_path):
    gen, bench_parse_clean = bench
    record = gen.generate(tmp_path / "dvf.csv", rows=1000, invalid_rate=0.05)
    measured = bench_parse_clean.run_pipeline(tmp_path / "dvf.csv", record, tmp_path / "clean.parquet")
    assert measured["mismatches"] == []
    assert measured["issues"] == record["expected_issues"]
    assert (tmp_path / "clean.parquet").stat().st_size > 0


def test_the_benchmark_runs_end_to_end(bench, tmp_path, capsys):
    _, bench_parse_clean = bench
    assert bench_parse_clean.main(["--rows", "1000", "--runs", "1", "--out", str(tmp_path), "--proposed-read"]) == 0
    printed = capsys.readouterr().out
    assert "pyarrow.csv.read_csv (reference)" in printed and "with the proposed read" in printed
    assert "cleaning report vs generator: equal in every run" in printed
