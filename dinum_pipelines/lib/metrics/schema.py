"""The usage-metric tables' names and columns, shared by the pipeline and the catalog.

The pipeline writes these tables (daily and monthly files, the push to the catalog) and the
catalog stores and serves them through its metric API, so both must agree on every column name;
the catalog exports its usage log as CSV and the pipeline reads it. This module is those two
agreements and nothing else (no pandas, no Dagster, no SQLAlchemy: the catalog imports it).

Names follow data.gouv.fr's metric API (`dataset_id`, `metric_month`, `monthly_visit`,
`monthly_download_resource`, `visit_dataset`...), plus one column per channel (`_web`, `_api`,
`_permalink`): where the visit or download came from.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

DATASET_VIEW = "dataset.view"
RESOURCE_DOWNLOAD = "resource.download"
# web: the catalog's HTML page, or a file fetched by a browser; api: the JSON API, or a file
# fetched by a program; permalink: a file reached through its stable link /api/1/datasets/r/{id}.
CHANNELS = ("web", "api", "permalink", "tabular")
VIEW_CHANNELS = ("web", "api")  # a dataset view never goes through a resource's stable link nor the row API
DOWNLOAD_CHANNELS = CHANNELS

# The catalog's usage-log export (GET /api/1/events/), column by column.
EVENT_COLUMNS = ("occurred_at", "kind", "channel", "dataset_id", "resource_id", "organization_id", "user_agent")

DAY = "day"
MONTH = "metric_month"
MONTHLY_PREFIX = "monthly_"


@dataclass(frozen=True)
class Measure:
    """One counted quantity of a level: which event kind it counts, over which channels."""

    name: str
    kind: str
    channels: tuple[str, ...]
    description: str

    @property
    def columns(self) -> tuple[str, ...]:
        """The total, then one column per channel."""
        return (self.name, *(f"{self.name}_{channel}" for channel in self.channels))


@dataclass(frozen=True)
class Level:
    """What is counted: datasets, resources or organizations."""

    name: str
    # The object's id first, then attributes carried along (a resource's dataset).
    ids: tuple[str, ...]
    measures: tuple[Measure, ...]
    noun: str

    @property
    def id_column(self) -> str:
        return self.ids[0]

    @property
    def counts(self) -> tuple[str, ...]:
        return tuple(column for measure in self.measures for column in measure.columns)

    def columns(self, period: str | None) -> tuple[str, ...]:
        """Column names of this level's daily (`day`), monthly (`metric_month`) or total (None) table."""
        if period == MONTH:
            return (MONTH, *self.ids, *(MONTHLY_PREFIX + count for count in self.counts))
        return ((period,) if period else ()) + self.ids + self.counts


_VIEWS = "dataset views (API reads of the dataset and visits of its page)"
_DOWNLOADS = "file downloads (every resource of the dataset)"
LEVELS: dict[str, Level] = {
    level.name: level
    for level in (
        Level(
            "datasets", ("dataset_id",),
            (Measure("visit", DATASET_VIEW, VIEW_CHANNELS, _VIEWS),
             Measure("download_resource", RESOURCE_DOWNLOAD, DOWNLOAD_CHANNELS, _DOWNLOADS)),
            "dataset",
        ),
        Level(
            "resources", ("resource_id", "dataset_id"),
            (Measure("download_resource", RESOURCE_DOWNLOAD, DOWNLOAD_CHANNELS, "downloads of the file"),),
            "resource",
        ),
        Level(
            "organizations", ("organization_id",),
            (Measure("visit_dataset", DATASET_VIEW, VIEW_CHANNELS, "views of the organization's datasets"),
             Measure("download_resource", RESOURCE_DOWNLOAD, DOWNLOAD_CHANNELS, "downloads of the organization's files")),
            "organization",
        ),
    )
}

_CHANNEL_WORDS = {
    "web": "from the catalog's web pages or a browser",
    "api": "through the API or by a program",
    "permalink": "through the file's stable link (/api/1/datasets/r/{id})",
    "tabular": "through the row API (/api/resources/{id}/data/, one per call)",
}
_ID_WORDS = {
    "dataset_id": "catalog id of the dataset",
    "resource_id": "catalog id of the resource (file)",
    "organization_id": "catalog id of the organization publishing the dataset",
}


@dataclass(frozen=True)
class MetricModel:
    """One table of the metric API (`/api/{name}/data/`): a level by month, or its all-time totals."""

    name: str
    level: Level
    period: str | None  # MONTH or None (totals)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.level.columns(self.period)

    @property
    def keys(self) -> tuple[str, ...]:
        """The columns identifying a row (the rest are counts or attributes)."""
        return ((self.period,) if self.period else ()) + (self.level.id_column,)

    @property
    def count_columns(self) -> tuple[str, ...]:
        return tuple(column for column in self.columns if column not in (*self.keys, *self.level.ids))


METRIC_MODELS: dict[str, MetricModel] = {
    model.name: model
    for level in LEVELS.values()
    for model in (MetricModel(level.name, level, MONTH), MetricModel(f"{level.name}_total", level, None))
}


def column_descriptions(level: Level, period: str | None) -> dict[str, str]:
    """Each column of a level's table, in plain words (published with the usage files)."""
    described = {
        DAY: "the day (Europe/Paris), YYYY-MM-DD",
        MONTH: "the month (Europe/Paris), YYYY-MM",
        **_ID_WORDS,
    }
    scope = {DAY: "that day", MONTH: "that month", None: "since counting began"}[period]
    for measure in level.measures:
        prefix = MONTHLY_PREFIX if period == MONTH else ""
        described[prefix + measure.name] = f"{measure.description}, {scope}, bots excluded"
        for channel in measure.channels:
            described[f"{prefix}{measure.name}_{channel}"] = f"the part of {prefix}{measure.name} {_CHANNEL_WORDS[channel]}"
    return {column: described[column] for column in level.columns(period)}


def write_events_csv(rows: Iterable[dict[str, Any]], handle: Any, *, header: bool = True) -> int:
    """Write events (dicts with EVENT_COLUMNS) as the export's CSV; returns how many were written.
    The catalog's export endpoint writes it and the pipeline reads it (metrics.read_events_csv)."""
    writer = csv.writer(handle, lineterminator="\n")
    if header:
        writer.writerow(EVENT_COLUMNS)
    written = 0
    for row in rows:
        values = dict(row)
        occurred: datetime = values["occurred_at"]
        values["occurred_at"] = occurred.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        writer.writerow(["" if values.get(name) is None else values[name] for name in EVENT_COLUMNS])
        written += 1
    return written
