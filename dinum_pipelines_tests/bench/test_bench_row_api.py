"""The row API benchmark's code path at a tiny size (20,000 rows), so that `make bench` cannot rot:
the table written and published through the catalog's API, pages under load next to the floor
and the Parquet-only reference, and the whole CSV export with the catalog's memory sampled. Figures are printed, never asserted
(the machine is shared); what is asserted is that the API agreed with the floor, answered
without error and exported every row."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_the_benchmark_serves_pages_and_exports_every_row(bench_script, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = bench_script("bench_row_api")
    assert bench.main(["--rows", "20000", "--duration", "1", "--concurrency", "4", "--client", "threads", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    for label in ("row API, cold: first answers", "row API, warm: repeats", "row API, every answer computed"):
        line = next(line for line in printed.splitlines() if line.startswith(label))
        assert line.split()[-1] == "0", line  # errors
    assert "same code in process (floor)" in printed and "same code, the Parquet alone (reference)" in printed
    assert "CSV export of every row: 20,000 rows" in printed and "every row exported: met" in printed
