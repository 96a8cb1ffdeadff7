"""The conformance benchmark's code paths on 2,000 rows, so that `make bench` cannot rot."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def bench(bench_script):
    return bench_script("gen_dvf_like"), bench_script("bench_conformance")


def test_the_schema_gives_exactly_the_faults_derived_from_the_sidecar(bench, tmp_path):
    gen, bench_conformance = bench
    # 5 % of rows defective, so that every kind of defect occurs in 2,000 rows.
    record = gen.generate(tmp_path / "dvf.csv", rows=2000, invalid_rate=0.05)
    schema_file = bench_conformance.write_schema(tmp_path / "dvf.csv")
    assert schema_file.name == "dvf.schema.json"
    assert json.loads(schema_file.read_text(encoding="utf-8")) == bench_conformance.bench_schema()
    expected = bench_conformance.expected_faults(record)
    assert set(expected) == {"date_mutation", "valeur_fonciere", "nombre_pieces_principales", "surface_reelle_bati", "longitude"}
    assert expected["date_mutation"] == record["expected_issues"]["date_mutation"] + record["valid_oddities"]["date_mutation"]
    measured = bench_conformance.run_conformance(tmp_path / "dvf.csv", schema_file)
    assert measured["rows"] == 2000
    assert measured["fields"] == expected
    assert bench_conformance.count_differences(measured["fields"], expected) == []


def test_frictionless_gives_the_same_counts(bench, tmp_path):
    gen, bench_conformance = bench
    record = gen.generate(tmp_path / "dvf.csv", rows=2000, invalid_rate=0.05)
    measured = bench_conformance.run_frictionless(tmp_path / "dvf.csv", bench_conformance.write_schema(tmp_path / "dvf.csv"))
    assert measured["rows"] == 2000
    assert measured["fields"] == bench_conformance.expected_faults(record)


def test_the_benchmark_runs_end_to_end(bench, tmp_path, capsys):
    _, bench_conformance = bench
    assert bench_conformance.main(["--rows", "2000", "--runs", "1", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "pyarrow.csv.read_csv (reference)" in printed and "frictionless validate (peer)" in printed
    assert "conformance report vs sidecar: equal for every field in every run" in printed
    assert (tmp_path / "dvf_2000.schema.json").is_file()


def test_a_miscount_fails_the_run(bench):
    _, bench_conformance = bench
    record = {"rows": 10, "bytes": 100, "encoding": "cp1252", "delimiter": ";",
              "expected_issues": {"longitude": 2}, "valid_oddities": {"date_mutation": 1}}
    run = {"round": 0, "seconds": 1.0, "peak_mib": 10.0, "after_imports_mib": 5.0}
    results = {
        "pyarrow": [run],
        "conformance": [{**run, "rows": 10, "fields": {"longitude": 2}, "codes": {"type-error": 2}}],
        "frictionless": [],
    }
    printed, ok = bench_conformance.summarise(results, record)
    assert not ok
    assert "checks FAILED: conformance report vs sidecar: date_mutation: 0 faults, expected 1" in printed
