"""Which datasets of the quality page are late, by the catalog's own records and clock.

The quality report says how each dataset's checks went; whether its updates are on time is the
catalog's udata criterion ("Mises à jour faites à temps"), read here from the dataset the pipeline
published (found by its organization and its `dinum:slug` extra) with the one rule of
lib/monitoring/freshness.py, the rule the pipeline's Dagster freshness policies follow too. So the page, each
dataset's quality score and Dagster's freshness agree on who is late.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from dinum_pipelines.catalog.listing import DatasetQuery
from dinum_pipelines.catalog.store import CatalogStore
from dinum_pipelines.lib.monitoring.freshness import is_late, late_since
from dinum_pipelines.lib.publish.publishing import SLUG_EXTRA
from dinum_pipelines.lib.quality.history import DatasetQuality

_PAGE_SIZE = 200


def published_datasets(store: CatalogStore, organization_slug: str) -> dict[str, dict]:
    """The organization's public datasets the pipeline published, by their pipeline slug."""
    organization = store.accounts.organization(organization_slug) if organization_slug else None
    if organization is None:
        return {}
    found, page = {}, 1
    while True:
        records, total = store.datasets.search(DatasetQuery(organization_id=organization["id"], page=page, page_size=_PAGE_SIZE))
        for record in records:
            slug = (record.get("extras") or {}).get(SLUG_EXTRA)
            if slug and slug not in found:
                found[slug] = record
        if page * _PAGE_SIZE >= total or not records:
            return found
        page += 1


def late_datasets(store: CatalogStore, lines: Iterable[DatasetQuality], now: datetime) -> dict[str, datetime]:
    """The pipeline slugs of `lines` whose catalog dataset is late at `now`, with the time it became late."""
    late: dict[str, datetime] = {}
    by_organization: dict[str, list[str]] = {}
    for line in lines:
        by_organization.setdefault(line.organization, []).append(line.dataset)
    for organization, slugs in by_organization.items():
        records = published_datasets(store, organization)
        for slug in slugs:
            record = records.get(slug)
            if record is None:
                continue  # never published (blocked so far): nothing can be late yet
            frequency, last_update = record.get("frequency"), record.get("last_update")
            if is_late(frequency, last_update, now):
                late[slug] = late_since(frequency, last_update)
    return late
