"""Repeats found on disk by DuckDB (the streaming path) against their in-memory references.

`resolve_duplicate_keys` must drop and report exactly what cleaning's pandas rule
(`drop_duplicate_keys`) drops and reports, and `repeated_rows` must fail exactly the rows the
Arrow engine's uniqueness expectations fail (themselves compared with plain GX elsewhere), on
random tables full of repeats, missing values, -0.0 and 0.0, spread over many row groups.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dinum_pipelines.lib.clean.cleaning import drop_duplicate_keys
from dinum_pipelines.lib.quality.engine_arrow import COMPOUND_UNIQUE, PARTIAL_UNEXPECTED_COUNT, UNIQUE, repeats_in_memory
from dinum_pipelines.lib.quality.rules import Rule
from dinum_pipelines.lib.clean.repeats import repeated_rows, resolve_duplicate_keys
from dinum_pipelines.lib.clean.tables import CleanTableWriter

POLICIES = ["drop_identical", "keep_first", "keep_last", "keep_all"]


def random_frame(seed: int, rows: int = 400) -> pd.DataFrame:
    """Few distinct values per column, so keys and whole rows repeat; about a tenth missing."""
    rng = np.random.default_rng(seed)

    def maybe_missing(values: pd.Series) -> pd.Series:
        return values.mask(rng.random(rows) < 0.1)

    codes = pd.Series(rng.choice(["01053", "2A004", "97411", "75056"], rows), dtype="str")
    amounts = pd.Series(rng.choice([0.0, -0.0, 1.5, 2.25], rows))
    counts = pd.Series(rng.integers(0, 4, rows), dtype="Int64")
    days = pd.Series(pd.to_datetime(rng.choice(["2024-01-01", "2024-02-29", "2023-12-31"], rows)))
    return pd.DataFrame(
        {"code": maybe_missing(codes), "montant": maybe_missing(amounts), "nombre": maybe_missing(counts), "jour": maybe_missing(days)}
    )


def written(frame: pd.DataFrame, folder, rows_per_group: int = 37):
    """The frame as the pipeline writes it: Parquet (dates as date32), in row groups of a few rows."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.set_column(3, "jour", table.column("jour").cast(pa.date32()))
    writer = CleanTableWriter(folder / "t.parquet", folder / "t.csv")
    for start in range(0, table.num_rows, rows_per_group):
        writer.write(table.slice(start, rows_per_group))
    writer.commit()
    return folder / "t.parquet", table


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("key", [["code"], ["code", "nombre"], ["montant", "jour"]])
@pytest.mark.parametrize("seed", [1, 2])
def test_duplicate_keys_resolved_on_disk_as_in_memory(tmp_path, seed, key, policy):
    frame = random_frame(seed)
    # Blank rows were dropped before: the frame's index holds the source's row positions.
    frame.index = pd.Index(np.flatnonzero(np.random.default_rng(seed).random(len(frame) * 2) < 0.5)[: len(frame)])
    parquet, _ = written(frame.reset_index(drop=True), tmp_path)
    kept, expected = drop_duplicate_keys(frame, key, policy)
    dropped, report = resolve_duplicate_keys(parquet, key, policy, lambda positions: np.asarray(frame.index)[positions] + 1)
    assert report is not None and expected is not None
    assert vars(report) == vars(expected)
    assert len(frame) - len(dropped) == len(kept)
    assert list(np.asarray(frame.index)[np.setdiff1d(np.arange(len(frame)), dropped)]) == list(kept.index)


def test_no_repeated_key_means_no_report(tmp_path):
    frame = pd.DataFrame({"code": pd.Series(["a", "b", "c"], dtype="str")})
    parquet, _ = written(frame.assign(montant=1.0, nombre=pd.array([1, 2, 3], dtype="Int64"), jour=pd.Timestamp("2024-01-01")), tmp_path)
    dropped, report = resolve_duplicate_keys(parquet, ["code"], "drop_identical", lambda positions: positions + 1)
    assert report is None and dropped.size == 0


@pytest.mark.parametrize("columns", [["code"], ["montant"], ["nombre"], ["jour"], ["code", "montant"], ["nombre", "jour", "code"]])
@pytest.mark.parametrize("seed", [4, 5])
def test_uniqueness_answered_on_disk_as_in_memory(tmp_path, seed, columns):
    parquet, table = written(random_frame(seed), tmp_path)
    rule = Rule(UNIQUE, {"column": columns[0]}, "critical", "schema") if len(columns) == 1 else Rule(COMPOUND_UNIQUE, {"column_list": columns}, "critical", "schema")
    count, first = repeated_rows(parquet, columns, PARTIAL_UNEXPECTED_COUNT)
    expected_count, expected_first = repeats_in_memory(table)(rule)
    assert count == expected_count and count > 0
    assert first.tolist() == expected_first.tolist()


def test_a_unique_column_has_no_repeated_row(tmp_path):
    frame = pd.DataFrame({"code": pd.Series([str(i) for i in range(500)] + [None], dtype="str")})
    frame = frame.assign(montant=np.arange(501) * 0.5, nombre=pd.array(range(501), dtype="Int64"), jour=pd.Timestamp("2024-01-01"))
    parquet, _ = written(frame, tmp_path)
    assert repeated_rows(parquet, ["code"], PARTIAL_UNEXPECTED_COUNT)[0] == 0
    assert repeated_rows(parquet, ["montant"], PARTIAL_UNEXPECTED_COUNT)[0] == 0


def test_compound_keys_with_missing_values_repeat_as_gx_says():
    """GX (pandas) counts a missing value as equal to a missing value in a compound key: so do
    both engines (the Arrow engine's joins, which never match a missing key, once missed these)."""
    from dinum_pipelines.lib.quality import run_rules

    table = pa.table({"a": pa.array(["x", "x", "y", "y", None, None], pa.large_string()), "b": [None, None, 1.0, -0.0, 0.0, None]})
    rule = Rule(COMPOUND_UNIQUE, {"column_list": ["a", "b"]}, "critical", "schema")
    reference = run_rules(table, "s", [rule], engine="gx")["results"][0]["result"]
    count, first = repeats_in_memory(table)(rule)
    assert (count, first.tolist()) == (reference["unexpected_count"], reference["partial_unexpected_index_list"]) == (2, [0, 1])
    table = pa.table({"a": pa.array(["x", "x", "y", "y"], pa.large_string()), "b": [None, None, 0.0, -0.0]})
    reference = run_rules(table, "s", [rule], engine="gx")["results"][0]["result"]
    assert repeats_in_memory(table)(rule)[0] == reference["unexpected_count"] == 4
