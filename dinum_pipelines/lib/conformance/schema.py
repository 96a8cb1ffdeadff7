"""A Table Schema as the conformance validator reads it: the whole specification, leniently.

schema.data.gouv.fr hosts schemas written over ten years by many hands. Some break the letter of
the specification (`"required": "true"` as a string, a schema `name` with spaces, an `example`
that does not fit its field's type, `primaryKey` or foreign-key `fields` as a plain string,
`fmt:`-prefixed date formats); frictionless refuses several of them outright. A producer's file
still deserves a report against them, so each such departure is read as its author meant it and
recorded as a warning, and only a document that is not a schema at all (no `fields` list, a field
without a name) is refused, with a `SchemaError` naming the place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TYPES = frozenset(
    {
        "string", "number", "integer", "boolean", "date", "datetime", "time", "year", "yearmonth",
        "duration", "geopoint", "geojson", "object", "array", "any", "list",
    }
)
CONSTRAINT_NAMES = frozenset(
    {"required", "unique", "pattern", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength"}
)
DEFAULT_TRUE_VALUES = ("true", "True", "TRUE", "1")
DEFAULT_FALSE_VALUES = ("false", "False", "FALSE", "0")
DEFAULT_MISSING_VALUES = ("",)


class SchemaError(ValueError):
    """The document is not a Table Schema; the message names the file and the place."""


@dataclass(frozen=True)
class Field:
    name: str
    type: str = "string"
    format: str = "default"
    constraints: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    description: str = ""
    true_values: tuple[str, ...] = DEFAULT_TRUE_VALUES
    false_values: tuple[str, ...] = DEFAULT_FALSE_VALUES
    decimal_char: str = "."
    group_char: str = ""
    bare_number: bool = True
    # Whether decimalChar, groupChar or bareNumber were written (frictionless only then rewrites cells).
    number_options: bool = False
    # The field's own missingValues; None = the schema's.
    missing_values: tuple[str, ...] | None = None
    # For arrays: the item's field (its type and constraints).
    array_item: Field | None = None
    # For `list` fields (Table Schema v2): the delimiter and the items' type.
    delimiter: str = ","
    item_type: str = "string"

    @property
    def required(self) -> bool:
        return bool(self.constraints.get("required"))


@dataclass(frozen=True)
class ForeignKey:
    fields: tuple[str, ...]
    # The referenced resource's name ("" = this same table) and its fields.
    resource: str
    reference_fields: tuple[str, ...]


@dataclass(frozen=True)
class Schema:
    fields: tuple[Field, ...]
    missing_values: tuple[str, ...] = DEFAULT_MISSING_VALUES
    primary_key: tuple[str, ...] = ()
    unique_keys: tuple[tuple[str, ...], ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    # Validata's custom checks, as declared: [{"name": ..., "params": {...}}].
    custom_checks: tuple[dict[str, Any], ...] = ()
    # How the schema departs from the specification, read leniently (French, for the report).
    warnings: tuple[str, ...] = ()
    name: str = ""
    version: str = ""
    # Where it was read from, for messages.
    origin: str = ""

    def field_named(self, name: str) -> Field | None:
        return next((candidate for candidate in self.fields if candidate.name == name), None)

    @property
    def field_names(self) -> list[str]:
        return [candidate.name for candidate in self.fields]


def load_schema_document(path: Path | str, where: str | None = None) -> Any:
    """A schema file's JSON; `SchemaError` naming `where` (default: the path) when it cannot be read."""
    where = where or str(path)
    try:
        return json.loads(Path(path).read_bytes())
    except OSError as exc:
        raise SchemaError(f"{where}: cannot read the schema: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{where}: the schema is not valid JSON: {exc}") from None


def read_schema_file(path: Path | str, origin: str | None = None) -> Schema:
    """The Table Schema in a JSON file, read leniently; `origin` names it in messages (its URL)."""
    where = origin or str(path)
    return parse_schema(load_schema_document(path, where), where)


def parse_schema(document: Any, origin: str = "schema") -> Schema:
    """Read a Table Schema document leniently; `SchemaError` only when it is not one."""
    if not isinstance(document, dict):
        raise SchemaError(f"{origin}: a Table Schema is a JSON object, found {type(document).__name__}")
    fields = document.get("fields")
    if not isinstance(fields, list) or not fields:
        raise SchemaError(f"{origin}: not a Table Schema (no 'fields' list at the top level)")
    warnings: list[str] = []
    parsed = [_field(raw, index, warnings, origin) for index, raw in enumerate(fields)]
    names = [candidate.name for candidate in parsed]
    for name in sorted({name for name in names if names.count(name) > 1}):
        warnings.append(f"le champ « {name} » est déclaré plusieurs fois ; seul le premier est vérifié")
    missing_values = _string_list(document.get("missingValues", list(DEFAULT_MISSING_VALUES)), "missingValues", warnings)
    primary_key = _key(document.get("primaryKey"), "primaryKey", names, warnings)
    unique_keys = tuple(
        key
        for index, raw in enumerate(document.get("uniqueKeys") or [])
        if (key := _key(raw, f"uniqueKeys[{index}]", names, warnings))
    )
    foreign_keys = tuple(
        key for index, raw in enumerate(document.get("foreignKeys") or []) if (key := _foreign_key(raw, index, names, warnings))
    )
    checks = document.get("custom_checks") or []
    if not isinstance(checks, list):
        warnings.append("« custom_checks » n'est pas une liste ; ignoré")
        checks = []
    name = document.get("name")
    if isinstance(name, str) and name and not _is_spec_name(name):
        warnings.append(f"le nom du schéma « {name} » ne suit pas la règle des noms (minuscules, sans espace)")
    return Schema(
        fields=tuple(parsed),
        missing_values=tuple(missing_values),
        primary_key=primary_key,
        unique_keys=unique_keys,
        foreign_keys=foreign_keys,
        custom_checks=tuple(check for check in checks if isinstance(check, dict)),
        warnings=tuple(warnings),
        name=str(name or ""),
        version=str(document.get("version") or ""),
        origin=origin,
    )


def _is_spec_name(name: str) -> bool:
    return all(character in "-abcdefghijklmnopqrstuvwxyz0123456789._/" for character in name)


def _flag(value: Any, where: str, warnings: list[str]) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        warnings.append(f"{where} vaut la chaîne « {value} » au lieu d'un booléen ; lu comme {value.strip().lower()}")
        return value.strip().lower() == "true"
    warnings.append(f"{where} vaut {value!r} au lieu d'un booléen ; lu comme {bool(value)}")
    return bool(value)


def _string_list(value: Any, where: str, warnings: list[str]) -> list[str]:
    if isinstance(value, str):
        warnings.append(f"« {where} » est une chaîne au lieu d'une liste")
        return [value]
    if not isinstance(value, list):
        warnings.append(f"« {where} » n'est pas une liste ; ignoré")
        return list(DEFAULT_MISSING_VALUES)
    return [str(item) for item in value if item is not None]


def _field(raw: Any, index: int, warnings: list[str], origin: str, *, item: bool = False) -> Field:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise SchemaError(f"{origin}: field 'fields[{index}]' has no name")
    name: str = raw["name"]
    where = f"le champ « {name} »"
    kind = raw.get("type") or "string"
    if kind not in TYPES:
        warnings.append(f"{where} a le type inconnu « {kind} » ; ses valeurs ne sont pas vérifiées")
        kind = "any"
    fmt = raw.get("format") or "default"
    if not isinstance(fmt, str):
        warnings.append(f"{where} a un format qui n'est pas une chaîne ; ignoré")
        fmt = "default"
    if fmt.startswith("fmt:"):
        warnings.append(f"{where} écrit son format « {fmt} » à l'ancienne (préfixe « fmt: »)")
        fmt = fmt[4:]
    constraints = raw.get("constraints") or {}
    if not isinstance(constraints, dict):
        warnings.append(f"{where} a des contraintes qui ne sont pas un objet ; ignorées")
        constraints = {}
    constraints = dict(constraints)
    for key in sorted(CONSTRAINT_NAMES & raw.keys()):
        # Validata never enforced a constraint written beside `constraints` (frictionless ignores it
        # or refuses the schema): files producers had validated must stay valid, so it is not
        # applied; the schema's author is told.
        place = "dans « arrayItem »" if item else ""
        warnings.append(f"{where} : « {key} » est écrit hors de « constraints » {place}; non appliqué".replace("  ", " "))
    for key in ("required", "unique"):
        if key in constraints:
            constraints[key] = _flag(constraints[key], f"{where} : la contrainte « {key} »", warnings)
    for key in ("minLength", "maxLength"):
        if key in constraints and not isinstance(constraints[key], int):
            try:
                constraints[key] = int(constraints[key])
                warnings.append(f"{where} : la contrainte « {key} » n'est pas un entier")
            except (TypeError, ValueError):
                warnings.append(f"{where} : la contrainte « {key} » ({constraints[key]!r}) est illisible ; ignorée")
                del constraints[key]
    if "enum" in constraints and not isinstance(constraints["enum"], list):
        warnings.append(f"{where} : la contrainte « enum » n'est pas une liste ; ignorée")
        del constraints["enum"]
    if "pattern" in constraints and not isinstance(constraints["pattern"], str):
        warnings.append(f"{where} : la contrainte « pattern » n'est pas une chaîne ; ignorée")
        del constraints["pattern"]
    number_keys = {"decimalChar", "groupChar", "bareNumber"} & raw.keys()
    missing_values = raw.get("missingValues")
    array_item = None
    if isinstance(raw.get("arrayItem"), dict):
        descriptor = {key: value for key, value in raw["arrayItem"].items() if key != "arrayItem"}
        descriptor.setdefault("name", name)
        descriptor.setdefault("type", "any")
        array_item = _field(descriptor, index, warnings, origin, item=True)
    return Field(
        name=name,
        type=kind,
        format=fmt,
        constraints=constraints,
        title=str(raw.get("title") or ""),
        description=str(raw.get("description") or ""),
        true_values=tuple(_string_list(raw["trueValues"], f"{name}.trueValues", warnings)) if "trueValues" in raw else DEFAULT_TRUE_VALUES,
        false_values=tuple(_string_list(raw["falseValues"], f"{name}.falseValues", warnings)) if "falseValues" in raw else DEFAULT_FALSE_VALUES,
        decimal_char=str(raw.get("decimalChar", ".")),
        group_char=str(raw.get("groupChar", "")),
        bare_number=_flag(raw["bareNumber"], f"{where} : « bareNumber »", warnings) if "bareNumber" in raw else True,
        number_options=bool(number_keys) and kind in ("number", "integer"),
        missing_values=tuple(_string_list(missing_values, f"{name}.missingValues", warnings)) if missing_values is not None else None,
        array_item=array_item if kind == "array" else None,
        delimiter=str(raw.get("delimiter", ",")),
        item_type=str(raw.get("itemType", "string")),
    )


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(item) for item in value]
    return []


def _key(value: Any, where: str, names: list[str], warnings: list[str]) -> tuple[str, ...]:
    if value in (None, [], ""):
        return ()
    key = _names(value)
    unknown = [name for name in key if name not in names]
    if not key or unknown:
        warnings.append(f"« {where} » cite des champs absents du schéma ({unknown or value!r}) ; ignoré")
        return ()
    return tuple(key)


def _foreign_key(raw: Any, index: int, names: list[str], warnings: list[str]) -> ForeignKey | None:
    where = f"foreignKeys[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("reference"), dict):
        warnings.append(f"« {where} » est illisible ; ignoré")
        return None
    fields = _key(raw.get("fields"), f"{where}.fields", names, warnings)
    reference = raw["reference"]
    reference_fields = tuple(_names(reference.get("fields")))
    if not fields or len(fields) != len(reference_fields):
        warnings.append(f"« {where} » n'a pas autant de champs que sa référence ; ignoré")
        return None
    return ForeignKey(fields=fields, resource=str(reference.get("resource") or ""), reference_fields=reference_fields)
