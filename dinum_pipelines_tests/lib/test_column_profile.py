"""The column profile published with each table (lib/publish/column_profile.py), against pandas: empty
cells, bounds, distinct values and most frequent values; from the footer's statistics, without
them, and on a sample when the table is larger than SAMPLE_ROWS."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dinum_pipelines.lib.publish import column_profile as module
from dinum_pipelines.lib.publish.column_profile import column_profile


def frame(rows: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "code": [None if i % 17 == 0 else f"{rng.integers(0, 40):05d}" for i in range(rows)],
        "montant": [None if i % 11 == 0 else float(rng.integers(-500, 5000)) / 4 for i in range(rows)],
        "jour": [dt.date(2020, 1, 1) + dt.timedelta(days=int(rng.integers(0, 900))) for i in range(rows)],
        "unique": [f"id-{i}" for i in range(rows)],
    })


def as_json(value):
    return value.isoformat() if isinstance(value, dt.date) else value


def expected_tops(series: pd.Series) -> list[dict]:
    counts = series.dropna().value_counts()
    counts = counts[counts > 1]
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:5]
    return [{"tops": as_json(value), "count": int(count)} for value, count in ordered]


@pytest.mark.parametrize("statistics", [True, False], ids=["footer", "no-footer-statistics"])
def test_the_profile_matches_pandas(tmp_path: Path, statistics: bool) -> None:
    df = frame(5000)
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=700, write_statistics=statistics)
    profile = column_profile(path, {"code": "Code commune"})
    assert profile["total_lines"] == len(df) and "sample_rows" not in profile
    assert profile["columns"]["code"] == {"python_type": "string", "duckdb_type": "VARCHAR", "description": "Code commune"}
    assert profile["columns"]["montant"]["python_type"] == "float" and profile["columns"]["jour"]["python_type"] == "date"
    for name in df.columns:
        shown, series = profile["profile"][name], df[name]
        assert shown["nb_missing_values"] == int(series.isna().sum()), name
        assert shown["nb_distinct"] == int(series.nunique()), name
        assert (shown["min"], shown["max"]) == (as_json(series.dropna().min()), as_json(series.dropna().max())), name
        assert shown["tops"] == expected_tops(series), name
    assert profile["profile"]["unique"]["tops"] == []  # no value seen twice


def test_a_large_table_counts_distinct_values_on_a_sample_and_the_rest_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "SAMPLE_ROWS", 3000)
    df = frame(30_000)
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=4096)
    profile = column_profile(path)
    assert profile["total_lines"] == 30_000 and 1000 <= profile["sample_rows"] < 10_000
    for name in df.columns:
        shown, series = profile["profile"][name], df[name]
        assert shown["nb_missing_values"] == int(series.isna().sum()), name  # exact: the footer
        assert (shown["min"], shown["max"]) == (as_json(series.dropna().min()), as_json(series.dropna().max())), name
        assert shown["nb_distinct"] <= min(int(series.nunique()), profile["sample_rows"]), name
    assert profile["profile"]["unique"]["nb_distinct"] == profile["sample_rows"]
    assert {top["tops"] for top in profile["profile"]["code"]["tops"]} <= set(df["code"].dropna())
