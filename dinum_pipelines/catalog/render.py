"""Stored records -> the JSON documents udata v1 returns (field names, nesting, absolute URLs),
and the JSON schema of each of those documents.

URLs are built at response time from the public base URL rather than stored, so moving the
catalog (another host or port) does not break the links of files uploaded earlier.

Each document's schema is declared here, beside the method that writes it, and is what the
OpenAPI document shows (openapi.py takes `SCHEMAS` as its components). The schemas are closed
(no property they do not list) and list every property as present, so a field added to a method
without its schema fails the tests (test_openapi.py renders every document and validates it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from dinum_pipelines.catalog.accounts import ROLES
from dinum_pipelines.catalog.api_schemas import (
    ANY_OBJECT,
    BOOLEAN,
    COUNT,
    DATE_TIME,
    STRING,
    URI,
    Json,
    array,
    nullable,
    obj,
    one_of,
    ref,
)
from dinum_pipelines.catalog.db import utcnow
from dinum_pipelines.catalog.quality_score import CRITERIA, quality
from dinum_pipelines.catalog.validation import (
    CHECKSUM,
    FILETYPES,
    RESOURCE_SCHEMA,
    SPATIAL,
    TEMPORAL_COVERAGE,
)
from dinum_pipelines.lib.declare.vocabularies import FREQUENCIES, LICENSES, RESOURCE_TYPES, SPATIAL_GRANULARITIES

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
ACCESS_TYPES = ("open", "open_with_account", "restricted")  # udata's; every dataset here is open


def with_defaults(defaults: Json, stored: Json | None) -> Json:
    """Every default key, overridden by the stored values (the pipeline may add keys of its own)."""
    return {**defaults, **(stored or {})}


def metrics_schema(defaults: Mapping[str, Any]) -> Json:
    """The `metrics` of `with_defaults(defaults, ...)`: counts, and `*_by_months` dicts of counts
    (YYYY-MM -> count); open, since the metrics pipeline may push keys of its own."""
    monthly = {"type": "object", "additionalProperties": COUNT}
    return obj({key: monthly if isinstance(value, dict) else COUNT for key, value in defaults.items()}, closed=False)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


INTERNAL_DATES: Json = obj({"created_at_internal": DATE_TIME, "last_modified_internal": DATE_TIME})
BADGES: Json = array(obj({"kind": STRING}, closed=False))

RESOURCE_PROPERTIES: Json = {
    "id": STRING,
    "title": STRING,
    "description": nullable(STRING),
    "type": one_of(RESOURCE_TYPES),
    "format": nullable(STRING),
    "url": {**STRING, "description": "The file: ours for a hosted file, the publisher's for a remote one"},
    "latest": {**URI, "description": "The stable URL: redirects to `url`"},
    "checksum": nullable(CHECKSUM),
    "filesize": nullable(COUNT),
    "mime": nullable(STRING),
    "filetype": one_of(FILETYPES),
    "schema": nullable(RESOURCE_SCHEMA),
    "created_at": DATE_TIME,
    "last_modified": DATE_TIME,
    "extras": ANY_OBJECT,
    "metrics": metrics_schema(RESOURCE_METRICS),
    "harvest": nullable(ANY_OBJECT),
    "preview_url": nullable(STRING),
    "internal": INTERNAL_DATES,
}
ORGANIZATION_REF_PROPERTIES: Json = {
    "id": STRING,
    "name": STRING,
    "acronym": nullable(STRING),
    "slug": STRING,
    "uri": URI,
    "page": URI,
    "logo": nullable(STRING),
    "logo_thumbnail": nullable(STRING),
    "badges": BADGES,
}
USER_REF_PROPERTIES: Json = {
    "id": STRING,
    "first_name": STRING,
    "last_name": STRING,
    "slug": STRING,
    "uri": URI,
    "page": URI,
    "avatar": nullable(STRING),
    "avatar_thumbnail": nullable(STRING),
}
ORGANIZATION_REF: Json = obj(ORGANIZATION_REF_PROPERTIES)
USER_REF: Json = obj(USER_REF_PROPERTIES)
API_TOKEN_PROPERTIES: Json = {
    "id": STRING,
    "name": STRING,
    "token_prefix": STRING,
    "created_at": DATE_TIME,
    "expires_at": nullable(DATE_TIME),
    "revoked_at": nullable(DATE_TIME),
    "last_used_at": nullable(DATE_TIME),
}


def page_schema(item: Json) -> Json:
    """udata's pager around `item`s."""
    return obj({
        "data": array(item),
        "page": {"type": "integer", "minimum": 1},
        "page_size": {"type": "integer", "minimum": 1},
        "total": COUNT,
        "next_page": nullable(URI),
        "previous_page": nullable(URI),
    })


def labelled_list_schema(label: str) -> Json:
    """A reference list: [{"id": ..., label: ...}]."""
    return array(obj({"id": STRING, label: STRING}))


# The documents' schemas by name: the OpenAPI document's components.
SCHEMAS: dict[str, Json] = {
    "Dataset": obj({
        "id": STRING,
        "title": STRING,
        "acronym": nullable(STRING),
        "slug": STRING,
        "description": STRING,
        "description_short": nullable(STRING),
        "created_at": DATE_TIME,
        "last_modified": DATE_TIME,
        "last_update": DATE_TIME,
        "deleted": nullable(DATE_TIME),
        "archived": nullable(DATE_TIME),
        "private": BOOLEAN,
        "featured": BOOLEAN,
        "tags": array(STRING),
        "badges": BADGES,
        "resources": array(ref("Resource")),
        "community_resources": array(ANY_OBJECT),
        "frequency": one_of(FREQUENCIES),
        "frequency_date": nullable(DATE_TIME),
        "extras": ANY_OBJECT,
        "metrics": metrics_schema(DATASET_METRICS),
        "quality": obj({
            **dict.fromkeys(CRITERIA, BOOLEAN),
            "has_resources": BOOLEAN,
            "score": {"type": "number", "minimum": 0, "maximum": 1},
        }),
        "organization": nullable(ORGANIZATION_REF),
        "owner": nullable(USER_REF),
        "temporal_coverage": nullable(TEMPORAL_COVERAGE),
        "spatial": nullable(SPATIAL),
        "license": one_of(LICENSES),
        "contact_points": array(ANY_OBJECT),
        "harvest": nullable(ANY_OBJECT),
        "schema": nullable(RESOURCE_SCHEMA),
        "access_type": one_of(ACCESS_TYPES),
        "uri": URI,
        "page": URI,
        "internal": INTERNAL_DATES,
    }),
    "DatasetPage": page_schema(ref("Dataset")),
    "Resource": obj(RESOURCE_PROPERTIES),
    "UploadedResource": obj({**RESOURCE_PROPERTIES, "success": BOOLEAN}),
    "ResourceWithDatasetId": obj({"resource": ref("Resource"), "dataset_id": STRING}),
    "OrganizationRef": ORGANIZATION_REF,
    "Organization": obj({
        **ORGANIZATION_REF_PROPERTIES,
        "description": STRING,
        "url": nullable(STRING),
        "business_number_id": nullable(STRING),
        "created_at": DATE_TIME,
        "deleted": nullable(DATE_TIME),
        "members": array(obj({"user": ref("UserRef"), "role": one_of(ROLES), "since": nullable(DATE_TIME)})),
        "metrics": metrics_schema(ORGANIZATION_METRICS),
        "extras": ANY_OBJECT,
    }),
    "UserRef": USER_REF,
    "Me": obj({
        **USER_REF_PROPERTIES,
        "email": STRING,
        "since": DATE_TIME,
        "roles": array(STRING),
        "organizations": array(ref("OrganizationRef")),
    }),
    "ApiToken": obj(API_TOKEN_PROPERTIES),
    "NewApiToken": obj({**API_TOKEN_PROPERTIES, "token": {**STRING, "description": "The token: shown this once only"}}),
    "Licenses": array(obj({
        "id": STRING,
        "title": STRING,
        "url": nullable(URI),
        "maintainer": nullable(STRING),
        "flags": array(STRING),
        "alternate_urls": array(URI),
        "alternate_titles": array(STRING),
    })),
    "Frequencies": labelled_list_schema("label"),
    "ResourceTypes": labelled_list_schema("label"),
    "Granularities": labelled_list_schema("name"),
}

# The reference lists, in udata's shapes (their schemas above).
LICENSE_LIST = [
    {"id": key, "title": title, "url": url or None, "maintainer": None, "flags": [], "alternate_urls": [], "alternate_titles": []}
    for key, (title, url) in LICENSES.items()
]
FREQUENCY_LIST = [{"id": key, "label": label} for key, (label, _delta) in FREQUENCIES.items()]
RESOURCE_TYPE_LIST = [{"id": key, "label": label} for key, label in RESOURCE_TYPES.items()]
GRANULARITY_LIST = [{"id": key, "name": name} for key, name in SPATIAL_GRANULARITIES.items()]


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
