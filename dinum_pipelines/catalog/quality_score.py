"""udata's dataset quality score: nine yes/no criteria and their share, as data.gouv.fr shows it.

Reusers compare datasets across catalogs by this score, so the criteria names, the thresholds and
the formula are udata's (udata/core/dataset/models.py `compute_quality` and
`compute_quality_score`, udata 17): score = criteria met / 9. Two deliberate readings:

- `license`: udata's API shows a dataset without a licence as "notspecified"; we store that id
  literally, so "notspecified" (or nothing) does not count as a licence.
- `spatial`: counts only if it says something (a zone, a granularity or a geometry), not for an
  empty `{}`.

Every criterion is always present in the result (False when it does not apply, e.g. the resource
criteria of a dataset without resources); udata omits those keys, which scores the same.

The score is computed when a dataset is read, not stored: `update_fulfilled_in_time` depends on
the current time (udata recomputes it on read too), it needs only the record already loaded, and
extras such as hydra's `check:available` can change through paths that never rewrite the dataset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from dinum_pipelines.lib.monitoring.freshness import late_since, updated_on_time

# udata's QUALITY_DESCRIPTION_LENGTH: the description must be strictly longer than this.
DESCRIPTION_MIN_LENGTH = 100
# udata's CLOSED_FORMATS; a resource with no format counts as closed too.
CLOSED_FORMATS = frozenset({"pdf", "doc", "docx", "word", "xls", "excel", "xlsx"})
NO_LICENSE = "notspecified"
UNKNOWN_FREQUENCY = "unknown"

CRITERIA = (
    "license",
    "temporal_coverage",
    "spatial",
    "update_frequency",
    "update_fulfilled_in_time",
    "dataset_description_quality",
    "has_open_format",
    "all_resources_available",
    "resources_documentation",
)

Json = Mapping[str, Any]


def has_license(dataset: Json) -> bool:
    return dataset.get("license") not in (None, "", NO_LICENSE)


def has_temporal_coverage(dataset: Json) -> bool:
    return bool((dataset.get("temporal_coverage") or {}).get("start"))


def has_spatial(dataset: Json) -> bool:
    spatial = dataset.get("spatial") or {}
    return bool(spatial.get("zones") or spatial.get("granularity") or spatial.get("geom"))


def has_update_frequency(dataset: Json) -> bool:
    return dataset.get("frequency") not in (None, "", UNKNOWN_FREQUENCY)


def update_fulfilled_in_time(dataset: Json, now: datetime) -> bool:
    """The rule the pipeline's Dagster freshness policies follow too (lib/monitoring/freshness.py)."""
    return updated_on_time(dataset.get("frequency"), dataset.get("last_update"), now)


def update_fulfilled_in_time_until(dataset: Json, now: datetime) -> datetime | None:
    """Until when `update_fulfilled_in_time(dataset, ...)` keeps the value it has at `now` (None:
    for ever, until the dataset changes): a dataset on time turns late past its deadline."""
    deadline = late_since(dataset.get("frequency"), dataset.get("last_update"))
    return deadline if deadline is not None and now <= deadline else None


def has_quality_description(dataset: Json) -> bool:
    return len(dataset.get("description") or "") > DESCRIPTION_MIN_LENGTH


def is_closed_or_no_format(resource: Json) -> bool:
    format_ = resource.get("format")
    return not format_ or format_.lower() in CLOSED_FORMATS


def has_open_format(resources: Sequence[Json]) -> bool:
    return bool(resources) and not all(is_closed_or_no_format(resource) for resource in resources)


def all_resources_available(resources: Sequence[Json]) -> bool:
    """hydra's `check:available` extra; a resource never checked counts as available (as udata)."""
    return bool(resources) and all((resource.get("extras") or {}).get("check:available", True) for resource in resources)


def has_resources_documentation(resources: Sequence[Json]) -> bool:
    return any(resource.get("type") == "documentation" or resource.get("description") for resource in resources)


def quality(dataset: Json, now: datetime) -> dict[str, Any]:
    """udata's `dataset.quality`: each criterion, `has_resources`, and `score` in [0, 1].

    `dataset` is a stored record (`last_update` a datetime, `resources` a list of records)."""
    resources: Sequence[Json] = dataset.get("resources") or []
    criteria = {
        "license": has_license(dataset),
        "temporal_coverage": has_temporal_coverage(dataset),
        "spatial": has_spatial(dataset),
        "update_frequency": has_update_frequency(dataset),
        "update_fulfilled_in_time": update_fulfilled_in_time(dataset, now),
        "dataset_description_quality": has_quality_description(dataset),
        "has_open_format": has_open_format(resources),
        "all_resources_available": all_resources_available(resources),
        "resources_documentation": has_resources_documentation(resources),
    }
    return {**criteria, "has_resources": bool(resources), "score": sum(criteria.values()) / len(CRITERIA)}
