"""The usage-metrics benchmark's code paths, on 20,000 events, so that `make bench` cannot rot."""

from __future__ import annotations

import json

import pytest

@pytest.fixture
def bench_metrics(bench_script):
    return bench_script("bench_metrics")


def test_the_generated_day_is_counted_exactly(bench_metrics, tmp_path):
    events = tmp_path / "events.parquet"
    expected = bench_metrics.generate(events, 20_000)
    assert json.loads(events.with_suffix(".json").read_text(encoding="utf-8")) == expected
    assert 0 < expected["bot_events"] < expected["events"]
    measured = bench_metrics.run_ours(events, tmp_path / "daily.parquet")
    for name in ("events", "bot_events", "views", "downloads"):
        assert measured[name] == expected[name], name
    assert expected["views"] + expected["downloads"] + expected["bot_events"] == 20_000


def test_the_benchmark_runs_end_to_end(bench_metrics, tmp_path, capsys):
    assert bench_metrics.main(["--events", "20000", "--runs", "1", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "pq.read_table (reference)" in printed and "read + bots + count + write" in printed
    assert "counts vs generator: equal in every run" in printed
