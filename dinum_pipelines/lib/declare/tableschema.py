"""A dataset's columns and rules, read from the Table Schema it follows (schema.data.gouv.fr).

Etalab publishes reference schemas (Frictionless Table Schema) for data that many producers
publish alike: car parks, carpool areas, traffic counters. A dataset that follows one names it
in its YAML (`schema: {name, version, path}`), and its columns are derived from the schema's
fields instead of being copied by hand, so the rules stay those of the schema's version.
Columns the YAML declares explicitly override the derived ones key by key (a local date format,
a `warning` severity), and `primary_key` in the YAML replaces the schema's.

Mapping of a field to a column:
- type: string, integer, number, boolean, date, datetime as is; year -> integer; any other
  (time, yearmonth, geopoint, object, array, any...) -> string, kept as written;
- constraints: required, unique, pattern, enum (string/number columns), minimum/maximum
  (number, date and datetime columns), minLength/maxLength (string columns); a constraint the
  column model cannot express for that type is not enforced;
- string `format: email` -> the column's `format: email` (checked like the French formats);
- date/datetime `format`: "default" -> ISO 8601 (strictly, as the schema requires), "any" ->
  the French defaults of cleaning, `%d/%m/%Y` (or legacy `fmt:%d/%m/%Y`) -> that format;
- the name: the project's column names are snake_case; a field named `Xlong` becomes column
  `xlong` read from header `Xlong`.

The schema is found, in this order: `path` as a local file (relative to the registry file),
`path` as an http(s) URL fetched once into the schema cache, or the cache alone
(`$DINUM_SCHEMA_CACHE/<name>/<version>/schema.json`, default
`~/.cache/dinum_pipelines/schemas`), so that loading the definitions does not need the network
once a schema version is cached (a version is immutable once published).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from dinum_pipelines.lib.declare.names import snake_case
from dinum_pipelines.lib.conformance.schema import SchemaError, load_schema_document
from dinum_pipelines.lib.ingest.http import FetchError, fetch_to_file, make_session

SCHEMA_CACHE_ENV = "DINUM_SCHEMA_CACHE"
CACHE_FILE_NAME = "schema.json"
# A schema is a few kilobytes; anything much larger is not one.
MAX_SCHEMA_BYTES = 10 * 1024**2
FETCH_TIMEOUT = (10.0, 30.0)

TYPES = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "date": "date",
    "datetime": "datetime",
    "year": "integer",
}
# Table Schema's "default" formats: ISO 8601 only (datetimes in UTC with a `Z`).
ISO_FORMATS = {"date": ["%Y-%m-%d"], "datetime": ["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S"]}
_URL = re.compile(r"^https?://", re.IGNORECASE)


class TableSchemaError(ValueError):
    """The schema cannot be found, read or mapped; the message names the file or URL and the field."""

    def __init__(self, message: str, registry_field: str | None = None) -> None:
        super().__init__(message)
        # The registry file's field to blame, when it is not where the schema was looked for.
        self.registry_field = registry_field


@dataclass(frozen=True)
class TableSchema:
    document: dict[str, Any]
    # Where it was read from (a file path), for messages.
    origin: str


@dataclass(frozen=True)
class DerivedColumns:
    """What a schema contributes to a registry file, in the registry's own YAML shapes."""

    # Column mappings as a YAML `columns:` list would hold them, in the schema's field order.
    columns: list[dict[str, Any]]
    # The schema field each column came from (same order).
    field_names: list[str]
    # The schema's primaryKey, as field names.
    primary_key: list[str]
    # The decimal mark of the schema's numbers (Table Schema's decimalChar, "." by default).
    decimal: str


def schema_cache_dir() -> Path:
    configured = os.environ.get(SCHEMA_CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "dinum_pipelines" / "schemas"


def cached_schema_path(name: str, version: str | None) -> Path:
    """Where a schema version lives in the cache (`latest` when no version is pinned)."""
    return schema_cache_dir() / name / (version or "latest") / CACHE_FILE_NAME


def load_table_schema(name: str, version: str | None, location: str | None, base_dir: Path) -> TableSchema:
    """Find, read and check the schema `name`/`version`; `location` is the YAML's `path`, expanded."""
    if location is not None and not _URL.match(location):
        path = Path(location).expanduser()
        path = path if path.is_absolute() else base_dir / path
    else:
        path = cached_schema_path(name, version)
        if not path.is_file():
            if location is None:
                raise TableSchemaError(
                    f"schema {name!r} version {version or '(latest)'} is not in the schema cache ({path}); "
                    f"give its file or URL in schema.path, or put it there (cache folder: ${SCHEMA_CACHE_ENV})"
                )
            _fetch_into_cache(location, path)
    schema = _read(path)
    declared = schema.document.get("version")
    if version is not None and declared is not None and str(declared) != version:
        raise TableSchemaError(
            f"{path}: the registry asks for version {version} but the schema is version {declared}", "schema.version"
        )
    return schema


def _fetch_into_cache(url: str, destination: Path) -> None:
    try:
        with make_session(retries=2, backoff_factor=0.5) as session:
            download = fetch_to_file(
                session, url, destination.parent, timeout=FETCH_TIMEOUT, max_bytes=MAX_SCHEMA_BYTES
            )
    except FetchError as exc:
        raise TableSchemaError(f"cannot download the schema: {exc}") from None
    if download.path is None:  # a 304, though no validators were sent
        raise TableSchemaError(f"{url}: the server answered {download.status_code} without a body")
    try:
        _read(download.path, origin=url)  # only a readable Table Schema enters the cache
        os.replace(download.path, destination)
    finally:
        download.path.unlink(missing_ok=True)


def _read(path: Path, origin: str | None = None) -> TableSchema:
    where = origin or str(path)
    try:
        document = load_schema_document(path, where)
    except SchemaError as exc:
        raise TableSchemaError(str(exc)) from None
    fields = document.get("fields") if isinstance(document, dict) else None
    if not isinstance(fields, list) or not fields:
        raise TableSchemaError(f"{where}: not a Table Schema (no 'fields' list at the top level)")
    for index, field in enumerate(fields):
        if not isinstance(field, dict) or not isinstance(field.get("name"), str) or not field["name"]:
            raise TableSchemaError(f"{where}: field 'fields[{index}]' has no name")
    return TableSchema(document, where)


def derive_columns(schema: TableSchema) -> DerivedColumns:
    """The schema's fields as registry column mappings, with its primary key and decimal mark."""
    fields: list[dict[str, Any]] = schema.document["fields"]
    try:
        columns = [_column(field) for field in fields]
    except TableSchemaError as exc:
        raise TableSchemaError(f"{schema.origin}: {exc}") from None
    names = [column["name"] for column in columns]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise TableSchemaError(f"{schema.origin}: fields {clashes} map to the same column name; declare them in columns")
    field_names = [field["name"] for field in fields]
    primary_key = schema.document.get("primaryKey") or []
    primary_key = [primary_key] if isinstance(primary_key, str) else list(primary_key)
    unknown = [key for key in primary_key if key not in field_names]
    if unknown:
        raise TableSchemaError(f"{schema.origin}: field 'primaryKey': {unknown} are not fields of the schema")
    decimals = {field.get("decimalChar", ".") for field in fields if field.get("type") == "number"}
    if len(decimals) > 1:
        raise TableSchemaError(f"{schema.origin}: number fields use different decimalChar values {sorted(decimals)}")
    return DerivedColumns(columns, field_names, primary_key, decimals.pop() if decimals else ".")


def _column(field: dict[str, Any]) -> dict[str, Any]:
    name: str = field["name"]
    kind = TYPES.get(str(field.get("type") or "string"), "string")
    column: dict[str, Any] = {"name": snake_case(name), "type": kind}
    if column["name"] != name:
        column["source"] = name
    description = field.get("description") or field.get("title")
    if description:
        column["description"] = str(description)
    constraints = field.get("constraints") or {}
    if not isinstance(constraints, dict):
        raise TableSchemaError(f"field {name!r}: 'constraints' is not an object")
    for key in ("required", "unique"):
        if key in constraints:
            column[key] = bool(constraints[key])
    if "pattern" in constraints:
        column["pattern"] = constraints["pattern"]
    numeric = kind in ("integer", "number")
    if "enum" in constraints and (numeric or kind == "string"):
        column["enum"] = [value for value in constraints["enum"] if value is not None]
    if numeric:
        column.update({key: constraints[key] for key in ("minimum", "maximum") if key in constraints})
    if kind in ISO_FORMATS:
        column.update({key: _iso_bound(constraints[key], kind, name) for key in ("minimum", "maximum") if key in constraints})
    if kind == "string" and field.get("format") == "email":
        column["format"] = "email"
    if kind == "string":
        lengths = {"minLength": "min_length", "maxLength": "max_length"}
        column.update({rule: constraints[key] for key, rule in lengths.items() if key in constraints})
    if kind in ISO_FORMATS:
        formats = _date_formats(kind, field.get("format"), name)
        if formats is not None:
            column["date_formats"] = formats
    return column


def _iso_bound(value: Any, kind: str, field_name: str) -> date | datetime:
    """A date field's minimum/maximum: ISO 8601, as Table Schema writes them."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise TableSchemaError(f"field {field_name!r}: {kind} bound {value!r} is not ISO 8601") from None
    return parsed.date() if kind == "date" else parsed.replace(tzinfo=None)


def _date_formats(kind: str, fmt: Any, field_name: str) -> list[str] | None:
    if fmt in (None, "default"):
        return ISO_FORMATS[kind]
    if fmt == "any":
        return None  # cleaning's French defaults
    pattern = str(fmt).removeprefix("fmt:")
    if "%" not in pattern:
        raise TableSchemaError(f"field {field_name!r}: unknown {kind} format {fmt!r}")
    return [pattern]


def _header(column: dict[str, Any]) -> Any:
    return column.get("source") or column.get("name")


def merge_columns(derived: list[dict[str, Any]], declared: Sequence[Any]) -> list[Any]:
    """The schema's columns, each overridden by the YAML column with its name or header; then the
    YAML's other columns. An override replaces the keys it sets and keeps the others (write
    `pattern: null` to drop a schema rule)."""
    merged: list[Any] = [dict(column) for column in derived]
    for column in declared:
        match = None
        if isinstance(column, dict):
            match = next(
                (
                    index
                    for index, candidate in enumerate(derived)
                    if candidate["name"] == column.get("name") or _header(candidate) == _header(column)
                ),
                None,
            )
        if match is None:
            merged.append(column)
        else:
            merged[match] = {**merged[match], **column}
    return merged


def primary_key_names(fields: list[str], merged: list[Any]) -> list[str]:
    """The schema's primary key fields as the names of the merged columns that read them."""
    by_header = {_header(column): column.get("name") for column in merged if isinstance(column, dict)}
    return [by_header.get(field, field) for field in fields]


_JSON_SCHEMA_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}


def json_schema_columns(properties: dict[str, Any], required: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Registry column mappings from a JSON Schema `properties` object, as some schema.data.gouv.fr
    schemas describe GeoJSON features' properties (schema-zfe): type (the first non-null one),
    `format: date`/`date-time`, `format: email`, `enum` (null left out) and `required`."""
    columns = []
    for name, prop in properties.items():
        types = prop.get("type", "string")
        kind = next((t for t in ([types] if isinstance(types, str) else types) if t != "null"), "string")
        column: dict[str, Any] = {"name": snake_case(name), "type": _JSON_SCHEMA_TYPES.get(kind, "string")}
        if column["name"] != name:
            column["source"] = name
        fmt = prop.get("format")
        if kind == "string" and fmt == "date":
            column.update(type="date", date_formats=ISO_FORMATS["date"])
        elif kind == "string" and fmt == "date-time":
            column.update(type="datetime", date_formats=ISO_FORMATS["datetime"])
        elif kind == "string" and fmt == "email":
            column["format"] = "email"
        if "enum" in prop:
            column["enum"] = [value for value in prop["enum"] if value is not None]
        if name in required:
            column["required"] = True
        columns.append(column)
    return columns
