"""Stored records -> the JSON documents udata v1 returns (field names, nesting, absolute URLs).

URLs are built at response time from the public base URL rather than stored, so moving the
catalog (another host or port) does not break the links of files uploaded earlier.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from dinum_pipelines.catalog.db import utcnow
from dinum_pipelines.catalog.quality_score import quality

# udata's metric keys, at zero until the metrics pipeline writes the object's `metrics` dict.
# `resources_downloads_by_months` is ours (udata only has totals): the monthly series the pages chart.
DATASET_METRICS: dict[str, Any] = {
    "views": 0, "resources_downloads": 0, "followers": 0, "reuses": 0,
    "dataservices": 0, "discussions": 0, "discussions_open": 0,
    "followers_by_months": {}, "reuses_by_months": {}, "resources_downloads_by_months": {},
}
RESOURCE_METRICS: dict[str, Any] = {"views": 0}  # udata's resource "views" are downloads
ORGANIZATION_METRICS: dict[str, Any] = {
    "datasets": 0, "members": 0, "followers": 0, "reuses": 0, "dataservices": 0, "views": 0, "resources_downloads": 0,
}

Json = dict[str, Any]


def with_defaults(defaults: Json, stored: Json | None) -> Json:
    """Every default key, overridden by the stored values (the pipeline may add keys of its own)."""
    return {**defaults, **(stored or {})}


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class Renderer:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    # URLs

    def api_url(self, path: str) -> str:
        return f"{self.base_url}/api/1{path}"

    def file_url(self, file_key: str) -> str:
        return f"{self.base_url}/resources/{quote(file_key)}"

    def permalink(self, resource_id: str) -> str:
        return self.api_url(f"/datasets/r/{resource_id}")

    def resource_target(self, resource: Json) -> str:
        """Where the resource's bytes are: our file URL for hosted files, the stored URL otherwise."""
        return self.file_url(resource["file_key"]) if resource.get("file_key") else resource.get("url") or ""

    # Documents

    def dataset(self, record: Json) -> Json:
        return {
            "id": record["id"],
            "title": record["title"],
            "acronym": record.get("acronym"),
            "slug": record["slug"],
            "description": record["description"],
            "description_short": record.get("description_short"),
            "created_at": iso(record["created_at"]),
            "last_modified": iso(record["last_modified"]),
            "last_update": iso(record["last_update"]),
            "deleted": iso(record.get("deleted")),
            "archived": None,
            "private": record["private"],
            "featured": False,
            "tags": record.get("tags", []),
            "badges": [],
            "resources": [self.resource(resource) for resource in record.get("resources", [])],
            "community_resources": [],
            "frequency": record.get("frequency", "unknown"),
            "frequency_date": record.get("frequency_date"),
            "extras": record.get("extras", {}),
            "metrics": with_defaults(DATASET_METRICS, record.get("metrics")),
            "quality": quality(record, utcnow()),
            "organization": self.organization_ref(record.get("organization")),
            "owner": self.user_ref(record.get("owner")),
            "temporal_coverage": record.get("temporal_coverage"),
            "spatial": record.get("spatial"),
            "license": record.get("license", "notspecified"),
            "contact_points": [],
            "harvest": None,
            "schema": None,
            "access_type": "open",
            "uri": self.api_url(f"/datasets/{record['id']}/"),
            "page": f"{self.base_url}/datasets/{record['slug']}/",
            "internal": {
                "created_at_internal": iso(record["created_at"]),
                "last_modified_internal": iso(record["last_modified"]),
            },
        }

    def resource(self, record: Json) -> Json:
        return {
            "id": record["id"],
            "title": record.get("title"),
            "description": record.get("description"),
            "type": record.get("type", "other"),
            "format": record.get("format"),
            "url": self.resource_target(record),
            "latest": self.permalink(record["id"]),
            "checksum": record.get("checksum"),
            "filesize": record.get("filesize"),
            "mime": record.get("mime"),
            "filetype": record.get("filetype", "remote"),
            "schema": record.get("schema"),
            "created_at": iso(record["created_at"]),
            "last_modified": iso(record["last_modified"]),
            "extras": record.get("extras") or {},
            "metrics": with_defaults(RESOURCE_METRICS, record.get("metrics")),
            "harvest": None,
            "preview_url": None,
            "internal": {
                "created_at_internal": iso(record["created_at"]),
                "last_modified_internal": iso(record["last_modified"]),
            },
        }

    def organization_ref(self, org: Json | None) -> Json | None:
        if org is None:
            return None
        return {
            "id": org["id"],
            "name": org["name"],
            "acronym": org.get("acronym"),
            "slug": org["slug"],
            "uri": self.api_url(f"/organizations/{org['id']}/"),
            "page": f"{self.base_url}/organizations/{org['slug']}/",
            "logo": None,
            "logo_thumbnail": None,
            "badges": [],
        }

    def organization(self, org: Json, *, members: list[Json], dataset_count: int) -> Json:
        ref = self.organization_ref(org)
        assert ref is not None
        return {
            **ref,
            "description": org.get("description") or "",
            "url": org.get("url"),
            "business_number_id": None,
            "created_at": iso(org["created_at"]),
            "deleted": iso(org.get("deleted_at")),
            "members": [
                {"user": self.user_ref(member), "role": member["role"], "since": iso(member.get("since"))}
                for member in members
            ],
            # Counts the catalog knows itself are live; the rest come from the metrics pipeline.
            "metrics": {
                **with_defaults(ORGANIZATION_METRICS, org.get("metrics")),
                "datasets": dataset_count, "members": len(members),
            },
            "extras": org.get("extras") or {},
        }

    def user_ref(self, user: Json | None) -> Json | None:
        if user is None:
            return None
        return {
            "id": user["id"],
            "first_name": user["first_name"],
            "last_name": user["last_name"],
            "slug": user["slug"],
            "uri": self.api_url(f"/users/{user['id']}/"),
            "page": f"{self.base_url}/users/{user['slug']}/",
            "avatar": None,
            "avatar_thumbnail": None,
        }

    def me(self, user: Json, organizations: list[Json]) -> Json:
        ref = self.user_ref(user)
        assert ref is not None
        return {
            **ref,
            "email": user["email"],
            "since": iso(user["created_at"]),
            "roles": [],
            "organizations": [self.organization_ref(org) for org in organizations],
        }

    @staticmethod
    def api_token(token: Json, *, plain: str | None = None) -> Json:
        document = {
            "id": token["id"],
            "name": token["name"],
            "token_prefix": token["token_prefix"],
            "created_at": iso(token["created_at"]),
            "expires_at": iso(token["expires_at"]),
            "revoked_at": iso(token["revoked_at"]),
            "last_used_at": iso(token["last_used_at"]),
        }
        if plain is not None:
            document["token"] = plain  # only in the creation response
        return document

    @staticmethod
    def page(items: list[Json], *, total: int, page: int, page_size: int, page_url: Callable[[int], str]) -> Json:
        """udata's pager: `next_page`/`previous_page` are absolute URLs or null."""
        return {
            "data": items,
            "page": page,
            "page_size": page_size,
            "total": total,
            "next_page": page_url(page + 1) if page * page_size < total else None,
            "previous_page": page_url(page - 1) if page > 1 else None,
        }
