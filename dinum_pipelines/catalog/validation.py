"""Cleaning of client payloads into stored values, with udata's error shape.

One cleaner per field: it takes the raw JSON value and returns the value to store or raises
`ValueError` with the message for the client. The same tables serve creation (with required
fields and defaults) and udata's partial PUT (only the fields sent are checked and changed).
Fields a table does not list are ignored, as udata's forms ignore them (read-only fields such as
`id`, `slug` or `created_at` sent back by a client are not an error).
"""

from __future__ import annotations

import re

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from dinum_pipelines.catalog.errors import ValidationError
from dinum_pipelines.catalog.ids import slugify
from dinum_pipelines.lib.vocabularies import (
    FREQUENCIES,
    LICENSES,
    RESOURCE_TYPES,
    SPATIAL_GRANULARITIES,
    normalize_frequency,
)

REQUIRED = "This field is required."
# C0 control characters but tab and line breaks, and DEL: no text field holds them (PostgreSQL
# refuses NUL in text, SQLite's LIKE stops at it), so they are refused, naming the field.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]")
NO_CONTROL_CHARACTERS = "Field cannot contain control characters (NUL and the like)."


def refuse_control_characters(params: Iterable[tuple[str, str]]) -> None:
    """A 400 naming every query parameter that holds a control character."""
    bad = sorted({name for name, value in params if CONTROL_CHARACTERS.search(name) or CONTROL_CHARACTERS.search(value)})
    if bad:
        raise ValidationError({CONTROL_CHARACTERS.sub("?", name): [NO_CONTROL_CHARACTERS] for name in bad})

Cleaner = Callable[[Any], Any]


def clean(payload: Mapping[str, Any], cleaners: Mapping[str, Cleaner], *, required: Iterable[str] = ()) -> dict[str, Any]:
    """The cleaned known fields of `payload`; `ValidationError` listing every bad field."""
    errors: dict[str, list[str]] = {}
    for name in required:
        value = payload.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            errors[name] = [REQUIRED]
    cleaned: dict[str, Any] = {}
    for name, value in payload.items():
        cleaner = cleaners.get(name)
        if cleaner is None or name in errors:
            continue
        try:
            cleaned[name] = cleaner(value)
        except ValueError as exc:
            errors[name] = [str(exc)]
    if errors:
        raise ValidationError(errors)
    return cleaned


def require_object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ValidationError({"payload": ["Expected a JSON object."]})
    return payload


# Cleaner factories


def text(max_length: int, *, required: bool = False) -> Cleaner:
    """A string of at most `max_length` characters; None allowed (it clears the field) unless required."""

    def cleaner(value: Any) -> str | None:
        if value is None and not required:
            return None
        if not isinstance(value, str):
            raise ValueError("Expected a string.")
        if required and not value.strip():
            raise ValueError(REQUIRED)
        if CONTROL_CHARACTERS.search(value):
            raise ValueError(NO_CONTROL_CHARACTERS)
        if len(value) > max_length:
            raise ValueError(f"Field cannot be longer than {max_length} characters.")
        return value

    return cleaner


def choice(options: Iterable[str], *, default: str | None = None, normalize: Callable[[str], str] = str) -> Cleaner:
    """One of `options` (after `normalize`); None means `default`."""
    allowed = frozenset(options)

    def cleaner(value: Any) -> str | None:
        if value is None:
            return default
        if not isinstance(value, str) or normalize(value) not in allowed:
            raise ValueError(f"'{value}' is not a valid choice for this field.")
        return normalize(value)

    return cleaner


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("Expected true or false.")
    return value


def non_negative_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("Expected a non-negative integer.")
    return value


def free_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise ValueError("Expected a JSON object.")
    return value


def http_url(value: Any) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
        raise ValueError("Expected an http(s) URL.")
    return value


def optional_http_url(value: Any) -> str | None:
    """An http(s) URL of at most 255 characters (an organization's web site), or None."""
    if value is None:
        return None
    if len(http_url(value)) > 255:
        raise ValueError("Field cannot be longer than 255 characters.")
    return value


def iso_datetime(value: Any) -> str | None:
    """An ISO 8601 date-time, stored as ISO text (udata's `frequency_date`)."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ValueError(f"'{value}' is not an ISO 8601 date-time.") from None


def _iso_date(value: Any) -> date:
    """A date from ISO text, accepting the date-times pipelines send ("2024-01-01T00:00:00.000000Z")."""
    if not isinstance(value, str):
        raise ValueError("Expected an ISO 8601 date.")
    try:
        return datetime.fromisoformat(value).date() if "T" in value else date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'{value}' is not an ISO 8601 date.") from None


def temporal_coverage(value: Any) -> dict[str, str | None] | None:
    """`{start, end}` (end optional) or udata's "start - end" string; None clears it."""
    if value is None:
        return None
    if isinstance(value, str):
        start_text, separator, end_text = value.partition(" - ")
        value = {"start": start_text, "end": end_text if separator else None}
    if not isinstance(value, dict) or not value.get("start"):
        raise ValueError("Expected {\"start\": date, \"end\": date or null}.")
    start = _iso_date(value["start"])
    end = _iso_date(value["end"]) if value.get("end") else None
    if end is not None and end < start:
        raise ValueError("The end date must not be before the start date.")
    return {"start": start.isoformat(), "end": end.isoformat() if end else None}


def spatial(value: Any) -> dict[str, Any] | None:
    """`{zones: [geozone ids], granularity, geom}`; None clears it."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("Expected {\"zones\": [...], \"granularity\": id}.")
    zones = value.get("zones") or []
    if not isinstance(zones, list) or not all(isinstance(zone, str) for zone in zones):
        raise ValueError("zones: expected a list of geozone ids.")
    granularity = value.get("granularity")
    if granularity is not None and granularity not in SPATIAL_GRANULARITIES:
        raise ValueError(f"granularity: '{granularity}' is not a valid choice for this field.")
    geom = value.get("geom")
    if geom is not None and not isinstance(geom, dict):
        raise ValueError("geom: expected a GeoJSON object.")
    return {"zones": zones, "granularity": granularity, "geom": geom}


def tags(value: Any) -> list[str]:
    """Slugified (udata stores tags slugified), 3 to 96 characters each, duplicates dropped."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise ValueError("Expected a list of strings.")
    if any(CONTROL_CHARACTERS.search(tag) for tag in value):
        raise ValueError(NO_CONTROL_CHARACTERS)
    cleaned = list(dict.fromkeys(slugify(tag) for tag in value))
    bad = [tag for tag in cleaned if not 3 <= len(tag) <= 96]
    if bad:
        raise ValueError(f"Tags must be 3 to 96 characters long: {', '.join(repr(tag) for tag in bad)}.")
    return cleaned


def organization_ref(value: Any) -> str | None:
    """An organization id, given as a string or as a `{"id": ...}` object."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not value:
        raise ValueError("Expected an organization id or {\"id\": ...}.")
    return value


CHECKSUM_TYPES = ("sha1", "sha2", "sha256", "md5", "crc")


def checksum(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("value"), str):
        raise ValueError("Expected {\"type\": ..., \"value\": ...}.")
    kind = value.get("type") or "sha1"
    if kind not in CHECKSUM_TYPES:
        raise ValueError(f"type: '{kind}' is not one of {', '.join(CHECKSUM_TYPES)}.")
    return {"type": kind, "value": value["value"]}


def resource_schema(value: Any) -> dict[str, str | None] | None:
    """udata's resource schema: a catalog `name` (+ `version`) or an arbitrary `url`; null clears it."""
    if value is None:
        return None
    if not isinstance(value, dict) or not (value.get("name") or value.get("url")):
        raise ValueError("Expected {\"name\": ..., \"version\": ...} or {\"url\": ...}.")
    parts = {key: value.get(key) for key in ("name", "version", "url")}
    if not all(part is None or isinstance(part, str) for part in parts.values()):
        raise ValueError("name, version and url must be strings.")
    if parts["url"] is not None:
        http_url(parts["url"])
    return parts


def lower_text(max_length: int) -> Cleaner:
    base = text(max_length)

    def cleaner(value: Any) -> str | None:
        cleaned = base(value)
        return cleaned.lower() if cleaned else cleaned

    return cleaner


# Datasets

DATASET_CLEANERS: dict[str, Cleaner] = {
    "title": text(350, required=True),
    "description": text(100_000, required=True),
    "description_short": text(200),
    "acronym": text(128),
    "license": choice(LICENSES, default="notspecified"),
    "frequency": choice(FREQUENCIES, default="unknown", normalize=normalize_frequency),
    "frequency_date": iso_datetime,
    "temporal_coverage": temporal_coverage,
    "spatial": spatial,
    "tags": tags,
    "private": boolean,
    "organization": organization_ref,
    "extras": free_dict,
}

DATASET_REQUIRED = ("title", "description")

DATASET_DEFAULTS: dict[str, Any] = {
    "description_short": None,
    "acronym": None,
    "license": "notspecified",
    "frequency": "unknown",
    "frequency_date": None,
    "temporal_coverage": None,
    "spatial": None,
    "tags": [],
    "private": False,
    "extras": {},
}

# Sort keys of `GET /datasets/?sort=` -> dataset field.
# udata's sort keys (plus last_modified) -> datasets.SORT_KEYS.
DATASET_SORTS = {
    "title": "title", "created": "created_at", "last_update": "last_update", "last_modified": "last_modified",
    "views": "views", "followers": "followers", "reuses": "reuses",
}


def clean_new_dataset(payload: Any) -> dict[str, Any]:
    return {**DATASET_DEFAULTS, **clean(require_object(payload), DATASET_CLEANERS, required=DATASET_REQUIRED)}


def clean_dataset_changes(payload: Any) -> dict[str, Any]:
    return clean(require_object(payload), DATASET_CLEANERS)


def parse_sort(value: str | None, allowed: Mapping[str, str]) -> tuple[str, bool] | None:
    """`-last_update` -> ("last_update", True); None when no sort was asked."""
    if not value:
        return None
    descending = value.startswith("-")
    key = value.lstrip("-")
    if key not in allowed:
        raise ValidationError({"sort": [f"'{key}' is not one of {', '.join(allowed)} (prefix '-' to reverse)."]})
    return allowed[key], descending


# Organizations

ORGANIZATION_CLEANERS: dict[str, Cleaner] = {
    "name": text(350, required=True),
    "acronym": text(128),
    "description": text(100_000),
    "url": optional_http_url,
    "extras": free_dict,
}


def clean_new_organization(payload: Any) -> dict[str, Any]:
    return clean(require_object(payload), ORGANIZATION_CLEANERS, required=("name",))


def clean_organization_changes(payload: Any) -> dict[str, Any]:
    changes = clean(require_object(payload), ORGANIZATION_CLEANERS)
    if "description" in changes and changes["description"] is None:
        changes["description"] = ""  # udata's organizations always have one, maybe empty
    return changes


# Resources

FILETYPES = ("file", "remote")
# Fields of a hosted file the server computes; udata ignores client values for them.
HOSTED_PROTECTED_FIELDS = ("filetype", "url", "checksum", "filesize")

RESOURCE_CLEANERS: dict[str, Cleaner] = {
    "title": text(350, required=True),
    "description": text(100_000),
    "type": choice(RESOURCE_TYPES, default="other"),
    "format": lower_text(64),
    "url": http_url,
    "filetype": choice(FILETYPES),
    "mime": text(255),
    "filesize": non_negative_int,
    "checksum": checksum,
    "schema": resource_schema,
    "extras": free_dict,
}

REMOTE_RESOURCE_REQUIRED = ("title", "url", "filetype")
REMOTE_ONLY = "This endpoint only supports remote resources"


def clean_new_remote_resource(payload: Any) -> dict[str, Any]:
    cleaned = clean(require_object(payload), RESOURCE_CLEANERS, required=REMOTE_RESOURCE_REQUIRED)
    if cleaned["filetype"] != "remote":
        raise ValidationError({"filetype": [REMOTE_ONLY]}, REMOTE_ONLY)
    return {"description": None, "type": "other", "format": None, "extras": {}, **cleaned}


def clean_resource_changes(payload: Any, current: Mapping[str, Any]) -> dict[str, Any]:
    cleaned = clean(require_object(payload), RESOURCE_CLEANERS)
    if current.get("filetype") == "file":
        for protected in HOSTED_PROTECTED_FIELDS:
            cleaned.pop(protected, None)
    elif "filetype" in cleaned and cleaned["filetype"] != current.get("filetype"):
        raise ValidationError({"filetype": ["The filetype of a resource cannot be changed."]})
    return cleaned


# Extras (v2)


def merge_extras(current: Mapping[str, Any], patch: Any) -> dict[str, Any]:
    """udata v2 extras PUT: set the given keys, delete those whose value is null."""
    patch = require_object(patch)
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def extras_keys(payload: Any) -> list[str]:
    """udata v2 extras DELETE takes a JSON list of keys."""
    if not isinstance(payload, list) or not all(isinstance(key, str) for key in payload):
        raise ValidationError({"payload": ["Expected a JSON list of keys."]})
    return payload


# Query strings


# The last page a listing serves: past it the offset would overflow the databases' integers (a
# 500 on SQLite and PostgreSQL), and no catalog has that many pages.
MAX_PAGE = 1_000_000
# Items per page at most, on the API and the pages: a larger `page_size` is served this many (the
# answer's `page_size` says so), so that one anonymous request cannot serialize the whole catalog.
MAX_PAGE_SIZE = 1000


def positive_int(params: Mapping[str, str], name: str, default: int, maximum: int | None = None) -> int:
    """A positive integer query parameter; a 400 naming it when it is not one or passes `maximum`."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw) if raw.isascii() and len(raw) <= 20 else 0
    except ValueError:
        value = 0
    if value < 1:
        raise ValidationError({name: [f"{name} must be an integer greater than or equal to 1."]})
    if maximum is not None and value > maximum:
        raise ValidationError({name: [f"{name} must be an integer less than or equal to {maximum}."]})
    return value


def page_size(params: Mapping[str, str], default: int) -> int:
    """`page_size`, at most MAX_PAGE_SIZE (a larger one is served MAX_PAGE_SIZE items)."""
    raw = params.get("page_size")
    if raw and raw.isdigit() and len(raw) > 4:
        return MAX_PAGE_SIZE  # any number of 5 digits or more is over the cap
    return min(positive_int(params, "page_size", default), MAX_PAGE_SIZE)


QUERY_TRUE = ("true", "1", "yes", "on")
QUERY_FALSE = ("false", "0", "no", "off")


def query_boolean(params: Mapping[str, str], name: str) -> bool | None:
    """A boolean query parameter as flask-restx reads it (true/false, 1/0, yes/no, on/off, any
    case); None when absent, a 400 naming it otherwise."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in QUERY_TRUE:
        return True
    if raw.lower() in QUERY_FALSE:
        return False
    raise ValidationError({name: [f"{name} must be true or false."]})
