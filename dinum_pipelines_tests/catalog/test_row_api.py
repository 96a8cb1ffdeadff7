"""The row API (catalog/tabular.py): `/api/resources/{rid}/data/` over a published Parquet, with
pandas as the oracle on the same frame for every operator, sort, column selection and pagination,
on both backends; and its 404 and 400 answers.

Comparisons follow SQL, as api-tabular's PostgREST does: a null cell matches no comparison
(`__notin`, `__notcontains` included), so the oracle masks nulls out explicitly; `__differs` is
api-tabular's `isdistinct`, which a null matches.

Also here: aggregation against pandas' groupby, the CSV and JSON exports against pandas' filter
and the pipeline's own CSV writer, the per-resource OpenAPI document (every parameter it lists is
accepted), the profile, usage counting on the `tabular` channel, and HTTP Range requests on the
Parquet file read remotely by pyarrow."""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fsspec
import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dinum_pipelines.catalog import row_arrays, table_index, tabular
from dinum_pipelines.catalog.app import COMPUTING_THREADS
from dinum_pipelines.catalog.events import RESOURCE_DOWNLOAD
from dinum_pipelines.lib.publish.column_profile import PROFILE_EXTRA
from dinum_pipelines.lib.clean.tables import write_csv
from dinum_pipelines_tests.catalog.conftest import Api, RunningCatalog

ROWS = 57


def frame() -> pd.DataFrame:
    """Strings (codes with leading zeros, mixed-case names), ints, floats and dates, with nulls."""
    codes = [None if i % 11 == 5 else f"{(i * 37) % 100:05d}" for i in range(ROWS)]
    names = [None if i % 13 == 7 else ["Paris", "marseille", "LYON", "Saint-Denis", "l'Haÿ"][i % 5] + f" {i % 4}" for i in range(ROWS)]
    ints = pd.array([None if i % 9 == 4 else (i * 7) % 23 - 5 for i in range(ROWS)], dtype="Int64")
    floats = [None if i % 8 == 3 else round((i * 13) % 17 / 4 - 1.25, 2) for i in range(ROWS)]
    dates = [None if i % 10 == 6 else dt.date(2020, 1, 1) + dt.timedelta(days=(i * 41) % 120) for i in range(ROWS)]
    return pd.DataFrame({"code": codes, "nom": names, "n": ints, "x": floats, "jour": dates})


DF = frame()
TYPED: dict[str, Callable[[str], Any]] = {"code": str, "nom": str, "n": int, "x": float, "jour": dt.date.fromisoformat}


def as_json(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def expected(df: pd.DataFrame, columns: list[str] | None = None) -> list[dict[str, Any]]:
    records = []
    for index, row in df.iterrows():
        record: dict[str, Any] = {} if columns else {"__id": int(index) + 1}  # type: ignore[call-overload]
        record.update({column: as_json(row[column]) for column in columns or list(DF.columns)})
        records.append(record)
    return records


def parquet_bytes(df: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buffer, row_group_size=20)
    return buffer.getvalue()


@pytest.fixture
def published(api: Api, dataset: dict[str, Any]) -> dict[str, str]:
    """The pipeline's publication: `communes.csv` and `communes.parquet`, plus a CSV without Parquet."""
    ids = {}
    for name, content in (
        ("communes.csv", DF.to_csv(index=False).encode()),
        ("communes.parquet", parquet_bytes(DF)),
        ("seul.csv", b"a,b\n1,2\n"),
    ):
        response = api.upload(dataset["id"], name, content)
        assert response.status_code == 201, response.text
        ids[name] = response.json()["id"]
    assert pq.read_table(io.BytesIO(parquet_bytes(DF))).schema.field("jour").type == pa.date32()
    return ids


def rows(api: Api, rid: str, **params: Any) -> dict[str, Any]:
    response = api.get(f"/api/resources/{rid}/data/", params=params)
    assert response.status_code == 200, (params, response.text)
    return response.json()


def oracle_cases() -> list[tuple[str, str, pd.Series]]:
    """(parameter, value, pandas mask) for every operator on every column."""
    cases = []
    for column, cast in TYPED.items():
        series = DF[column]
        present = series.notna()
        values = sorted(series.dropna().tolist())
        middle = values[len(values) // 2]
        text = middle.isoformat() if isinstance(middle, dt.date) else str(middle)
        typed = cast(text)
        absent = {"code": "99999", "nom": "zzz", "n": "999", "x": "9.75", "jour": "1999-01-01"}[column]
        listed = f"{text},{values[0].isoformat() if isinstance(values[0], dt.date) else values[0]},{absent}"
        members = [cast(item) for item in listed.split(",")]
        needle = {"code": "07", "nom": "AR", "n": "1", "x": ".5", "jour": "-02-"}[column]
        as_text = series.map(lambda v: None if pd.isna(v) else (v.isoformat() if isinstance(v, dt.date) else str(v)))
        contains = as_text.str.lower().str.contains(needle.lower(), regex=False)
        cases += [
            (f"{column}__exact", text, present & (series == typed)),
            (f"{column}__differs", text, ~(present & (series == typed))),
            (f"{column}__less", text, present & (series <= typed)),
            (f"{column}__greater", text, present & (series >= typed)),
            (f"{column}__strictly_less", text, present & (series < typed)),
            (f"{column}__strictly_greater", text, present & (series > typed)),
            (f"{column}__in", listed, present & series.isin(members)),
            (f"{column}__notin", listed, present & ~series.isin(members)),
            (f"{column}__contains", needle, present & contains.fillna(False).astype(bool)),
            (f"{column}__notcontains", needle, present & ~contains.fillna(False).astype(bool)),
            (f"{column}__isnull", "", ~present),
            (f"{column}__isnotnull", "", present),
        ]
    return cases


def test_every_operator_sort_and_columns_match_pandas(anonymous: Api, published: dict[str, str]) -> None:
    parquet, csv = published["communes.parquet"], published["communes.csv"]
    everything = rows(anonymous, parquet, page_size=1000)
    assert everything["data"] == expected(DF)
    assert everything["data"][0]["code"] == "00000" and everything["meta"]["total"] == ROWS
    assert rows(anonymous, csv, page_size=1000)["data"] == everything["data"]  # the CSV served from its Parquet

    cases = oracle_cases()
    assert all(mask.any() and not mask.all() for _key, _value, mask in cases if not _key.endswith("null")), [
        key for key, _value, mask in cases if not (mask.any() and not mask.all())
    ]
    for key, value, mask in cases:
        answer = rows(anonymous, parquet, **{key: value, "page_size": 1000})
        assert answer["data"] == expected(DF[mask]), key
        assert answer["meta"]["total"] == int(mask.sum()), key

    for column in TYPED:
        for direction in ("asc", "desc"):
            ordered = DF.assign(__id=range(ROWS)).sort_values(
                [column, "__id"], ascending=[direction == "asc", True],
                na_position="last" if direction == "asc" else "first", kind="mergesort",
            ).drop(columns="__id")
            answer = rows(anonymous, parquet, **{f"{column}__sort": direction, "page_size": 1000})
            assert answer["data"] == expected(ordered), (column, direction)

    combined = rows(anonymous, csv, n__greater="0", nom__contains="a", x__sort="desc", columns="code,x", page_size=1000)
    mask = DF["n"].notna() & (DF["n"] >= 0) & DF["nom"].notna() & DF["nom"].str.lower().str.contains("a", regex=False)
    ordered = DF[mask.fillna(False).astype(bool)].assign(__id=lambda d: d.index).sort_values(
        ["x", "__id"], ascending=[False, True], na_position="first", kind="mergesort"
    )
    assert combined["data"] == expected(ordered, ["code", "x"])
    assert all(list(row) == ["code", "x"] for row in combined["data"])


def test_pagination(anonymous: Api, published: dict[str, str]) -> None:
    rid = published["communes.parquet"]
    first = rows(anonymous, rid)
    assert first["meta"] == {"page": 1, "page_size": 20, "total": ROWS}  # api-tabular's default size
    assert first["links"]["prev"] is None
    assert first["links"]["profile"].endswith(f"/api/resources/{rid}/profile/")
    assert first["links"]["swagger"].endswith(f"/api/resources/{rid}/swagger/")

    seen: list[dict[str, Any]] = []
    answer = rows(anonymous, rid, page_size=10, n__sort="desc")
    pages = 1
    while True:
        seen += answer["data"]
        assert answer["meta"] == {"page": pages, "page_size": 10, "total": ROWS}
        if answer["links"]["next"] is None:
            break
        assert "n__sort=desc" in answer["links"]["next"]
        following = anonymous.get(answer["links"]["next"])
        assert following.status_code == 200, following.text
        answer = following.json()
        pages += 1
        assert answer["links"]["prev"] is not None and f"page={pages - 1}" in answer["links"]["prev"]
    assert pages == 6 and len(answer["data"]) == ROWS - 50  # the last page holds the rest
    assert seen == rows(anonymous, rid, page_size=1000, n__sort="desc")["data"]
    assert [row["__id"] for row in seen] != sorted(row["__id"] for row in seen)  # really sorted by n
    beyond = rows(anonymous, rid, page=7, page_size=10)
    assert beyond["data"] == [] and beyond["meta"]["total"] == ROWS and beyond["links"]["next"] is None


def test_not_found_and_bad_requests(anonymous: Api, published: dict[str, str]) -> None:
    for rid in ("000000000000000000000000", published["seul.csv"]):
        response = anonymous.get(f"/api/resources/{rid}/data/")
        assert response.status_code == 404, response.text
        assert response.json()["status"] == 404 and response.json()["message"]

    rid = published["communes.parquet"]
    for params, named in (
        ({"nope__exact": "1"}, "nope"),
        ({"n__like": "1"}, "like"),
        ({"n__less": "abc"}, "n__less"),
        ({"jour__greater": "2020-13-45"}, "jour__greater"),
        ({"n__in": "1,deux"}, "n__in"),
        ({"x__sort": "sideways"}, "x__sort"),
        ({"columns": "code,nope"}, "nope"),
        ({"nom": "Paris"}, "nom"),
        ({"page": "0"}, "page"),
        ({"page_size": "1001"}, "page_size"),
        ({"page_size": "deux"}, "page_size"),
    ):
        response = anonymous.get(f"/api/resources/{rid}/data/", params=params)
        assert response.status_code == 400, (params, response.text)
        detail = response.json()["errors"][0]["detail"]
        assert named in detail, (params, detail)
    assert rows(anonymous, rid, page_size=1000)["meta"]["page_size"] == 1000
    # A value is bound, never spliced into the SQL: quotes are just characters to match.
    assert rows(anonymous, rid, nom__exact="x' OR '1'='1")["meta"]["total"] == 0


def test_a_column_named_like_duckdbs_row_number(tmp_path: Path) -> None:
    """A file whose own column is called `file_row_number` (DuckDB's option's name) is served too."""
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"file_row_number": [7, 8, 9], "__row_position": ["a", "b", "c"]}), path)
    _query, data, total = tabular.rows(path, [("file_row_number__greater", "8"), ("__row_position__sort", "desc")])
    assert total == 2 and data == [
        {"__id": 3, "file_row_number": 9, "__row_position": "c"}, {"__id": 2, "file_row_number": 8, "__row_position": "b"},
    ]
    assert tabular.rows(path, [("page", "2"), ("page_size", "2")])[1] == [{"__id": 3, "file_row_number": 9, "__row_position": "c"}]


@pytest.mark.parametrize("kind", [pa.float64(), pa.float32()], ids=["double", "float"])
def test_filters_on_a_float_column_find_its_nan_rows_as_duckdb_does_in_memory(tmp_path: Path, kind: pa.DataType) -> None:
    """Arrow's row-group statistics leave NaN out, and DuckDB skipped the groups they rule out
    (tabular._compared): each filter's count on the Parquet equals DuckDB's on the same rows in
    memory, where NaN is one value, after every number."""
    values = [1.0, 2.0, float("nan"), None, 10.0, 11.0, 12.0, 3.0, float("nan")]
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": pa.array(values, kind), "n": list(range(len(values)))}), path, row_group_size=3)
    in_memory = duckdb.connect()
    in_memory.register("t", pa.table({"x": pa.array(values, kind)}))
    for key, value, condition in (
        ("x__greater", "5", "x >= 5"), ("x__strictly_greater", "2.5", "x > 2.5"), ("x__less", "2", "x <= 2"),
        ("x__strictly_less", "11", "x < 11"), ("x__exact", "nan", "x = 'nan'"), ("x__differs", "1", "x IS DISTINCT FROM 1"),
        ("x__in", "nan,10", "x IN ('nan', 10)"), ("x__notin", "nan,1", "x NOT IN ('nan', 1)"),
    ):
        expected = in_memory.execute(f"SELECT count(*) FROM t WHERE {condition}").fetchone()[0]
        assert tabular.rows(path, [(key, value)])[2] == expected, (key, value, expected)
    assert tabular.rows(path, [("x__greater", "5"), ("columns", "n")])[1] == [{"n": 2}, {"n": 4}, {"n": 5}, {"n": 6}, {"n": 8}]


def test_a_private_datasets_rows_are_for_its_editors(api: Api, anonymous: Api, dataset: dict[str, Any]) -> None:
    private = api.create_dataset(title="Secret", organization=dataset["organization"]["id"], private=True)
    response = api.upload(private["id"], "secret.parquet", parquet_bytes(DF.head(3)))
    assert response.status_code == 201, response.text
    rid = response.json()["id"]
    assert rows(api, rid)["meta"]["total"] == 3
    hidden = anonymous.get(f"/api/resources/{rid}/data/")
    assert hidden.status_code == 404 and hidden.json()["status"] == 404


AGGREGATES: dict[str, Callable[[pd.Series], Any]] = {
    "count": lambda s: int(s.count()),
    "sum": lambda s: s.sum(min_count=1),  # SQL: the sum of no value is null, not 0
    "avg": lambda s: s.mean(),
    "min": lambda s: s.min(),
    "max": lambda s: s.max(),
}


def aggregated(df: pd.DataFrame, groups: list[str], aggregates: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """pandas' answer: one record per group (nulls a group of their own, as SQL), groups sorted
    ascending with nulls last, each aggregate named `column__operator`."""
    keyed = df.assign(__key=list(zip(*([as_json(v) for v in df[g]] for g in groups), strict=True)) if groups else [()] * len(df))
    keys = sorted(set(keyed["__key"]), key=lambda key: [(value is None, value or 0 if not isinstance(value, str) else value) for value in key])
    records = []
    for key in keys or [()]:
        part = keyed[keyed["__key"] == key] if groups else keyed
        record: dict[str, Any] = dict(zip(groups, key, strict=True))
        for column, operator in aggregates:
            record[f"{column}__{operator}"] = as_json(AGGREGATES[operator](part[column].dropna()))
        records.append(record)
    return records


def approximately(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: pytest.approx(value) if isinstance(value, float) else value for key, value in record.items()} for record in records]


def test_aggregation_matches_pandas(anonymous: Api, published: dict[str, str]) -> None:
    rid = published["communes.parquet"]
    every = [(column, operator) for column in ("n", "x") for operator in AGGREGATES] + [
        ("code", "count"), ("code", "min"), ("jour", "max"), ("nom", "count"),
    ]
    for groups in ([], ["nom"], ["jour"], ["nom", "n"]):
        params = {f"{g}__groupby": "" for g in groups} | {f"{c}__{o}": "" for c, o in every} | {"page_size": 1000}
        answer = rows(anonymous, rid, **params)
        wanted = aggregated(DF, groups, every)
        assert answer["data"] == approximately(wanted), groups
        assert answer["meta"]["total"] == len(wanted)
        assert all("__id" not in record for record in answer["data"])

    # Filters apply before grouping; an aggregate can be sorted on; groups are paged.
    mask = DF["x"].notna() & (DF["x"] > 0)
    wanted = sorted(aggregated(DF[mask.astype(bool)], ["nom"], [("n", "sum")]),
                    key=lambda r: (r["n__sum"] is not None, -(r["n__sum"] or 0)))  # desc, nulls first
    params = {"x__strictly_greater": "0", "nom__groupby": "", "n__sum": "", "n__sum__sort": "desc", "page_size": 4}
    first, second = rows(anonymous, rid, **params), rows(anonymous, rid, **params, page=2)
    assert [r["n__sum"] for r in first["data"] + second["data"]] == [r["n__sum"] for r in wanted[:8]]
    assert first["meta"]["total"] == len(wanted) and first["links"]["next"]
    # groupby alone: the distinct values
    assert [r["nom"] for r in rows(anonymous, rid, nom__groupby="", page_size=1000)["data"]] == [
        r["nom"] for r in aggregated(DF, ["nom"], [])
    ]

    for params, named in (
        ({"nom__sum": ""}, "nom__sum"),  # a sum of text
        ({"jour__avg": ""}, "jour__avg"),
        ({"nom__groupby": "", "columns": "nom"}, "columns"),  # api-tabular's rule
        ({"nom__groupby": "", "code__sort": "asc"}, "code__sort"),  # not a group of this query
        ({"n__median": ""}, "median"),
    ):
        response = anonymous.get(f"/api/resources/{rid}/data/", params=params)
        assert response.status_code == 400, (params, response.text)
        assert named in response.json()["errors"][0]["detail"], (params, response.text)


def test_exports_stream_the_whole_selection(anonymous: Api, published: dict[str, str], tmp_path: Path) -> None:
    rid = published["communes.parquet"]
    # Unfiltered, the export is the table as the pipeline writes its CSV (same writer, same options).
    local = tmp_path / "communes.csv"
    write_csv(pq.read_table(io.BytesIO(parquet_bytes(DF))), local)
    whole = anonymous.get(f"/api/resources/{rid}/data/csv/")
    assert whole.status_code == 200 and whole.headers["content-type"].startswith("text/csv")
    assert whole.content == local.read_bytes()
    assert "attachment" in whole.headers["content-disposition"]

    # Filtered and sorted: pandas' filter of the same rows.
    params = {"nom__contains": "a", "n__greater": "0", "x__sort": "desc"}
    mask = (DF["nom"].notna() & DF["nom"].str.lower().str.contains("a", regex=False) & DF["n"].notna() & (DF["n"] >= 0)).astype(bool)
    ordered = DF[mask].assign(__id=lambda d: d.index).sort_values(
        ["x", "__id"], ascending=[False, True], na_position="first", kind="mergesort"
    ).drop(columns="__id")
    exported = pd.read_csv(io.BytesIO(anonymous.get(f"/api/resources/{rid}/data/csv/", params=params).content), dtype={"code": str})
    oracle = pd.read_csv(io.StringIO(ordered.to_csv(index=False)), dtype={"code": str})
    assert len(exported) == int(mask.sum()) > 0
    pd.testing.assert_frame_equal(exported, oracle, check_dtype=False)

    # JSON: the same rows as the paged API, without __id, pages ignored.
    as_json_export = anonymous.get(f"/api/resources/{rid}/data/json/", params={**params, "page_size": 2})
    assert as_json_export.status_code == 200 and as_json_export.headers["content-type"] == "application/json"
    paged = rows(anonymous, rid, **params, page_size=1000)["data"]
    assert as_json_export.json() == [{k: v for k, v in row.items() if k != "__id"} for row in paged]

    # Aggregates export too; an empty selection is a header (CSV) or [] (JSON); a bad query is a 400.
    grouped = anonymous.get(f"/api/resources/{rid}/data/csv/", params={"jour__groupby": "", "n__count": ""})
    assert grouped.text.splitlines()[0] == '"jour","n__count"' and len(grouped.text.splitlines()) == 1 + DF["jour"].nunique(dropna=False)
    assert anonymous.get(f"/api/resources/{rid}/data/csv/", params={"code__exact": "nope"}).text == local.read_text().splitlines()[0] + "\n"
    assert anonymous.get(f"/api/resources/{rid}/data/json/", params={"code__exact": "nope"}).json() == []
    bad = anonymous.get(f"/api/resources/{rid}/data/csv/", params={"n__less": "abc"})
    assert bad.status_code == 400 and "n__less" in bad.json()["errors"][0]["detail"]
    assert anonymous.get(f"/api/resources/{published['seul.csv']}/data/json/").status_code == 404


def test_swagger_lists_each_column_and_every_listed_parameter_works(anonymous: Api, published: dict[str, str]) -> None:
    rid = published["communes.parquet"]
    document = anonymous.get(f"/api/resources/{rid}/swagger/").json()
    assert document["openapi"].startswith("3.")
    data_path = f"/api/resources/{rid}/data/"
    assert set(document["paths"]) == {data_path, f"{data_path}csv/", f"{data_path}json/"}
    properties = document["components"]["schemas"]["Resource"]["properties"]
    assert {name: properties[name]["type"] for name in DF.columns} == {
        "code": "string", "nom": "string", "n": "integer", "x": "number", "jour": "string",
    }
    names = [parameter["name"] for parameter in document["paths"][data_path]["get"]["parameters"]]
    assert {"n__sum", "x__avg", "jour__contains", "code__groupby", "nom__sort"} <= set(names)
    assert "nom__sum" not in names and "jour__avg" not in names
    samples = {"code": "00037", "nom": "Paris 0", "n": "2", "x": "0.5", "jour": "2020-02-01"}
    for parameter in document["paths"][data_path]["get"]["parameters"]:
        name = parameter["name"]
        if name in ("page", "page_size"):
            value = "2"
        elif name == "columns":
            value = "code,x"
        elif name.endswith("__sort"):
            value = "desc"
        elif parameter.get("allowEmptyValue"):
            value = ""
        else:
            value = samples[name.rpartition("__")[0]]
        response = anonymous.get(data_path, params={name: value})
        assert response.status_code == 200, (name, response.text)
    assert anonymous.get(f"/api/resources/{published['seul.csv']}/swagger/").status_code == 404


def test_the_profile_is_the_one_published_with_the_file(api: Api, anonymous: Api, dataset: dict[str, Any], published: dict[str, str]) -> None:
    rid = published["communes.parquet"]
    missing = anonymous.get(f"/api/resources/{rid}/profile/")
    assert missing.status_code == 404 and missing.json()["message"]
    profile = {"total_lines": ROWS, "columns": {"code": {"python_type": "string"}}, "profile": {"code": {"nb_distinct": 3}}}
    response = api.put(f"/api/2/datasets/{dataset['id']}/resources/{rid}/extras/", json={PROFILE_EXTRA: profile})
    assert response.status_code == 200, response.text
    answer = anonymous.get(f"/api/resources/{rid}/profile/")
    assert answer.status_code == 200 and answer.json()["profile"] == profile


def test_every_call_is_counted_on_the_tabular_channel(catalog: RunningCatalog, anonymous: Api, published: dict[str, str]) -> None:
    rid = published["communes.parquet"]
    before = len(catalog.store.events.list(kind=RESOURCE_DOWNLOAD))
    rows(anonymous, rid)
    rows(anonymous, rid, page=2)
    anonymous.get(f"/api/resources/{rid}/data/csv/")
    anonymous.get(f"/api/resources/{rid}/data/json/", params={"n__groupby": ""})
    anonymous.get(f"/api/resources/{rid}/data/", params={"n__less": "abc"})  # refused: counted, as any call
    anonymous.get(f"/api/resources/{rid}/swagger/")  # documentation is not a use of the data
    events = catalog.store.events.list(kind=RESOURCE_DOWNLOAD)[before:]
    assert [(event["channel"], event["resource_id"]) for event in events] == [("tabular", rid)] * 5


def test_the_parquet_file_answers_range_requests(catalog: RunningCatalog, api: Api, anonymous: Api, dataset: dict[str, Any]) -> None:
    """What DuckDB, Polars or pyarrow do to query a remote Parquet file: its footer, then only the
    byte ranges of the row groups and columns asked for. One such query is not a download."""
    big = pd.DataFrame({"n": range(200_000), "label": [f"ligne {i % 977}" for i in range(200_000)]})
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(big, preserve_index=False), buffer, row_group_size=20_000)
    whole = buffer.getvalue()
    uploaded = api.upload(dataset["id"], "grand.parquet", whole)
    assert uploaded.status_code == 201, uploaded.text
    url = uploaded.json()["url"]
    before = len(catalog.store.events.list(kind=RESOURCE_DOWNLOAD))
    part = anonymous.get(url, headers={"Range": "bytes=4-103"})
    assert part.status_code == 206 and part.content == whole[4:104]
    assert part.headers["content-range"] == f"bytes 4-103/{len(whole)}"
    tail = anonymous.get(url, headers={"Range": "bytes=-8"})
    assert tail.status_code == 206 and tail.content == whole[-8:] and tail.content.endswith(b"PAR1")
    assert anonymous.get(url, headers={"Range": f"bytes={len(whole) + 10}-"}).status_code == 416
    head = anonymous.session.head(url)
    assert head.headers["accept-ranges"] == "bytes" and int(head.headers["content-length"]) == len(whole)

    with fsspec.filesystem("http").open(url, block_size=4096, cache_type="none") as remote:
        table = pq.read_table(remote, columns=["n"], filters=[("n", ">=", 190_000)])
    assert table.column("n").to_pylist() == list(range(190_000, 200_000))
    assert len(catalog.store.events.list(kind=RESOURCE_DOWNLOAD)) == before  # ranges are not downloads
    assert anonymous.get(url, headers={"Range": "bytes=0-99"}).content == whole[:100]  # a download's start is one
    assert len(catalog.store.events.list(kind=RESOURCE_DOWNLOAD)) == before + 1


MILLION = 1_000_000


def million_rows() -> pd.DataFrame:
    """1M DVF-like rows: codes kept as text, a skewed category, prices, nullable surfaces, dates."""
    rng = np.random.default_rng(1_000_000)
    return pd.DataFrame({
        "code_commune": pd.Series(np.char.zfill(rng.integers(1000, 96000, MILLION).astype("U5"), 5)),
        "nature": pd.Series(np.array(["Vente", "Echange", "Adjudication"])[rng.choice(3, MILLION, p=[.9, .07, .03])]),
        "valeur": np.round(rng.lognormal(12, 1, MILLION), 2),
        "surface": pd.array(np.where(rng.random(MILLION) < .3, None, rng.integers(9, 400, MILLION)), dtype="Int64"),
        "jour": pd.Series(pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, MILLION), unit="D")).dt.date,
    })


@pytest.mark.parametrize("catalog_settings", ["sqlite"], indirect=True)  # the rows come from the file, not the database
def test_a_million_rows_match_pandas(api: Api, anonymous: Api, dataset: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every filter and a deep sorted page, from the Parquet (anonymous, as soon as published),
    then from the row index built meanwhile and its arrays (with a key: the response cache keeps
    the anonymous answers); then an aggregation and an export."""
    df = million_rows()
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buffer, row_group_size=131_072)
    uploaded = api.upload(dataset["id"], "dvf.parquet", buffer.getvalue())
    assert uploaded.status_code == 201, uploaded.text
    rid = uploaded.json()["id"]
    present = df["surface"].notna()
    ordered = df.assign(__id=np.arange(1, MILLION + 1)).sort_values(["valeur", "__id"], ascending=[False, True], kind="mergesort")

    def check(client: Api) -> None:
        for params, mask in (
            ({"code_commune__exact": "75056"}, df["code_commune"] == "75056"),
            ({"code_commune__exact": "75056", "page": "2", "page_size": "7"}, df["code_commune"] == "75056"),
            ({"nature__differs": "Vente"}, df["nature"] != "Vente"),
            ({"valeur__greater": "500000", "valeur__strictly_less": "510000"}, (df["valeur"] >= 500000) & (df["valeur"] < 510000)),
            ({"surface__less": "20"}, present & (df["surface"] <= 20)),
            ({"surface__isnull": ""}, ~present),
            ({"code_commune__in": "01001,13055,69123"}, df["code_commune"].isin(["01001", "13055", "69123"])),
            ({"code_commune__in": "01001,13055", "nature__exact": "Vente"}, df["code_commune"].isin(["01001", "13055"]) & (df["nature"] == "Vente")),
            ({"code_commune__contains": "055"}, df["code_commune"].str.contains("055", regex=False)),
            ({"jour__strictly_greater": "2024-01-01"}, df["jour"] > dt.date(2024, 1, 1)),
            ({"jour__greater": "2023-03-01", "jour__less": "2023-03-31", "valeur__strictly_greater": "250000"},
             (df["jour"] >= dt.date(2023, 3, 1)) & (df["jour"] <= dt.date(2023, 3, 31)) & (df["valeur"] > 250000)),
        ):
            mask = mask.fillna(False).astype(bool)
            size, page = int(params.get("page_size", 1000)), int(params.get("page", 1))
            answer = rows(client, rid, **{"page_size": size, **params})
            assert answer["meta"]["total"] == int(mask.sum()), params
            assert [row["__id"] for row in answer["data"]] == [int(i) + 1 for i in df.index[mask][(page - 1) * size : page * size]], params
        # A sort, and a page deep into it.
        deep = rows(client, rid, valeur__sort="desc", page=37, page_size=1000)
        assert [row["__id"] for row in deep["data"]] == ordered["__id"].iloc[36_000:37_000].tolist()
        assert [row["valeur"] for row in deep["data"]] == ordered["valeur"].iloc[36_000:37_000].tolist()
        commune = ordered[ordered["code_commune"] == "13055"]
        by_value = rows(client, rid, code_commune__exact="13055", valeur__sort="desc", page_size=1000)
        assert [row["__id"] for row in by_value["data"]] == commune["__id"].tolist()

    check(anonymous)
    table_index.wait_for_builds()
    answered: list[bool] = []
    page = row_arrays.RowArrays.page
    monkeypatch.setattr(row_arrays.RowArrays, "page", lambda self, *args: answered.append(True) or page(self, *args))
    check(api)
    assert len(answered) >= 8  # the catalog serves in this process: its pages came from the arrays

    # Aggregation by a category.
    answer = rows(anonymous, rid, nature__groupby="", valeur__sum="", valeur__avg="", surface__count="", surface__max="", jour__min="")
    grouped = df.groupby("nature").agg(s=("valeur", "sum"), a=("valeur", "mean"), c=("surface", "count"), m=("surface", "max"), j=("jour", "min"))
    assert answer["data"] == [
        {"nature": nature, "valeur__sum": pytest.approx(row.s), "valeur__avg": pytest.approx(row.a), "surface__count": int(row.c),
         "surface__max": int(row.m), "jour__min": row.j.isoformat()}
        for nature, row in grouped.sort_index().iterrows()
    ]

    # The CSV export of a filtered selection is pandas' filter of the same rows.
    mask = (df["nature"] == "Echange") & (df["valeur"] >= 300000)
    exported = pd.read_csv(io.BytesIO(anonymous.get(f"/api/resources/{rid}/data/csv/", params={"nature__exact": "Echange", "valeur__greater": "300000"}).content),
                           dtype={"code_commune": str})
    expected_rows = df[mask].reset_index(drop=True)
    assert len(exported) == int(mask.sum()) > 1000
    pd.testing.assert_frame_equal(
        exported.assign(jour=pd.to_datetime(exported["jour"]).dt.date),
        expected_rows, check_dtype=False,
    )


def test_repeated_pages_come_from_the_cache_counted_and_a_new_file_is_a_new_answer(
    catalog: RunningCatalog, api: Api, anonymous: Api, dataset: dict[str, Any], published: dict[str, str],
) -> None:
    rid = published["communes.parquet"]
    first = rows(anonymous, rid, n__greater="3")
    assert rows(anonymous, rid, n__greater="3") == first
    tabular_calls = [e for e in catalog.store.events.list(kind=RESOURCE_DOWNLOAD) if e["channel"] == "tabular"]
    assert len(tabular_calls) == 2 and {e["resource_id"] for e in tabular_calls} == {rid}
    replaced = api.upload(dataset["id"], "communes.parquet", parquet_bytes(DF.head(5)), resource_id=rid)
    assert replaced.status_code in (200, 201), replaced.text
    assert rows(anonymous, rid, n__greater="3")["meta"]["total"] == int((DF.head(5)["n"] >= 3).sum())


def test_a_file_named_parquet_that_is_not_one_has_no_rows_and_breaks_no_page(api: Api, anonymous: Api, dataset: dict[str, Any]) -> None:
    uploaded = api.upload(dataset["id"], "faux.parquet", b"code,nom\n1,2\n")
    assert uploaded.status_code == 201, uploaded.text
    rid = uploaded.json()["id"]
    for suffix in ("data/", "data/csv/", "data/json/", "swagger/"):
        response = anonymous.get(f"/api/resources/{rid}/{suffix}")
        assert response.status_code == 404, (suffix, response.text)
        assert "cannot be read" in response.json()["message"], suffix
    page = anonymous.get(f"{anonymous.catalog.url}/datasets/{dataset['slug']}/")
    assert page.status_code == 200 and f'id="apercu-{rid}"' not in page.text


def test_pages_are_computed_a_few_at_a_time(api: Api, published: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages are CPU work: a worker computes COMPUTING_THREADS at once and queues the others
    (app.py), instead of sharing its cores among every request thread. A publisher's key makes
    every page computed (none comes from the response cache)."""
    computing, peak, lock = [0], [0], threading.Lock()
    compute = tabular.rows

    def counted(path: Path, items: Any) -> Any:
        with lock:
            computing[0] += 1
            peak[0] = max(peak[0], computing[0])
        try:
            time.sleep(0.05)  # long enough for the other requests to arrive meanwhile
            return compute(path, items)
        finally:
            with lock:
                computing[0] -= 1

    monkeypatch.setattr(tabular, "rows", counted)
    rid = published["communes.parquet"]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda size: rows(api, rid, page_size=size), range(1, 9)))
    assert [len(answer["data"]) for answer in answers] == list(range(1, 9))
    assert peak[0] == COMPUTING_THREADS


def test_an_aggregation_does_not_wait_for_a_computing_slot(api: Api, published: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """An aggregation reads every matching row: it shares the cores instead of taking one of
    the slots that pages wait for, so it is answered while pages hold them all."""
    pages_inside, seen_by_aggregation, lock = [0], [], threading.Lock()
    all_inside, release = threading.Event(), threading.Event()
    compute = tabular.rows

    def held(path: Path, items: Any) -> Any:
        if tabular.aggregates(items):
            seen_by_aggregation.append(pages_inside[0])
            return compute(path, items)
        with lock:
            pages_inside[0] += 1
            if pages_inside[0] == COMPUTING_THREADS:
                all_inside.set()
        release.wait(10)
        with lock:
            pages_inside[0] -= 1
        return compute(path, items)

    monkeypatch.setattr(tabular, "rows", held)
    rid = published["communes.parquet"]
    with ThreadPoolExecutor(COMPUTING_THREADS) as pool:
        pages = [pool.submit(rows, api, rid, page_size=size) for size in range(1, COMPUTING_THREADS + 1)]
        assert all_inside.wait(10)
        grouped = rows(api, rid, nom__groupby="", n__count="")
        release.set()
        assert [len(page.result()["data"]) for page in pages] == list(range(1, COMPUTING_THREADS + 1))
    assert grouped["meta"]["total"] == DF["nom"].nunique(dropna=False)
    assert seen_by_aggregation == [COMPUTING_THREADS]


def test_values_cast_without_duckdb_are_duckdbs_casts() -> None:
    """The plain forms cast in Python (tabular._plain_cast) give DuckDB's value, and any other
    form, or a value DuckDB refuses, is left to DuckDB."""
    import duckdb

    connection = duckdb.connect()
    samples = {
        "DATE": ["2024-01-05", "2024-02-29", "2023-02-29", "2024-13-01", "0000-01-01", "9999-12-31", "2024-1-5",
                 "20240105", " 2024-01-05", "2024-01-05 ", "2024-01-05T00:00", "-2024-01-05"],
        "TINYINT": ["0", "-0", "127", "128", "-128", "-129", "007", "+5", "1.0", "1e2", ""],
        "SMALLINT": ["32767", "32768", "-32768", "-32769"],
        "INTEGER": ["2147483647", "2147483648", "-2147483648", "-2147483649", "00000000000000000012"],
        "BIGINT": ["9223372036854775807", "-9223372036854775808", "999999999999999999", "-999999999999999999"],
        "DOUBLE": ["0", "-0", "0.1", "478000", "123456789012345.123456789012345", "1e3", "1.", ".5", "-.5", "NaN",
                   "inf", "0.30000000000000004", "9007199254740993", "2.675", "1_000", "1,5"],
    }
    rng = np.random.default_rng(5)
    samples["DOUBLE"] += [f"{rng.integers(-10**12, 10**12)}.{rng.integers(0, 10**9):09d}" for _ in range(300)]
    samples["DATE"] += [f"{rng.integers(1, 9999):04d}-{rng.integers(1, 13):02d}-{rng.integers(1, 32):02d}" for _ in range(300)]
    checked = 0
    for column_type, values in samples.items():
        for value in values:
            plain = tabular._plain_cast(value, column_type)
            if plain is None:
                continue
            expected = connection.execute(f"SELECT TRY_CAST(? AS {column_type})", [value]).fetchone()[0]
            assert expected is not None and type(plain) is type(expected) and plain == expected, (column_type, value, plain, expected)
            if isinstance(plain, float):
                assert np.signbit(plain) == np.signbit(expected), (column_type, value)
            checked += 1
    assert checked > 500
    assert tabular._plain_cast("2023-02-29", "DATE") is None and tabular._plain_cast("128", "TINYINT") is None
    assert tabular._plain_cast("1", "FLOAT") is None and tabular._plain_cast("1", "DECIMAL(10,2)") is None
