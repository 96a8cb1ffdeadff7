"""Cleaning of client payloads and query strings into stored values, with udata's error shape.

One cleaner per field: it takes the raw JSON value and returns the value to store or raises
`ValueError` with the message for the client, and it carries the JSON schema of the values it
accepts. A `Form` (a table of cleaners, the required fields, the defaults of a creation) validates
a request body and, from the same table, gives the body's schema to the OpenAPI document; a
`QueryString` does the same for a listing's parameters. The same tables serve creation and udata's
partial PUT (only the fields sent are checked and changed). Fields a table does not list are
ignored, as udata's forms ignore them (read-only fields such as `id`, `slug` or `created_at` sent
back by a client are not an error).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from dinum_pipelines.catalog.api_schemas import (
    ANY_OBJECT,
    BOOLEAN,
    COMPONENTS,
    NULL,
    COUNT,
    DATE,
    DATE_TIME,
    STRING,
    Json,
    array,
    nullable,
    obj,
    one_of,
    with_default,
)
from dinum_pipelines.catalog.errors import ValidationError
from dinum_pipelines.catalog.ids import slugify
from dinum_pipelines.lib.declare.vocabularies import (
    FREQUENCIES,
    LEGACY_FREQUENCIES,
    LICENSES,
    RESOURCE_TYPES,
    SPATIAL_GRANULARITIES,
)

REQUIRED = "This field is required."
# C0 control characters but tab and line breaks, and DEL: no text field holds them (PostgreSQL
# refuses NUL in text, SQLite's LIKE stops at it), so they are refused, naming the field. Written
# with \u escapes so that the OpenAPI document's patterns (ECMA-262) read the same class.
_CONTROL_CLASS = r"\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F"
CONTROL_CHARACTERS = re.compile(f"[{_CONTROL_CLASS}]")
NO_CONTROL_CHARACTERS = "Field cannot contain control characters (NUL and the like)."
# What text fields refuse, as the OpenAPI document says it: a control character anywhere, and for
# a required field a blank value (`clean` refuses "" and "   "). Said with `not` rather than one
# anchored pattern such as ^[^...]{0,100000}$, from which schemathesis takes seconds to draw.
CONTAINS_CONTROL_CHARACTER: Json = {"pattern": f"[{_CONTROL_CLASS}]"}
BLANK: Json = {"pattern": r"^\s*$"}


def refusing(*patterns: Json) -> Json:
    """The schema keyword refusing strings that match any of `patterns`."""
    return {"not": {"type": "string", "anyOf": list(patterns)}}


# What no database column stores: control characters, and lone surrogates (Python's json reads
# "\ud800" into a str that no encoding can write).
UNSTORABLE = re.compile(f"[{_CONTROL_CLASS}]|[\ud800-\udfff]")
UNSTORABLE_TEXT = "Field cannot contain control characters (NUL and the like) nor lone surrogates."


# A value of a free object (extras, a geometry) as requests may hold it: any JSON value whose
# strings hold no control character (`storable_strings` gives free objects this schema).
FREE_VALUE_COMPONENT = "FreeValue"
FREE_VALUE: Json = {"$ref": f"{COMPONENTS}{FREE_VALUE_COMPONENT}"}
FREE_VALUE_SCHEMA: Json = {
    "description": "Any JSON value; its strings, at any depth, without control characters",
    "anyOf": [
        {"type": "string", **refusing(CONTAINS_CONTROL_CHARACTER)},
        {"type": "number"},
        BOOLEAN,
        {"type": "array", "items": FREE_VALUE},
        {"type": "object", "additionalProperties": FREE_VALUE},
        NULL,
    ],
}


def storable_strings(schema: Json) -> Json:
    """`schema` as the catalog reads such values: every string in it, at any depth, refusing
    control characters, and every free object's values too (FREE_VALUE). The catalog refuses
    them wherever it reads one (`clean`, a query string, a path), and a request schema that did
    not say so would promise what the catalog refuses. What a schema of OpenAPI 3.0 cannot say
    is that a free object's keys are refused likewise (it has no `propertyNames`)."""
    if not isinstance(schema, dict) or "$ref" in schema:
        return schema
    copied: Json = dict(schema)
    if "items" in copied:
        copied["items"] = storable_strings(copied["items"])
    if isinstance(copied.get("properties"), dict):
        copied["properties"] = {name: storable_strings(value) for name, value in copied["properties"].items()}
    for key in ("anyOf", "oneOf", "allOf"):
        if key in copied:
            copied[key] = [storable_strings(option) for option in copied[key]]
    if copied.get("additionalProperties") is True and copied.get("type") == "object":
        copied["additionalProperties"] = FREE_VALUE
    elif isinstance(copied.get("additionalProperties"), dict):
        copied["additionalProperties"] = storable_strings(copied["additionalProperties"])
    if copied.get("type") == "string" and "enum" not in copied and copied.get("format") != "binary":
        refused = refusing(CONTAINS_CONTROL_CHARACTER)
        if "not" not in copied:
            copied.update(refused)
        elif CONTAINS_CONTROL_CHARACTER not in copied["not"].get("anyOf", []):
            copied["allOf"] = [*copied.get("allOf", []), refused]
    return copied


def holds_unstorable_text(value: Any) -> bool:
    """True when a string in `value` (a key or a value, at any depth) matches UNSTORABLE."""
    if isinstance(value, str):
        return UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(holds_unstorable_text(key) or holds_unstorable_text(item) for key, item in value.items())
    if isinstance(value, list):
        return any(holds_unstorable_text(item) for item in value)
    return False


def refuse_unstorable_body(payload: Any) -> None:
    """A 400 naming each top-level field of a JSON body (or `payload`) that holds unstorable text:
    for the bodies stored whole (extras, pushed metrics); a Form checks the fields it keeps."""
    fields = payload.items() if isinstance(payload, dict) else [("payload", payload)]
    bad = [name for name, value in fields if holds_unstorable_text(name) or holds_unstorable_text(value)]
    if bad:
        raise ValidationError({UNSTORABLE.sub("?", name): [UNSTORABLE_TEXT] for name in bad})


def refuse_control_characters(params: Iterable[tuple[str, str]]) -> None:
    """A 400 naming every query parameter that holds a control character."""
    bad = sorted({name for name, value in params if CONTROL_CHARACTERS.search(name) or CONTROL_CHARACTERS.search(value)})
    if bad:
        raise ValidationError({CONTROL_CHARACTERS.sub("?", name): [NO_CONTROL_CHARACTERS] for name in bad})


class Cleaner:
    """A cleaning function and the JSON schema of the values it accepts (what the API documents).

    Field cleaners raise `ValueError` (`clean` names the field); a body's cleaner (a list body,
    say) raises `ValidationError` itself.
    """

    def __init__(self, function: Callable[[Any], Any], schema: Json) -> None:
        self.function = function
        self.schema = schema

    def __call__(self, value: Any) -> Any:
        return self.function(value)


def accepts(schema: Json) -> Callable[[Callable[[Any], Any]], Cleaner]:
    """Decorator: the function becomes the Cleaner of the values `schema` describes."""
    return lambda function: Cleaner(function, schema)


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
            continue
        if holds_unstorable_text(cleaned[name]):  # what would be stored, its free objects' keys included
            errors[name] = [UNSTORABLE_TEXT]
    if errors:
        raise ValidationError(errors)
    return cleaned


def require_object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ValidationError({"payload": ["Expected a JSON object."]})
    return payload


@dataclass(frozen=True)
class Form:
    """A JSON object body: its fields' cleaners, the required ones, and what a creation stores for
    the fields it is not sent. `clean` validates a body; `schema` documents it."""

    cleaners: Mapping[str, Cleaner]
    required: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def clean(self, payload: Any) -> dict[str, Any]:
        return {**self.defaults, **clean(require_object(payload), self.cleaners, required=self.required)}

    @property
    def schema(self) -> Json:
        properties = {
            name: cleaner.schema if self.defaults.get(name) is None else with_default(cleaner.schema, self.defaults[name])
            for name, cleaner in self.cleaners.items()
        }
        # Open: udata's forms ignore the fields they do not know (a client may send a whole document back).
        return obj(properties, optional=set(self.cleaners) - set(self.required), closed=False)


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

    schema: Json = {"type": "string", "maxLength": max_length}
    if required:
        return Cleaner(cleaner, {**schema, "minLength": 1, **refusing(CONTAINS_CONTROL_CHARACTER, BLANK)})
    return Cleaner(cleaner, nullable({**schema, **refusing(CONTAINS_CONTROL_CHARACTER)}))


def choice(options: Iterable[str], *, default: str | None = None, aliases: Mapping[str, str] | None = None) -> Cleaner:
    """One of `options`, or an alias of one (stored as the option); None means `default`."""
    allowed = frozenset(options)
    aliases = {alias: option for alias, option in (aliases or {}).items() if option in allowed}

    def cleaner(value: Any) -> str | None:
        if value is None:
            return default
        if not isinstance(value, str) or aliases.get(value, value) not in allowed:
            raise ValueError(f"'{value}' is not a valid choice for this field.")
        return aliases.get(value, value)

    schema = one_of([*options, *aliases])
    return Cleaner(cleaner, schema if default is None else with_default(nullable(schema), default))


@accepts(BOOLEAN)
def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("Expected true or false.")
    return value


@accepts(nullable(COUNT))
def non_negative_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("Expected a non-negative integer.")
    return value


@accepts(nullable(ANY_OBJECT))
def free_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise ValueError("Expected a JSON object.")
    return value


# udata's URL rule: http or https, a host, and no blank or control character anywhere. Written
# for both Python's `re` and the OpenAPI document's ECMA-262 patterns: the blanks are listed (the
# two engines' `\s` differ) and `http_url` matches the whole value (`$` in `re` also matches
# before a final line break). The host is a name (IRIs too: "http://exämple.fr/é", as udata):
# an IP literal in brackets is refused.
_BLANK_CLASS = r"\t\n\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\uFEFF"
_NOT_IN_URL = f"{_BLANK_CLASS}{_CONTROL_CLASS}"
HTTP_URL_PATTERN = (
    f"^https?://([^{_NOT_IN_URL}/?#]*@)?[^{_NOT_IN_URL}/?#@:\\[\\]]+(:[0-9]*)?([/?#][^{_NOT_IN_URL}]*)?$"
)
_HTTP_URL = re.compile(HTTP_URL_PATTERN)
HTTP_URL: Json = {"type": "string", "pattern": HTTP_URL_PATTERN}


@accepts(HTTP_URL)
def http_url(value: Any) -> str:
    if not isinstance(value, str) or not _HTTP_URL.fullmatch(value):
        raise ValueError("Expected an http(s) URL.")
    try:
        urlsplit(value)  # refuses a host that NFKC normalization would change into a delimiter
    except ValueError:
        raise ValueError("Expected an http(s) URL.") from None
    return value


@accepts(nullable({**HTTP_URL, "maxLength": 255}))
def optional_http_url(value: Any) -> str | None:
    """An http(s) URL of at most 255 characters (an organization's web site), or None."""
    if value is None:
        return None
    if len(http_url(value)) > 255:
        raise ValueError("Field cannot be longer than 255 characters.")
    return value


def _parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("Expected an ISO 8601 date-time.")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'{value}' is not an ISO 8601 date-time.") from None


@accepts(nullable({**DATE_TIME, "description": "ISO 8601; without a time zone, UTC"}))
def iso_datetime(value: Any) -> str | None:
    """An ISO 8601 date-time, stored as ISO text with its offset (UTC when it has none), as udata's
    `frequency_date` is shown."""
    if value is None:
        return None
    parsed = _parse_datetime(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()


@accepts(nullable(DATE_TIME))
def aware_datetime(value: Any) -> datetime | None:
    """An ISO 8601 date-time with a time zone, as a UTC datetime (what the database stores)."""
    if value is None:
        return None
    parsed = _parse_datetime(value)
    if parsed.tzinfo is None:
        raise ValueError("Give a time zone (e.g. 2030-01-01T00:00:00+00:00).")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError(f"'{value}' is out of range.") from None


def _iso_date(value: Any) -> date:
    """A date from ISO text, accepting the date-times pipelines send ("2024-01-01T00:00:00.000000Z")."""
    if not isinstance(value, str):
        raise ValueError("Expected an ISO 8601 date.")
    try:
        return datetime.fromisoformat(value).date() if "T" in value else date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'{value}' is not an ISO 8601 date.") from None


_DATE_OR_DATE_TIME: Json = {"anyOf": [DATE, DATE_TIME]}
# udata's "start - end" text: two dates, or a start alone.
TEMPORAL_COVERAGE_TEXT = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}( - [0-9]{4}-[0-9]{2}-[0-9]{2})?$")
TEMPORAL_COVERAGE: Json = obj({"start": DATE, "end": nullable(DATE)})  # as stored and shown


@accepts(nullable({
    "anyOf": [
        obj({"start": _DATE_OR_DATE_TIME, "end": nullable(_DATE_OR_DATE_TIME)}, optional=["end"], closed=False),
        {"type": "string", "pattern": TEMPORAL_COVERAGE_TEXT.pattern, "description": "udata's \"start - end\" form (ISO dates)"},
    ],
}))
def temporal_coverage(value: Any) -> dict[str, str | None] | None:
    """`{start, end}` (end optional) or udata's "start - end" string; None clears it."""
    if value is None:
        return None
    if isinstance(value, str):
        if not TEMPORAL_COVERAGE_TEXT.fullmatch(value):
            raise ValueError("Expected {\"start\": date, \"end\": date or null}, or \"YYYY-MM-DD - YYYY-MM-DD\".")
        start_text, separator, end_text = value.partition(" - ")
        value = {"start": start_text, "end": end_text if separator else None}
    if not isinstance(value, dict) or not value.get("start"):
        raise ValueError("Expected {\"start\": date, \"end\": date or null}.")
    start = _iso_date(value["start"])
    end = _iso_date(value["end"]) if value.get("end") else None
    if end is not None and end < start:
        raise ValueError("The end date must not be before the start date.")
    return {"start": start.isoformat(), "end": end.isoformat() if end else None}


SPATIAL: Json = obj({  # as stored and shown
    "zones": array(STRING), "granularity": nullable(one_of(SPATIAL_GRANULARITIES)), "geom": nullable(ANY_OBJECT),
})


@accepts(nullable(obj(
    {"zones": nullable(array(STRING)), "granularity": nullable(one_of(SPATIAL_GRANULARITIES)), "geom": nullable(ANY_OBJECT)},
    optional=["zones", "granularity", "geom"], closed=False,
)))
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
    if granularity is not None and (not isinstance(granularity, str) or granularity not in SPATIAL_GRANULARITIES):
        raise ValueError(f"granularity: '{granularity}' is not a valid choice for this field.")
    geom = value.get("geom")
    if geom is not None and not isinstance(geom, dict):
        raise ValueError("geom: expected a GeoJSON object.")
    return {"zones": zones, "granularity": granularity, "geom": geom}


@accepts(nullable({
    **array({"type": "string", **refusing(CONTAINS_CONTROL_CHARACTER)}),
    "description": "Slugified when stored (\"Élection 2024\" -> \"election-2024\"); each slug 3 to 96 characters",
}))
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


@accepts(nullable({
    "anyOf": [{"type": "string", "minLength": 1}, obj({"id": {"type": "string", "minLength": 1}}, closed=False)],
    "description": "An organization's id, or {\"id\": ...}",
}))
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
CHECKSUM: Json = obj({"type": one_of(CHECKSUM_TYPES), "value": STRING})  # as stored and shown


@accepts(nullable(obj(
    {"type": with_default(nullable(one_of(CHECKSUM_TYPES)), "sha1"), "value": STRING}, optional=["type"], closed=False
)))
def checksum(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("value"), str):
        raise ValueError("Expected {\"type\": ..., \"value\": ...}.")
    kind = "sha1" if value.get("type") is None else value["type"]
    if not isinstance(kind, str) or kind not in CHECKSUM_TYPES:
        raise ValueError(f"type: '{kind}' is not one of {', '.join(CHECKSUM_TYPES)}.")
    return {"type": kind, "value": value["value"]}


RESOURCE_SCHEMA: Json = obj({"name": nullable(STRING), "version": nullable(STRING), "url": nullable(STRING)})  # as shown


@accepts({
    **obj(
        {"name": nullable(STRING), "version": nullable(STRING), "url": nullable(http_url.schema)},
        optional=["name", "version", "url"], closed=False,
    ),
    "nullable": True,
    # What resource_schema asks: a name or a URL, at least one of them a non-empty string.
    "anyOf": [
        {"required": [name], "properties": {name: {"type": "string", "minLength": 1}}} for name in ("name", "url")
    ],
    "description": "A catalog schema's name (and version), or a URL",
})
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

    return Cleaner(cleaner, {**base.schema, "description": "Stored in lower case"})


@accepts({**NULL, "description": "null restores a deleted object"})
def restoration(value: Any) -> None:
    """udata's `{"deleted": null}` in a PUT (the handler restores); delete with DELETE."""
    if value is not None:
        raise ValueError("Only null is accepted here (it restores a deleted object); delete with DELETE.")


# Datasets

DATASET_CLEANERS: dict[str, Cleaner] = {
    "title": text(350, required=True),
    "description": text(100_000, required=True),
    "description_short": text(200),
    "acronym": text(128),
    "license": choice(LICENSES, default="notspecified"),
    "frequency": choice(FREQUENCIES, default="unknown", aliases=LEGACY_FREQUENCIES),
    "frequency_date": iso_datetime,
    "temporal_coverage": temporal_coverage,
    "spatial": spatial,
    "tags": tags,
    "private": boolean,
    "organization": organization_ref,
    "extras": free_dict,
}

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

NEW_DATASET = Form(DATASET_CLEANERS, required=("title", "description"), defaults=DATASET_DEFAULTS)
DATASET_CHANGES = Form({**DATASET_CLEANERS, "deleted": restoration})

# Sort keys of `GET /datasets/?sort=` -> dataset field.
# udata's sort keys (plus last_modified) -> listing.SORT_KEYS.
DATASET_SORTS = {
    "title": "title", "created": "created_at", "last_update": "last_update", "last_modified": "last_modified",
    "views": "views", "followers": "followers", "reuses": "reuses",
}


def clean_new_dataset(payload: Any) -> dict[str, Any]:
    return NEW_DATASET.clean(payload)


def clean_dataset_changes(payload: Any) -> dict[str, Any]:
    """The changes of a PUT; `deleted` (only null: a restoration) is the handler's to act on."""
    changes = DATASET_CHANGES.clean(payload)
    changes.pop("deleted", None)
    return changes


def parse_sort(value: str | None, allowed: Mapping[str, str]) -> tuple[str, bool] | None:
    """`-last_update` -> ("last_update", True); None when no sort was asked."""
    if not value:
        return None
    descending = value.startswith("-")
    key = value[1:] if descending else value
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
NEW_ORGANIZATION = Form(ORGANIZATION_CLEANERS, required=("name",))
ORGANIZATION_CHANGES = Form({**ORGANIZATION_CLEANERS, "deleted": restoration})


def clean_new_organization(payload: Any) -> dict[str, Any]:
    return NEW_ORGANIZATION.clean(payload)


def clean_organization_changes(payload: Any) -> dict[str, Any]:
    changes = ORGANIZATION_CHANGES.clean(payload)
    changes.pop("deleted", None)  # the handler's to act on, as for datasets
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

REMOTE_ONLY = "This endpoint only supports remote resources"
# POST /datasets/{id}/resources/ takes remote resources only: a "file" one is refused after
# cleaning, with udata's message; the body's schema says so.
NEW_REMOTE_RESOURCE = Form(
    {**RESOURCE_CLEANERS, "filetype": Cleaner(RESOURCE_CLEANERS["filetype"], one_of(["remote"]))},
    required=("title", "url", "filetype"),
    defaults={"description": None, "type": "other", "format": None, "extras": {}},
)
RESOURCE_CHANGES = Form(RESOURCE_CLEANERS)


def clean_new_remote_resource(payload: Any) -> dict[str, Any]:
    cleaned = NEW_REMOTE_RESOURCE.clean(payload)
    if cleaned["filetype"] != "remote":
        raise ValidationError({"filetype": [REMOTE_ONLY]}, REMOTE_ONLY)
    return cleaned


def clean_resource_changes(payload: Any, current: Mapping[str, Any]) -> dict[str, Any]:
    cleaned = RESOURCE_CHANGES.clean(payload)
    if current.get("filetype") == "file":
        for protected in HOSTED_PROTECTED_FIELDS:
            cleaned.pop(protected, None)
    elif "filetype" in cleaned and cleaned["filetype"] != current.get("filetype"):
        raise ValidationError({"filetype": ["The filetype of a resource cannot be changed."]})
    return cleaned


@accepts({
    **array({"anyOf": [STRING, obj({"id": STRING}, closed=False)]}),
    "description": "Every resource id of the dataset, in the new order (or the resources, {\"id\": ...})",
})
def resource_order(payload: Any) -> list[str]:
    """The ids of udata's reorder body: the ids, or the resources themselves (`[{"id": ...}]`, as
    datagouv-client sends them)."""
    items = payload if isinstance(payload, list) else None
    ordered = [item.get("id") if isinstance(item, dict) else item for item in items or []]
    if items is None or not all(isinstance(item, str) for item in ordered):
        raise ValidationError({"payload": ["Expected the JSON list of all resource ids (or of {\"id\": ...}), in the new order."]})
    refuse_unstorable_body(ordered)
    return ordered


# API tokens

NEW_TOKEN = Form({"name": text(255), "expires_at": aware_datetime})


# Extras (v2)

def extras_patch(payload: Any) -> dict[str, Any]:
    patch = require_object(payload)
    refuse_unstorable_body(patch)
    return patch


EXTRAS_PATCH = Cleaner(extras_patch, {**ANY_OBJECT, "description": "Keys to set; a null value deletes its key"})


def merge_extras(current: Mapping[str, Any], patch: Any) -> dict[str, Any]:
    """udata v2 extras PUT: set the given keys, delete those whose value is null."""
    patch = EXTRAS_PATCH(patch)
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


@accepts({**array(STRING), "description": "The keys to delete"})
def extras_keys(payload: Any) -> list[str]:
    """udata v2 extras DELETE takes a JSON list of keys."""
    if not isinstance(payload, list) or not all(isinstance(key, str) for key in payload):
        raise ValidationError({"payload": ["Expected a JSON list of keys."]})
    refuse_unstorable_body(payload)
    return payload


# Query strings


class QueryValues(Protocol):
    """A request's query string (starlette's QueryParams): repeated parameters kept."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def getlist(self, key: str) -> list[str]: ...


@dataclass(frozen=True)
class QueryParameter:
    """One query-string parameter: how a handler reads it (`read`, a 400 naming it when it is bad)
    and what the OpenAPI document says of it."""

    name: str
    read: Callable[[QueryValues], Any]
    schema: Json
    description: str
    required: bool = False


@dataclass(frozen=True)
class QueryString:
    """The parameters an endpoint reads, all of them: its handler takes their values from `read`
    (a parameter missing here is a KeyError there), the OpenAPI document lists them."""

    parameters: tuple[QueryParameter, ...]

    def read(self, params: QueryValues) -> dict[str, Any]:
        """Every parameter's value; one 400 naming every bad parameter."""
        values: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for parameter in self.parameters:
            try:
                values[parameter.name] = parameter.read(params)
            except ValidationError as exc:
                errors.update(exc.errors)
        if errors:
            raise ValidationError(errors)
        return values


# The last page a listing serves: past it the offset would overflow the databases' integers (a
# 500 on SQLite and PostgreSQL), and no catalog has that many pages.
MAX_PAGE = 1_000_000
# Items per page at most, on the API and the pages: a larger `page_size` is served this many (the
# answer's `page_size` says so), so that one anonymous request cannot serialize the whole catalog.
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 20  # udata's


def positive_int(params: QueryValues, name: str, default: int, maximum: int | None = None) -> int:
    """A positive integer query parameter; a 400 naming it when it is not one (empty included, as
    udata's parser refuses `page=`) or passes `maximum`."""
    raw = params.get(name)
    if raw is None:
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


def page_size(params: QueryValues, default: int) -> int:
    """`page_size`, at most MAX_PAGE_SIZE (a larger one is served MAX_PAGE_SIZE items)."""
    raw = params.get("page_size")
    if raw and raw.isdigit() and len(raw) > 4:
        return MAX_PAGE_SIZE  # any number of 5 digits or more is over the cap
    return min(positive_int(params, "page_size", default), MAX_PAGE_SIZE)


QUERY_TRUE = ("true", "1", "yes", "on")
QUERY_FALSE = ("false", "0", "no", "off")


def query_boolean(params: QueryValues, name: str) -> bool | None:
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


def optional_text_parameter(name: str, description: str) -> QueryParameter:
    """A free-text filter; absent or empty, it filters nothing (None)."""
    return QueryParameter(name, lambda params: params.get(name) or None, STRING, description)


PAGE = QueryParameter(
    "page", lambda params: positive_int(params, "page", 1, MAX_PAGE),
    {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1}, "The page to return",
)
PAGE_SIZE = QueryParameter(
    "page_size", lambda params: page_size(params, DEFAULT_PAGE_SIZE),
    {"type": "integer", "minimum": 1, "default": DEFAULT_PAGE_SIZE},
    f"Items per page; more than {MAX_PAGE_SIZE} are served {MAX_PAGE_SIZE} (the answer's page_size says so)",
)
DATASET_SORT = QueryParameter(
    "sort", lambda params: parse_sort(params.get("sort"), DATASET_SORTS),
    one_of(["", *(prefix + key for key in DATASET_SORTS for prefix in ("", "-"))]),
    "The order of the datasets ('-' before a key reverses it); newest first by default (or empty)",
)
DATASET_LISTING = QueryString((
    optional_text_parameter("q", "Words searched in titles and descriptions (accents and case ignored)"),
    PAGE,
    PAGE_SIZE,
    DATASET_SORT,
    optional_text_parameter("organization", "An organization's id or slug (an unknown one matches nothing)"),
    QueryParameter(
        "tag", lambda params: tuple(params.getlist("tag")), array(STRING),
        "A tag the datasets have; repeated, all of them (tag=a&tag=b)",
    ),
    optional_text_parameter("license", "A licence id (see /api/1/datasets/licenses/)"),
    optional_text_parameter("format", "A format one of the dataset's resources has, e.g. csv (case ignored)"),
    QueryParameter(
        "deleted", lambda params: query_boolean(params, "deleted"), BOOLEAN,
        "true: the deleted datasets the caller may edit (and may restore) instead of the live ones; a key is needed",
    ),
))
ORGANIZATION_DATASET_LISTING = QueryString((PAGE, PAGE_SIZE, DATASET_SORT))
