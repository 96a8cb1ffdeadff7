"""Usage metrics from the catalog's access events: bot filter, daily counts, monthly roll-ups, totals.

The rules live here, away from Dagster, so that they are tested on their own:

- **A day** is a day in Europe/Paris (the users' day), i.e. the events with
  `start <= occurred_at < end` for that day's bounds in UTC; an event outside them is refused,
  never counted on the wrong day.
- **Bots** are dropped by user agent (case-insensitive substrings, `bots.yaml`); the
  number dropped is reported, never silently lost.
- **Daily counts** are the finest grain: one row per (kind, channel, organization, dataset,
  resource) with its count; one Parquet file per day, replaced whole when the day is recounted,
  so re-running a day never adds to what was there.
- **Daily, monthly and total tables** per dataset, resource and organization are recomputed
  from all the daily files every time (they are small: counts, not events), so they are always
  the sum of the days on disk, with nothing carried over from an earlier run.
- **Catalog payload**: those tables for the metric API plus each object's `metrics` fields in
  udata's names, sent in one request that the catalog applies all-or-nothing.

Columns are named in `metrics_schema.py`, which the catalog shares.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

from dinum_pipelines.lib.metrics.schema import (
    DAY,
    EVENT_COLUMNS,
    LEVELS,
    METRIC_MODELS,
    MONTH,
    MONTHLY_PREFIX,
    Level,
)

TIMEZONE = ZoneInfo("Europe/Paris")
DEFAULT_BOTS_FILE = Path(__file__).with_name("bots.yaml")
BOTS_FILE_ENV = "DINUM_METRICS_BOTS_FILE"
# udata keeps the last 13 months in its `*_by_months` metrics.
MONTHS_IN_SERIES = 13

EVENT_SCHEMA = pa.schema(
    [("occurred_at", pa.timestamp("us", tz="UTC"))]
    + [(name, pa.dictionary(pa.int32(), pa.string())) for name in EVENT_COLUMNS[1:]]
)
# The grain of the daily files.
COUNT_KEYS = ("kind", "channel", "organization_id", "dataset_id", "resource_id")
DAILY_COUNTS_SCHEMA = pa.schema([(DAY, pa.string())] + [(key, pa.string()) for key in COUNT_KEYS] + [("count", pa.int64())])

# udata's names for the counts on the catalog's objects: metrics key -> our measure.
OBJECT_METRICS: dict[str, dict[str, str]] = {
    "datasets": {"views": "visit", "resources_downloads": "download_resource"},
    "resources": {"views": "download_resource"},  # udata's resource "views" are downloads
    "organizations": {"views": "visit_dataset", "resources_downloads": "download_resource"},
}
# Which of them also get a `<key>_by_months` series ({"2026-10": n, ...}, last 13 months).
MONTHLY_SERIES: dict[str, tuple[str, ...]] = {
    "datasets": ("views", "resources_downloads"),
    "organizations": ("views", "resources_downloads"),
}


# Days


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC instants where `day` (in Europe/Paris) starts and ends (23 or 25 hours at DST changes)."""
    start = datetime.combine(day, time(), TIMEZONE)
    end = datetime.combine(day + timedelta(days=1), time(), TIMEZONE)
    return start.astimezone(UTC), end.astimezone(UTC)


def month_of(day: str) -> str:
    return day[:7]


def months_ending(as_of: date, count: int = MONTHS_IN_SERIES) -> list[str]:
    """The `count` months up to `as_of`'s month, oldest first: ['2025-11', ..., '2026-11']."""
    year, month = as_of.year, as_of.month
    months = []
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]


# Bots


@dataclass(frozen=True)
class BotFilter:
    substrings: tuple[str, ...]

    @classmethod
    def from_file(cls, path: Path | str | None = None) -> BotFilter:
        """The list in `path`, else in $DINUM_METRICS_BOTS_FILE, else the package default."""
        location = Path(path or os.environ.get(BOTS_FILE_ENV) or DEFAULT_BOTS_FILE)
        loaded = yaml.safe_load(location.read_text(encoding="utf-8")) or {}
        substrings = loaded.get("user_agent_substrings") if isinstance(loaded, dict) else None
        if not isinstance(substrings, list) or not all(isinstance(s, str) and s.strip() for s in substrings):
            raise ValueError(f"{location}: expected `user_agent_substrings:` followed by a list of non-empty strings")
        return cls(tuple(s.strip().lower() for s in substrings))

    def mask(self, user_agents: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
        """True where the user agent is a bot's; null user agents are not. Dictionary arrays are
        matched on their (few) distinct values, which is what makes 10 million events cheap."""
        chunks = user_agents.chunks if isinstance(user_agents, pa.ChunkedArray) else [user_agents]
        return pa.chunked_array([self._mask_chunk(chunk) for chunk in chunks], type=pa.bool_())

    def _mask_chunk(self, chunk: pa.Array) -> pa.Array:
        if not self.substrings:
            return pa.array([False] * len(chunk), pa.bool_())
        pattern = "|".join(re.escape(s) for s in self.substrings)
        if pa.types.is_dictionary(chunk.type):
            matches = pc.match_substring_regex(chunk.dictionary, pattern, ignore_case=True)
            return pc.fill_null(pc.take(matches, chunk.indices), False)
        return pc.fill_null(pc.match_substring_regex(chunk, pattern, ignore_case=True), False)

    def is_bot(self, user_agent: str | None) -> bool:
        return bool(self.mask(pa.array([user_agent], pa.string()))[0].as_py())


# Events -> daily counts


@dataclass(frozen=True)
class DailyCounts:
    day: date
    table: pa.Table  # DAILY_COUNTS_SCHEMA
    events: int  # events of the day, bots included
    bot_events: int

    @property
    def counted(self) -> int:
        return self.events - self.bot_events


def count_day(events: pa.Table, day: date, bots: BotFilter) -> DailyCounts:
    """The day's events counted per (kind, channel, organization, dataset, resource), bots excluded."""
    start, end = day_bounds(day)
    occurred = events["occurred_at"]
    outside = pc.sum(pc.or_(pc.less(occurred, pa.scalar(start)), pc.greater_equal(occurred, pa.scalar(end)))).as_py()
    if outside:
        raise ValueError(f"{outside} event(s) outside {day.isoformat()} (Europe/Paris) were given to count that day")
    bot = bots.mask(events["user_agent"])
    humans = events.filter(pc.invert(bot))
    grouped = humans.select(list(COUNT_KEYS)).group_by(list(COUNT_KEYS)).aggregate([([], "count_all")])
    columns = {DAY: pa.array([day.isoformat()] * grouped.num_rows, pa.string())}
    for key in COUNT_KEYS:
        columns[key] = pc.cast(grouped[key], pa.string())
    columns["count"] = grouped["count_all"]
    table = pa.table(columns, schema=DAILY_COUNTS_SCHEMA).sort_by([(key, "ascending") for key in COUNT_KEYS])
    return DailyCounts(day, table, events.num_rows, pc.sum(bot).as_py() or 0)


def read_events_csv(path: Path) -> pa.Table:
    """The catalog's CSV export (header = EVENT_COLUMNS) as an Arrow table of EVENT_SCHEMA."""
    convert = pacsv.ConvertOptions(
        column_types={name: EVENT_SCHEMA.field(name).type if name == "occurred_at" else pa.string() for name in EVENT_COLUMNS},
        strings_can_be_null=True,
        include_columns=list(EVENT_COLUMNS),
    )
    table = pacsv.read_csv(path, convert_options=convert)
    return pa.table({name: table[name] if name == "occurred_at" else table[name].dictionary_encode() for name in EVENT_COLUMNS}, schema=EVENT_SCHEMA)


# Files


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """`write` to a temporary file beside `path`, then rename it over `path`: readers and crashes
    see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_parquet(table: pa.Table, path: Path) -> None:
    write_atomically(path, lambda target: pq.write_table(table, target, compression="zstd"))


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    write_atomically(path, lambda target: frame.to_csv(target, index=False, lineterminator="\n", encoding="utf-8"))


@dataclass(frozen=True)
class MetricsLayout:
    """Where the metrics pipeline keeps its files, under the data folder:

        <root>/metrics/events/YYYY-MM-DD.parquet    the day's events as exported by the catalog
        <root>/metrics/daily/YYYY-MM-DD.parquet     the day's counts (DAILY_COUNTS_SCHEMA)
        <root>/metrics/published/usage_*.csv|.parquet  the tables published in the catalog
    """

    root: Path

    def events_file(self, day: date) -> Path:
        return self.root / "metrics" / "events" / f"{day.isoformat()}.parquet"

    def daily_file(self, day: date) -> Path:
        return self.root / "metrics" / "daily" / f"{day.isoformat()}.parquet"

    def daily_files(self) -> list[Path]:
        folder = self.root / "metrics" / "daily"
        return sorted(folder.glob("????-??-??.parquet")) if folder.is_dir() else []

    @property
    def published_dir(self) -> Path:
        return self.root / "metrics" / "published"


def read_daily_counts(paths: Iterable[Path]) -> pd.DataFrame:
    """Every daily file, concatenated (empty, with the right columns, when there is none)."""
    tables = [pq.read_table(path, schema=DAILY_COUNTS_SCHEMA) for path in paths]
    table = pa.concat_tables(tables) if tables else DAILY_COUNTS_SCHEMA.empty_table()
    return table.to_pandas()


# Daily counts -> per-level tables


def level_table(counts: pd.DataFrame, level: Level, period: str | None) -> pd.DataFrame:
    """One level's table (`level.columns(period)`) from daily counts: per day, per month, or in all."""
    counts = counts.assign(**{MONTH: counts[DAY].str[:7]}) if period == MONTH else counts
    keys = ([period] if period else []) + list(level.ids)
    prefix = MONTHLY_PREFIX if period == MONTH else ""
    parts = []
    for measure in level.measures:
        rows = counts[(counts["kind"] == measure.kind) & counts[level.id_column].notna()]
        unexpected = set(rows["channel"]) - set(measure.channels)
        if unexpected:
            raise ValueError(f"{measure.kind} events on unexpected channel(s) {sorted(unexpected)}")
        pivot = rows.pivot_table(index=keys, columns="channel", values="count", aggfunc="sum", fill_value=0, observed=True)
        pivot = pivot.reindex(columns=list(measure.channels), fill_value=0)
        pivot.columns = [f"{prefix}{measure.name}_{channel}" for channel in measure.channels]
        pivot.insert(0, prefix + measure.name, pivot.sum(axis=1))
        parts.append(pivot)
    joined = pd.concat(parts, axis=1).fillna(0)
    table = joined.reset_index() if len(joined) else pd.DataFrame(columns=list(level.columns(period)))
    table = table[list(level.columns(period))]
    count_columns = [column for column in table.columns if column not in keys]
    table[count_columns] = table[count_columns].astype("int64")
    for column in keys:
        table[column] = table[column].astype("string")
    return table.sort_values(keys, ignore_index=True)


@dataclass(frozen=True)
class UsageTables:
    """Every level's daily, monthly and total table."""

    tables: dict[tuple[str, str | None], pd.DataFrame]  # (level name, DAY | MONTH | None)

    @classmethod
    def from_counts(cls, counts: pd.DataFrame) -> UsageTables:
        return cls({
            (name, period): level_table(counts, level, period)
            for name, level in LEVELS.items()
            for period in (DAY, MONTH, None)
        })

    def __getitem__(self, key: tuple[str, str | None]) -> pd.DataFrame:
        return self.tables[key]

    def total(self, level: str, column: str) -> int:
        frame = self.tables[(level, None)]
        return int(frame[column].sum()) if len(frame) else 0

    def days(self) -> list[str]:
        return sorted(set(self.tables[("datasets", DAY)][DAY]))


# Publication


PUBLISHED_PERIODS = {DAY: "daily", MONTH: "monthly"}


def write_published_files(tables: UsageTables, directory: Path) -> dict[str, Path]:
    """The daily and monthly tables of each level, in CSV and Parquet; returns {role: path}.
    Rows are sorted and formats fixed, so the same counts give the same bytes (and the
    publisher then uploads nothing)."""
    files = {}
    for name in LEVELS:
        for period, word in PUBLISHED_PERIODS.items():
            frame = tables[(name, period)]
            stem = f"usage_{name}_{word}"
            csv_path, parquet_path = directory / f"{stem}.csv", directory / f"{stem}.parquet"
            write_csv(frame, csv_path)
            write_parquet(pa.Table.from_pandas(frame, preserve_index=False), parquet_path)
            files[f"{name}_{word}_csv"] = csv_path
            files[f"{name}_{word}_parquet"] = parquet_path
    return files


def catalog_payload(tables: UsageTables, as_of: date) -> dict[str, Any]:
    """What the catalog's `PUT /api/1/metrics/` takes: the metric API's tables, and every object's
    `metrics` in udata's names (`default` for objects without usage, so their figures reset too)."""
    series = months_ending(as_of)
    payload_tables = {}
    for model in METRIC_MODELS.values():
        frame = tables[(model.level.name, model.period)]
        payload_tables[model.name] = {
            "columns": list(model.columns),
            "rows": [list(row) for row in frame.astype(object).itertuples(index=False, name=None)],
        }
    objects: dict[str, Any] = {}
    for name, keys in OBJECT_METRICS.items():
        level = LEVELS[name]
        monthly_keys = MONTHLY_SERIES.get(name, ())
        default: dict[str, Any] = {key: 0 for key in keys}
        default.update({f"{key}_by_months": dict.fromkeys(series, 0) for key in monthly_keys})
        by_id: dict[str, dict[str, Any]] = {}
        for row in tables[(name, None)].to_dict("records"):
            by_id[row[level.id_column]] = {**default, **{key: int(row[measure]) for key, measure in keys.items()}}
        monthly = tables[(name, MONTH)]
        monthly = monthly[monthly[MONTH].isin(series)]
        for row in monthly.to_dict("records"):
            metrics = by_id[row[level.id_column]]
            for key in monthly_keys:
                metrics[f"{key}_by_months"] = {**metrics[f"{key}_by_months"], row[MONTH]: int(row[MONTHLY_PREFIX + keys[key]])}
        objects[name] = {"default": default, "by_id": by_id}
    return {"as_of": as_of.isoformat(), "tables": payload_tables, "objects": objects}
