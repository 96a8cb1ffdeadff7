"""The counting rules of lib/metrics/usage.py on small hand-written event tables."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dinum_pipelines.lib.metrics.usage import (
    EVENT_COLUMNS,
    EVENT_SCHEMA,
    BotFilter,
    UsageTables,
    catalog_payload,
    count_day,
    day_bounds,
    months_ending,
    read_daily_counts,
    write_atomically,
    write_parquet,
    write_published_files,
)
from dinum_pipelines.lib.metrics.schema import LEVELS, METRIC_MODELS, column_descriptions

NOON = datetime(2026, 10, 31, 11, tzinfo=UTC)  # 31 October, 12:00 in Paris


def events(*rows: tuple[datetime, str, str, str | None, str | None, str | None, str | None]) -> pa.Table:
    """Events as the catalog exports them: (occurred_at, kind, channel, dataset, resource, org, user agent)."""
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in EVENT_COLUMNS]
    arrays = [pa.array(columns[0], pa.timestamp("us", tz="UTC"))]
    arrays += [pa.array(column, pa.string()).dictionary_encode() for column in columns[1:]]
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)


def test_default_bot_list_drops_crawlers_and_keeps_programs() -> None:
    bots = BotFilter.from_file()
    for crawler in ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                    "Mozilla/5.0 (compatible; bingbot/2.0)", "Baiduspider", "facebookexternalhit/1.1", "udata-hydra/2.0"):
        assert bots.is_bot(crawler), crawler
    for reuser in ("curl/8.5.0", "python-requests/2.32", "Wget/1.21", "Mozilla/5.0 (X11; Linux) Firefox/140.0", "R (4.4.1)", None, ""):
        assert not bots.is_bot(reuser), reuser


def test_the_bot_list_comes_from_the_environment_when_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listing = tmp_path / "bots.yaml"
    listing.write_text("user_agent_substrings:\n  - CURL\n", encoding="utf-8")
    monkeypatch.setenv("DINUM_METRICS_BOTS_FILE", str(listing))
    bots = BotFilter.from_file()
    assert bots.is_bot("curl/8.5.0") and not bots.is_bot("Googlebot")
    listing.write_text("user_agent_substrings: bot\n", encoding="utf-8")
    with pytest.raises(ValueError, match="list of non-empty strings"):
        BotFilter.from_file()


def test_a_day_is_counted_per_kind_channel_and_object_without_bots() -> None:
    table = events(
        (NOON, "dataset.view", "web", "d1", None, "o1", "Mozilla/5.0 Firefox"),
        (NOON, "dataset.view", "web", "d1", None, "o1", "Mozilla/5.0 Firefox"),
        (NOON, "dataset.view", "api", "d1", None, "o1", "curl/8"),
        (NOON, "resource.download", "permalink", "d1", "r1", "o1", None),
        (NOON, "resource.download", "permalink", "d1", "r1", "o1", "Googlebot/2.1"),
        (NOON, "resource.download", "api", "d2", "r2", None, "python-requests"),
    )
    counted = count_day(table, date(2026, 10, 31), BotFilter.from_file())
    assert (counted.events, counted.bot_events, counted.counted) == (6, 1, 5)
    rows = sorted((r["kind"], r["channel"], r["dataset_id"], r["resource_id"], r["count"]) for r in counted.table.to_pylist())
    assert rows == [
        ("dataset.view", "api", "d1", None, 1),
        ("dataset.view", "web", "d1", None, 2),
        ("resource.download", "api", "d2", "r2", 1),
        ("resource.download", "permalink", "d1", "r1", 1),
    ]
    assert set(counted.table["day"].to_pylist()) == {"2026-10-31"}


def test_an_event_outside_the_paris_day_is_refused_not_counted_on_the_wrong_day() -> None:
    start, end = day_bounds(date(2026, 10, 31))
    assert start == datetime(2026, 10, 30, 23, tzinfo=UTC)  # Paris is UTC+1 after 25 October
    assert end == datetime(2026, 10, 31, 23, tzinfo=UTC)
    inside = [(start, "dataset.view", "api", "d1", None, "o1", None), (end - timedelta(microseconds=1), "dataset.view", "api", "d1", None, "o1", None)]
    assert count_day(events(*inside), date(2026, 10, 31), BotFilter(())).counted == 2
    with pytest.raises(ValueError, match="1 event"):
        count_day(events(*inside, (end, "dataset.view", "api", "d1", None, "o1", None)), date(2026, 10, 31), BotFilter(()))


def test_the_autumn_dst_change_gives_a_25_hour_day() -> None:
    start, end = day_bounds(date(2026, 10, 25))
    assert end - start == timedelta(hours=25)
    start, end = day_bounds(date(2026, 3, 29))
    assert end - start == timedelta(hours=23)


def test_months_ending_is_the_last_13_months_oldest_first() -> None:
    months = months_ending(date(2026, 2, 10))
    assert months[0] == "2025-02" and months[-1] == "2026-02" and len(months) == 13


def daily_counts_over(tmp_path: Path, days: dict[str, int]) -> UsageTables:
    """`days[day]` web views of d1 and one permalink download of r1 per day, through daily files."""
    paths = []
    for day, views in days.items():
        start, _ = day_bounds(date.fromisoformat(day))
        rows = [(start, "dataset.view", "web", "d1", None, "o1", None)] * views
        rows += [(start, "resource.download", "permalink", "d1", "r1", "o1", None)]
        path = tmp_path / f"{day}.parquet"
        write_parquet(count_day(events(*rows), date.fromisoformat(day), BotFilter(())).table, path)
        paths.append(path)
    return UsageTables.from_counts(read_daily_counts(paths))


def test_monthly_and_total_tables_are_sums_of_the_days(tmp_path: Path) -> None:
    tables = daily_counts_over(tmp_path, {"2026-10-30": 2, "2026-10-31": 3, "2026-11-01": 5})
    monthly = tables[("datasets", "metric_month")].to_dict("records")
    assert [(r["metric_month"], r["monthly_visit"], r["monthly_visit_web"], r["monthly_download_resource"]) for r in monthly] == [
        ("2026-10", 5, 5, 2), ("2026-11", 5, 5, 1)
    ]
    assert tables[("datasets", None)].to_dict("records")[0]["visit"] == 10
    assert tables[("resources", None)].to_dict("records") == [{
        "resource_id": "r1", "dataset_id": "d1", "download_resource": 3,
        "download_resource_web": 0, "download_resource_api": 0, "download_resource_permalink": 3, "download_resource_tabular": 0,
    }]
    assert tables[("organizations", "day")]["visit_dataset"].tolist() == [2, 3, 5]
    for (level, period), frame in tables.tables.items():
        assert list(frame.columns) == list(LEVELS[level].columns(period))
        assert set(column_descriptions(LEVELS[level], period)) == set(frame.columns)


def test_the_catalog_payload_uses_udata_names_and_a_13_month_series(tmp_path: Path) -> None:
    payload = catalog_payload(daily_counts_over(tmp_path, {"2026-10-30": 2, "2026-11-01": 5}), date(2026, 11, 23))
    assert set(payload["tables"]) == set(METRIC_MODELS)
    metrics = payload["objects"]["datasets"]["by_id"]["d1"]
    assert metrics["views"] == 7 and metrics["resources_downloads"] == 2
    assert list(metrics["resources_downloads_by_months"])[-2:] == ["2026-10", "2026-11"]
    assert metrics["resources_downloads_by_months"]["2026-10"] == 1 and len(metrics["views_by_months"]) == 13
    assert payload["objects"]["resources"]["by_id"]["r1"] == {"views": 2}
    assert payload["objects"]["organizations"]["by_id"]["o1"]["views"] == 7
    assert payload["objects"]["datasets"]["default"]["views"] == 0


def test_empty_tables_still_have_their_columns() -> None:
    tables = UsageTables.from_counts(read_daily_counts([]))
    assert list(tables[("datasets", None)].columns) == list(LEVELS["datasets"].columns(None))
    assert tables.total("datasets", "visit") == 0


def test_published_files_are_the_same_bytes_for_the_same_counts(tmp_path: Path) -> None:
    tables = daily_counts_over(tmp_path, {"2026-10-30": 2})
    first = {role: path.read_bytes() for role, path in write_published_files(tables, tmp_path / "a").items()}
    second = {role: path.read_bytes() for role, path in write_published_files(tables, tmp_path / "b").items()}
    assert first == second and len(first) == 12
    assert pq.read_table(tmp_path / "a" / "usage_datasets_daily.parquet").num_rows == 1


def test_a_write_that_fails_midway_leaves_the_previous_file_and_no_partial(tmp_path: Path) -> None:
    target = tmp_path / "2026-10-30.parquet"
    target.write_bytes(b"previous day file")

    def crash(path: Path) -> None:
        path.write_bytes(b"half a fi")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, crash)
    assert target.read_bytes() == b"previous day file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-10-30.parquet"]
