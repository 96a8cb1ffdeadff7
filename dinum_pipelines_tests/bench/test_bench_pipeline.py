"""The end-to-end benchmark's code path at a tiny size (20,000 rows), so that `make bench` cannot
rot: the dataset's Dagster job in its own process, the file over loopback HTTP, the catalog in
its own process, pyarrow and DuckDB beside. Figures are printed, never asserted (the machine is
shared); what is asserted is that the run published both files and that its cleaning report
equals the generator's record."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_the_benchmark_runs_the_whole_job_and_checks_what_it_published(
    bench_script, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = bench_script("bench_pipeline")
    assert bench.main(["--rows", "20000", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    for label in ("pyarrow.csv.read_csv", "DuckDB CSV -> Parquet", "the dataset's Dagster run", "the catalog (`dinum-catalog serve`)"):
        assert label in printed
    assert "results: cleaning report equals the generator's record; both files published with their sizes" in printed
    assert "run steps (s): raw" in printed and "published" in printed
