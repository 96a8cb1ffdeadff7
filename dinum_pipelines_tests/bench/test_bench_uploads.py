"""The upload benchmark's code path at a tiny size (a 3 MB file in 1 MiB parts), so that `make
bench` cannot rot. Figures are printed, never asserted: the machine is shared."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_the_benchmark_uploads_both_ways_and_samples_both_processes(
    bench_script, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = bench_script("bench_uploads")
    assert bench.main(["--size-mb", "3", "--chunk-mib", "1", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "chunked (1 MiB parts)" in printed and "whole (one streamed request)" in printed
    assert printed.count("checksum equals the file's sha1") == 2
    assert "the file hashed (sha1) and copied" in printed and "catalog peak over the whole run" in printed
