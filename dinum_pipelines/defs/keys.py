"""Asset keys and names of a dataset's chain, in one place so every module agrees on them."""

from __future__ import annotations

import dagster as dg

QUALITY_CHECK_NAME = "quality_rules"


def raw_key(slug: str) -> dg.AssetKey:
    return dg.AssetKey([slug, "raw"])


def clean_key(slug: str) -> dg.AssetKey:
    return dg.AssetKey([slug, "clean"])


def published_key(slug: str) -> dg.AssetKey:
    return dg.AssetKey([slug, "published"])


def job_name(slug: str) -> str:
    return f"{slug}_job"


def publication_pool(slug: str) -> str:
    """The Dagster pool a dataset's publication runs in (one at a time per dataset)."""
    return f"catalog/{slug}"
