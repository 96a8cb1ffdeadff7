"""Row indexes (catalog/table_index.py): a page read from an index is the page read from the
Parquet, for every operator, sort, column selection and page of test_row_api's oracle (which
checks the Parquet path against pandas); an index is built after publication, used by the API,
replaced with the file's new version and removed with the resource; a build another process holds
is not started twice; an index for another file is ignored; columns named like the positions stay
columns."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dinum_pipelines.catalog import row_arrays, table_index, tabular
from dinum_pipelines_tests.catalog.conftest import Api, RunningCatalog
from dinum_pipelines_tests.catalog.test_row_api import (
    DF,
    ROWS,
    TYPED,
    expected,
    oracle_cases,
    parquet_bytes,
    rows,
)


def observe_arrays(monkeypatch: pytest.MonkeyPatch, *, answer: bool = True) -> list[bool]:
    """Whether each page the row arrays were asked for was answered by them (or, with `answer`
    False, every page left to DuckDB)."""
    answered: list[bool] = []
    page = row_arrays.RowArrays.page

    def observed(self: row_arrays.RowArrays, *args: Any) -> Any:
        result = page(self, *args) if answer else None
        answered.append(result is not None)
        return result

    monkeypatch.setattr(row_arrays.RowArrays, "page", observed)
    return answered


@pytest.fixture
def twins(tmp_path: Path) -> tuple[Path, Path]:
    """The same Parquet twice: one without an index, one with a sorted copy for every column."""
    plain, indexed = tmp_path / "plain" / "t.parquet", tmp_path / "indexed" / "t.parquet"
    for path in (plain, indexed):
        path.parent.mkdir()
        path.write_bytes(parquet_bytes(DF))
    assert table_index.build(indexed, min_rows=0, columns=list(TYPED)) == table_index.index_path(indexed)
    return plain, indexed


def parsed(path: Path, items: list[tuple[str, str]]) -> tabular.RowQuery:
    connection = tabular.connect()
    try:
        return tabular.parse(connection, tabular.schema(connection, path), items)
    finally:
        connection.close()


def served_by_index(path: Path, items: list[tuple[str, str]]) -> bool:
    connection = tabular.connect()
    try:
        with table_index.usable(connection, path, build_if_missing=False) as index:
            return index is not None and index.table_for(parsed(path, items).filtered) is not None
    finally:
        connection.close()


@pytest.mark.parametrize("reader", ["arrays", "duckdb"])
@pytest.mark.parametrize("direct_scan_rows", [tabular.DIRECT_SCAN_ROWS, 0], ids=["ranges-scanned-in-file-order", "ranges-from-positions"])
def test_the_index_answers_every_query_as_the_parquet(
    twins: tuple[Path, Path], direct_scan_rows: int, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ways of reading a range's page (tabular._indexed_page): a small table is always
    scanned in file order, unless the threshold says otherwise; read from the rows' arrays
    (row_arrays.py) wherever they can answer, or by DuckDB alone."""
    monkeypatch.setattr(tabular, "DIRECT_SCAN_ROWS", direct_scan_rows)
    answered = observe_arrays(monkeypatch, answer=reader == "arrays")
    plain, indexed = twins
    queries: list[list[tuple[str, str]]] = [[(key, value)] for key, value, _mask in oracle_cases()]
    for column in TYPED:
        for direction in ("asc", "desc"):
            queries.append([(f"{column}__sort", direction), (f"{column}__isnotnull", "")])
            queries.append([("n__greater", "0"), (f"{column}__sort", direction), ("jour__less", "2020-03-01")])
    queries += [
        [("code__in", "00037,00074,99999"), ("nom__contains", "a"), ("columns", "nom,code")],
        [("jour__greater", "2020-02-01"), ("n__differs", "3"), ("x__sort", "desc"), ("columns", "x,n")],
        [("nom__exact", "Paris 0"), ("code__exact", "00000")],
        [("n__strictly_less", "10"), ("x__strictly_greater", "0")],
    ]
    paged = [("n__greater", "-3"), ("x__sort", "asc")]
    queries += [[*paged, ("page", str(page)), ("page_size", "7")] for page in (1, 2, 3, 6, 40)]
    for ranged in ([("n__greater", "-3")], [("jour__less", "2020-03-01"), ("jour__strictly_greater", "2020-01-05")], [("code__in", "00037,00074,00000,00011")]):
        queries += [[*ranged, ("page", str(page)), ("page_size", "3")] for page in (1, 2, 3, 9, 40)]  # no sort: in file order
    used = 0
    for items in queries:
        items = [*items, ("page_size", "1000")] if not any(key == "page_size" for key, _ in items) else items
        from_parquet, from_index = tabular.rows(plain, items), tabular.rows(indexed, items)
        assert from_index[1] == from_parquet[1] and from_index[2] == from_parquet[2], items
        narrowed = any(operator in table_index.NARROWING for _column, operator in parsed(indexed, items).filtered)
        assert served_by_index(indexed, items) == narrowed, items  # read from a sorted copy whenever one helps
        used += narrowed
    assert used > len(queries) / 2
    assert (sum(answered) > used / 2) if reader == "arrays" else not any(answered)
    assert not served_by_index(plain, [("n__exact", "3")])


def test_totals_from_the_counts_per_value_equal_the_parquets(twins: tuple[Path, Path]) -> None:
    """A page's total on one clustered column (a value, a list, nulls, bounds) comes from the
    index's counts per value, with no query: the same totals as the Parquet's, for every type."""
    plain, indexed = twins
    queries: list[list[tuple[str, str]]] = [[(key, value)] for key, value, _mask in oracle_cases()]
    queries += [
        [("jour__greater", "2020-02-01"), ("jour__strictly_less", "2020-03-15")],
        [("jour__strictly_greater", "2020-04-30"), ("jour__less", "2020-01-31")],  # empty
        [("nom__greater", "LYON"), ("nom__less", "Saint-Denis 3")],  # text, by code point
        [("n__strictly_greater", "-2"), ("n__less", "7"), ("n__greater", "0")],
        [("x__greater", "0.5")],
    ]
    connection = tabular.connect()
    counted = 0
    try:
        with table_index.usable(connection, indexed, build_if_missing=False) as index:
            assert index is not None and set(index.counts) == set(TYPED)
            for items in queries:
                query = tabular.parse(connection, tabular.schema(connection, indexed), items)
                column = query.compared[0][0]
                total = index.count(column, query.compared)
                assert total in (None, tabular.rows(plain, items)[2]), items
                counted += total is not None
    finally:
        connection.close()
    supported = [items for items in queries if {key.rsplit("__", 1)[1] for key, _ in items} <= {
        "exact", "in", "isnull", "greater", "less", "strictly_greater", "strictly_less"} and len({key.rsplit("__", 1)[0] for key, _ in items}) == 1]
    assert counted == len(supported) > 20


def test_a_selections_next_pages_reuse_its_total(twins: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Conditions on two columns are counted by a query, once: the selection's next pages reuse
    the total (the index does not change while attached)."""
    plain, indexed = twins
    counted: list[int] = []
    count = tabular._count
    monkeypatch.setattr(tabular, "_count", lambda *args: counted.append(1) or count(*args))
    selection = [("jour__greater", "2020-01-20"), ("n__greater", "0"), ("page_size", "3")]
    for page in ("1", "2", "3", "1"):
        items = [*selection, ("page", page)]
        from_index = tabular.rows(indexed, items)
        assert from_index[1:] == tabular.rows(plain, items)[1:], items
    assert len(counted) == 1 + 4  # the index's count once, the Parquet's every time


def test_values_reach_prepared_statements_as_values(twins: tuple[Path, Path]) -> None:
    """Pages run prepared statements with the values written as literals (tabular._PreparingCursor):
    quotes and SQL in a value are text, on the index and on the Parquet, first and repeated."""
    plain, indexed = twins
    quoted = [name for name in DF["nom"].dropna().unique() if "'" in name]
    assert quoted
    for path in (plain, indexed, plain, indexed):
        assert tabular.rows(path, [("nom__exact", quoted[0])])[2] == int((DF["nom"] == quoted[0]).sum()) > 0
        assert tabular.rows(path, [("nom__in", ",".join(quoted))])[2] == int(DF["nom"].isin(quoted).sum())
        for hostile in ("x'); DROP TABLE t; --", "'", "''", "\\'", "a\x00b"):
            assert tabular.rows(path, [("nom__exact", hostile), ("code__in", f"{hostile},00000")])[2] == 0
        assert tabular.rows(path, [("n__greater", "0")])[2] == int((DF["n"] >= 0).sum())


def test_an_index_made_for_another_file_or_format_is_ignored(twins: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _plain, indexed = twins
    other = tmp_path / "other" / "t.parquet"
    other.parent.mkdir()
    other.write_bytes(parquet_bytes(DF.head(20)))
    shutil.copy(table_index.index_path(indexed), table_index.index_path(other))  # the size differs
    assert tabular.rows(other, [("n__exact", "3")])[2] == int((DF.head(20)["n"] == 3).sum())
    assert not served_by_index(other, [("n__exact", "3")])
    monkeypatch.setattr(table_index, "FORMAT", table_index.FORMAT + 1)
    fresh = tmp_path / "fresh" / "t.parquet"
    shutil.copytree(indexed.parent, fresh.parent)
    assert not served_by_index(fresh, [("n__exact", "3")])


def test_a_build_another_process_holds_is_not_started_again(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(parquet_bytes(DF))
    lock = table_index.index_path(path).with_name(table_index.index_path(path).name + ".lock")
    lock.write_text(f"another-node {os.getpid()}\n")
    assert table_index.build(path, min_rows=0) is None and not table_index.index_path(path).exists()
    stale = time.time() - table_index.LOCK_STALE_SECONDS - 1
    os.utime(lock, (stale, stale))  # its builder died long ago
    assert table_index.build(path, min_rows=0) == table_index.index_path(path)
    table_index.remove(path)
    lock.write_text(f"{socket.gethostname()} {os.getpid()}\n")  # a live process of this host
    assert table_index.build(path, min_rows=0) is None
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    lock.write_text(f"{socket.gethostname()} {dead.stdout.strip()}\n")  # a worker that died mid-build
    assert table_index.build(path, min_rows=0) == table_index.index_path(path)
    assert not lock.exists() and not list(tmp_path.glob("*.part"))
    assert table_index.build(path, min_rows=ROWS + 1) is None  # a table below the threshold gets none


def stored(catalog: RunningCatalog, rid: str) -> Path:
    """The resource's current file."""
    resource = catalog.store.datasets.resource(rid)
    assert resource is not None
    return catalog.store.files.path(resource["file_key"])


@pytest.mark.parametrize("catalog_settings", ["sqlite"], indirect=True)  # files, not the database
def test_a_published_table_gets_an_index_its_new_version_another_and_deletion_removes_it(
    catalog: RunningCatalog, api: Api, anonymous: Api, dataset: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(table_index, "MIN_ROWS", 0)
    monkeypatch.setattr(table_index, "RETRY_SECONDS", 0)
    uploaded = api.upload(dataset["id"], "communes.parquet", parquet_bytes(DF))
    assert uploaded.status_code == 201, uploaded.text
    rid = uploaded.json()["id"]
    table_index.wait_for_builds()
    parquet = stored(catalog, rid)
    first = table_index.index_path(parquet)
    assert first.is_file() and table_index.arrays_path(parquet).is_file()
    mask = DF["jour"].notna() & (DF["jour"] >= dt.date(2020, 2, 1))
    assert rows(anonymous, rid, jour__greater="2020-02-01", page_size=1000)["data"] == expected(DF[mask])
    assert served_by_index(parquet, [("jour__greater", "2020-02-01")])

    replaced = api.upload(dataset["id"], "communes.parquet", parquet_bytes(DF.head(40)), resource_id=rid)
    assert replaced.status_code == 200, replaced.text
    assert not first.exists() and not table_index.arrays_path(parquet).exists()  # the old version's rows are no longer served
    table_index.wait_for_builds()
    second_parquet = stored(catalog, rid)
    second = table_index.index_path(second_parquet)
    assert second != first and second.is_file()
    assert rows(anonymous, rid, jour__greater="2020-02-01", page_size=1000)["data"] == expected(DF.head(40)[mask.head(40)])

    second.unlink()  # lost (a node that died mid-build, a file published before indexes): asked for again on reading
    assert rows(anonymous, rid, n__exact="3")["meta"]["total"] == int((DF.head(40)["n"] == 3).sum())
    table_index.wait_for_builds()
    assert second.is_file()

    assert api.delete(f"/datasets/{dataset['id']}/resources/{rid}/").status_code == 204
    assert not second.exists() and not table_index.arrays_path(second_parquet).exists()


def test_a_table_with_columns_named_like_the_positions(tmp_path: Path) -> None:
    """A file's own `file_row_number` and `__row_position` columns stay its columns in the index."""
    columns = {"file_row_number": [7, 8, 9, 8], "__row_position": ["a", "b", "c", "b"]}
    for name in ("plain", "indexed"):
        (tmp_path / name).mkdir()
        pq.write_table(pa.table(columns), tmp_path / name / "t.parquet")
    plain, indexed = tmp_path / "plain" / "t.parquet", tmp_path / "indexed" / "t.parquet"
    assert table_index.build(indexed, min_rows=0, columns=list(columns)) is not None
    for items in ([("file_row_number__exact", "8")], [("__row_position__greater", "b"), ("file_row_number__sort", "desc")],
                  [("__row_position__exact", "b"), ("page", "2"), ("page_size", "1")]):
        assert served_by_index(indexed, items)
        assert tabular.rows(indexed, items)[1:] == tabular.rows(plain, items)[1:], items


def test_a_file_removed_while_its_index_is_asked_for_gets_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A version replaced (or a resource deleted) right after its publication: its build, queued or
    running, leaves no index behind."""
    monkeypatch.setattr(table_index, "MIN_ROWS", 0)
    paths = []
    for number in range(4):
        path = tmp_path / str(number) / "t.parquet"
        path.parent.mkdir()
        path.write_bytes(parquet_bytes(DF))
        paths.append(path)
    for path in paths:
        table_index.published(path)
    for path in paths[1:]:
        table_index.remove(path)  # the first may be building already, the others are queued
    table_index.wait_for_builds()
    assert [table_index.index_path(path).exists() for path in paths] == [True, False, False, False]


def test_builds_yield_the_cores_to_the_requests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The builder's thread runs at BUILD_NICENESS, the request threads at the process's own."""
    monkeypatch.setattr(table_index, "MIN_ROWS", 0)
    seen = []
    build = table_index.build
    monkeypatch.setattr(table_index, "build", lambda parquet: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())) or build(parquet))
    path = tmp_path / "t.parquet"
    path.write_bytes(parquet_bytes(DF))
    table_index.published(path)
    table_index.wait_for_builds()
    assert seen == [max(table_index.BUILD_NICENESS, os.getpriority(os.PRIO_PROCESS, 0))]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == os.getpriority(os.PRIO_PROCESS, 0)
    assert table_index.index_path(path).exists()


def test_the_spill_folder_of_a_build_whose_process_died_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table_index.tempfile, "gettempdir", lambda: str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    left = tmp_path / f"dinum-rows-index-{dead.stdout.strip()}-abcd-"
    left.mkdir()
    (left / "spilled.tmp").write_bytes(b"x" * 100)
    live = table_index._spill_folder()
    again = table_index._spill_folder()  # this process is alive: its folders stay
    assert not left.exists() and live.is_dir() and again.is_dir() and live != again


def test_pages_of_one_value_are_read_from_the_arrays_as_duckdb_reads_them(twins: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """row_arrays.py answers the pages of one value (or the nulls) of a clustered column, sorted
    or not, every page and column selection: the same rows, order and totals as the Parquet;
    text searches are left to DuckDB."""
    plain, indexed = twins
    answered = observe_arrays(monkeypatch)
    values = {column: DF[column].dropna().unique().tolist()[:4] for column in TYPED}
    queries: list[list[tuple[str, str]]] = []
    for column in TYPED:
        conditions = [[(f"{column}__isnull", "")]] + [[(f"{column}__exact", str(value))] for value in values[column]]
        conditions.append([(f"{column}__exact", {"jour": "1999-01-01", "n": "7777", "x": "7777.5"}.get(column, "no such value"))])
        for condition in conditions:
            queries.append(condition)
            for sorted_by in TYPED:
                queries += [[*condition, (f"{sorted_by}__sort", direction)] for direction in ("asc", "desc")]
            queries += [[*condition, ("page", str(number)), ("page_size", "2")] for number in (1, 2, 5)]
            queries.append([*condition, ("columns", f"{column},nom")])
    served = 0
    for items in queries:
        items = [*items, ("page_size", "1000")] if not any(key == "page_size" for key, _ in items) else items
        answered.clear()
        from_parquet, from_index = tabular.rows(plain, items), tabular.rows(indexed, items)
        assert from_index[1] == from_parquet[1] and from_index[2] == from_parquet[2], items
        served += any(answered)
    assert served > len(queries) * 0.8
    answered.clear()
    tabular.rows(indexed, [("code__exact", "00037"), ("nom__contains", "a")])  # DuckDB's lower() and casts
    tabular.rows(indexed, [("code__in", ",".join(f"{n:05d}" for n in range(100))), ("x__sort", "asc")])
    assert answered == [False, True]


@pytest.mark.parametrize("text_offsets", [32, 64])
def test_random_queries_read_from_the_arrays_equal_the_parquets(tmp_path: Path, text_offsets: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fuzz of the arrays' reader against the Parquet: 3,000 rows with nulls, repeated values,
    a float column holding NaN, a timestamp and a boolean (not kept in the arrays: a page that
    shows it is DuckDB's); random conditions, sorts, pages and column selections. Text with
    32-bit offsets, and with 64-bit ones as past 2 GiB of a column's text."""
    if text_offsets == 64:
        monkeypatch.setattr(row_arrays, "NARROW_TEXT_BYTES", 0)
    rng = np.random.default_rng(7)
    size = 3000

    def holes(values: Any, share: float = 0.1) -> list[Any]:
        return [None if hole else value for value, hole in zip(values, rng.random(size) < share, strict=True)]

    frame = pa.table({
        "code": holes([f"{n:03d}" for n in rng.integers(0, 60, size)]),
        "dep": [["01", "2A", "75", "971", "b", "B", "é", "z"][n] for n in rng.integers(0, 8, size)],
        "n": pa.array(holes(rng.integers(-20, 20, size).tolist()), pa.int32()),
        "x": holes([float("nan") if n == 0 else n / 4 for n in rng.integers(0, 30, size)]),
        "y": holes(np.round(rng.normal(0, 10, size), 1).tolist()),
        "jour": holes([dt.date(2021, 1, 1) + dt.timedelta(days=int(n)) for n in rng.integers(0, 90, size)]),
        "ts": [dt.datetime(2021, 1, 1) + dt.timedelta(minutes=int(n)) for n in rng.integers(0, 5000, size)],
        "ok": [bool(n) for n in rng.integers(0, 2, size)],
    })
    plain, indexed = tmp_path / "plain" / "t.parquet", tmp_path / "indexed" / "t.parquet"
    for path in (plain, indexed):
        path.parent.mkdir()
        pq.write_table(frame, path, row_group_size=700)
    table_index.build(indexed, min_rows=0, columns=["code", "jour", "n", "dep"])
    answered = observe_arrays(monkeypatch)
    columns = list(frame.column_names)
    # NaN among the values asked for: "nan" is one of x's first values.
    samples = {name: [value for value in frame.column(name).to_pylist() if value is not None][:40] for name in columns}
    assert "nan" in map(str, samples["x"])

    def text(value: Any) -> str:
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else str(value)

    operators = ["exact", "exact", "in", "less", "greater", "strictly_less", "strictly_greater", "isnull", "isnotnull", "differs", "notin"]
    served = 0
    for _ in range(600):
        items: list[tuple[str, str]] = []
        for _condition in range(rng.integers(1, 4)):
            name = columns[rng.integers(0, len(columns))]
            operator = operators[rng.integers(0, len(operators))]
            picked = [text(samples[name][rng.integers(0, len(samples[name]))]) for _ in range(rng.integers(1, 4))]
            if name == "ok" and operator not in ("exact", "differs", "isnull", "isnotnull", "in", "notin"):
                operator = "exact"
            value = ",".join(picked) if operator in ("in", "notin") else "" if operator in ("isnull", "isnotnull") else picked[0]
            items.append((f"{name}__{operator}", value))
        if rng.random() < 0.4:
            items.append((f"{columns[rng.integers(0, len(columns))]}__sort", ["asc", "desc"][rng.integers(0, 2)]))
        if rng.random() < 0.75:
            items.append(("columns", ",".join(sorted(set(rng.choice(columns[:-1], rng.integers(1, 5)).tolist())))))
        items += [("page", str(rng.integers(1, 6))), ("page_size", str(rng.integers(1, 80)))]
        answered.clear()
        from_parquet, from_index = tabular.rows(plain, items), tabular.rows(indexed, items)
        assert from_index[1] == from_parquet[1] and from_index[2] == from_parquet[2], items
        served += any(answered)
    assert served > 100
