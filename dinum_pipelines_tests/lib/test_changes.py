"""The change summary of two clean Parquet files (lib/publish/changes.py), against pandas as the oracle:
the rule written plainly over rows read with pandas, missing values equal to each other."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dinum_pipelines.lib.publish.changes import TableChanges, table_changes


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_parquet(path, index=False)
    return path


def _normal(value: object) -> object:
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def rows(frame: pd.DataFrame, columns: Sequence[str], as_text: set[str] = frozenset()) -> list[tuple[object, ...]]:
    return [
        tuple(None if _normal(row[c]) is None else (str(row[c]) if c in as_text else row[c]) for c in columns)
        for _, row in frame.iterrows()
    ]


def oracle(before: Path, after: Path, key: Sequence[str]) -> TableChanges:
    old, new = pd.read_parquet(before), pd.read_parquet(after)
    added_columns = [c for c in new.columns if c not in old.columns]
    removed_columns = [c for c in old.columns if c not in new.columns]
    if not key or any(k not in old.columns or k not in new.columns for k in key):
        return TableChanges([], len(old), len(new), None, None, None, added_columns, removed_columns)
    common = [c for c in new.columns if c in old.columns]
    retyped = {c for c in common if old[c].dtype != new[c].dtype}
    old_keys, new_keys = set(rows(old, key)), set(rows(new, key))
    old_rows = set(rows(old, common, retyped))
    new_key_rows = rows(new, key)
    new_rows = rows(new, common, retyped)
    added = sum(1 for k in new_key_rows if k not in old_keys)
    removed = sum(1 for k in rows(old, key) if k not in new_keys)
    modified = sum(1 for k, r in zip(new_key_rows, new_rows, strict=True) if k in old_keys and r not in old_rows)
    return TableChanges(list(key), len(old), len(new), added, removed, modified, added_columns, removed_columns)


def test_a_hand_counted_example(tmp_path: Path) -> None:
    before = write(pd.DataFrame({"code": ["01", "02", "03", "04"], "nom": ["a", "b", "c", None], "n": [1.5, 2.0, np.nan, 4.0]}), tmp_path / "a.parquet")
    after = write(pd.DataFrame({"code": ["01", "02", "04", "05", "06"], "nom": ["a", "B", None, "e", "f"], "n": [1.5, 2.0, 4.25, 5.0, 6.0]}), tmp_path / "b.parquet")
    changes = table_changes(before, after, ["code"])
    # 05, 06 added; 03 removed; 02 (nom) and 04 (n) modified; 01 unchanged.
    assert changes == TableChanges(["code"], 4, 5, 2, 1, 2, [], [])
    assert changes == oracle(before, after, ["code"])
    assert changes.as_extra()["rows_modified"] == 2
    assert changes.describe() == "+2 -1 ~2 rows by code"


def test_missing_values_equal_each_other_in_keys_and_values(tmp_path: Path) -> None:
    frame = pd.DataFrame({
        "dep": ["01", None, "02", None], "code": ["1", "1", None, None], "v": [np.nan, 1.0, None, 2.0], "t": [None, "x", None, "y"],
    })
    before = write(frame, tmp_path / "a.parquet")
    after = write(frame.iloc[::-1], tmp_path / "b.parquet")  # same rows, another order
    assert table_changes(before, after, ["dep", "code"]) == TableChanges(["dep", "code"], 4, 4, 0, 0, 0, [], [])
    changed = frame.copy()
    changed.loc[3, "v"] = np.nan  # the row whose key is all missing
    after = write(changed, tmp_path / "c.parquet")
    assert table_changes(before, after, ["dep", "code"]) == TableChanges(["dep", "code"], 4, 4, 0, 0, 1, [], []) == oracle(before, after, ["dep", "code"])


@pytest.mark.parametrize("seed", range(6))
def test_random_edits_match_the_oracle(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    size = 300
    old = pd.DataFrame({
        "id": np.arange(size),
        "ville": rng.choice(["Paris", "Lyon", None, "Brest"], size),
        "montant": np.where(rng.random(size) < 0.1, np.nan, rng.normal(size=size).round(3)),
        "compte": pd.array(rng.integers(0, 5, size), dtype="Int64"),
    })
    old.loc[rng.random(size) < 0.1, "compte"] = pd.NA
    new = old.sample(frac=0.9, random_state=seed).copy()  # removes ~30 rows
    edit = new.sample(frac=0.2, random_state=seed + 1).index
    new.loc[edit, "montant"] = new.loc[edit, "montant"] + 0.5  # NaN + 0.5 stays NaN: not a change
    new.loc[new.sample(frac=0.05, random_state=seed + 2).index, "ville"] = None
    extra = pd.DataFrame({"id": np.arange(size, size + 25), "ville": "Nantes", "montant": 1.0, "compte": pd.array([1] * 25, dtype="Int64")})
    new = pd.concat([new, extra])
    if seed % 2:
        new = new.drop(columns=["compte"]).assign(nouvelle=1)
    if seed % 3 == 0:
        new = pd.concat([new, new.head(5)])  # repeated keys (a keep_all table)
    before, after = write(old, tmp_path / "a.parquet"), write(new, tmp_path / "b.parquet")
    computed = table_changes(before, after, ["id"])
    assert computed == oracle(before, after, ["id"])
    assert computed.rows_added >= 25 and computed.rows_removed == size - len(set(new["id"]) & set(old["id"]))


def test_changed_column_sets_and_types(tmp_path: Path) -> None:
    before = write(pd.DataFrame({"id": [1, 2, 3], "code": [10, 20, 30], "vieux": ["a", "b", "c"]}), tmp_path / "a.parquet")
    after = write(pd.DataFrame({"id": [1, 2, 3], "code": ["10", "21", "30"], "neuf": [True, False, True]}), tmp_path / "b.parquet")
    changes = table_changes(before, after, ["id"])
    assert changes == TableChanges(["id"], 3, 3, 0, 0, 1, ["neuf"], ["vieux"])  # code compared as text
    assert changes == oracle(before, after, ["id"])
    assert changes.describe() == "+0 -0 ~1 rows by id; columns +neuf -vieux"


def test_without_a_usable_key_only_rows_are_counted(tmp_path: Path) -> None:
    before = write(pd.DataFrame({"id": [1, 2, 3], "v": [1, 2, 3]}), tmp_path / "a.parquet")
    after = write(pd.DataFrame({"ident": [1, 2], "v": [1, 5]}), tmp_path / "b.parquet")
    for key in ([], ["id"]):  # no key; a key the new file lacks
        changes = table_changes(before, after, key)
        assert changes == TableChanges([], 3, 2, None, None, None, ["ident"], ["id"]) == oracle(before, after, key)
    assert table_changes(before, after).describe() == "3 -> 2 rows; columns +ident -id"
