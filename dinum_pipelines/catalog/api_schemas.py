"""JSON Schema building blocks, in OpenAPI 3.0's dialect, for the API's declarations.

The cleaners that validate request bodies (validation.py), the query parameters the handlers
read (validation.py) and the documents the Renderer returns (render.py) each carry their schema,
built from these; openapi.py assembles the document from those same objects, so that what the
document says is what the code does.

OpenAPI 3.0 has no `"type": ["string", "null"]` and ignores the siblings of a `$ref`: a value that
may be null is `nullable: true` beside a type, which `nullable()` writes in one place (a schema
that may be null is inlined rather than referenced).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Json = dict[str, Any]

STRING: Json = {"type": "string"}
BOOLEAN: Json = {"type": "boolean"}
COUNT: Json = {"type": "integer", "minimum": 0}
DATE: Json = {"type": "string", "format": "date"}
DATE_TIME: Json = {"type": "string", "format": "date-time"}
URI: Json = {"type": "string", "format": "uri"}  # only for URLs the catalog builds itself
ANY_OBJECT: Json = {"type": "object", "additionalProperties": True}
COMPONENTS = "#/components/schemas/"
# null, and nothing else: OpenAPI 3.0 has no null type, only a nullable type restricted to it.
NULL: Json = {"type": "string", "nullable": True, "enum": [None]}


def nullable(schema: Json) -> Json:
    """`schema`, or null. Not for a `$ref`: OpenAPI 3.0 ignores a `$ref`'s siblings, and validators
    apply the referenced schema to null too when it is wrapped (allOf); pass the schema itself."""
    if "$ref" in schema:
        raise ValueError("a $ref cannot be made nullable in OpenAPI 3.0: inline the schema")
    if "type" not in schema and "anyOf" in schema:  # `nullable` needs a type beside it
        return {**schema, "anyOf": [*schema["anyOf"], NULL]}
    if "enum" in schema and None not in schema["enum"]:
        return {**schema, "nullable": True, "enum": [*schema["enum"], None]}  # an enum without null refuses null
    return {**schema, "nullable": True}


def array(items: Json) -> Json:
    return {"type": "array", "items": items}


def one_of(values: Iterable[str]) -> Json:
    return {"type": "string", "enum": list(values)}


def obj(properties: Mapping[str, Json], *, optional: Iterable[str] = (), closed: bool = True) -> Json:
    """An object with these properties, all present but the `optional` ones.

    `closed` (no other property) is for the documents the catalog writes: a field added to a
    Renderer method without its schema then fails the tests instead of going undocumented.
    """
    optional = set(optional)
    schema: Json = {"type": "object", "properties": dict(properties)}
    required = [name for name in properties if name not in optional]
    if required:
        schema["required"] = required
    if closed:
        schema["additionalProperties"] = False
    return schema


def ref(name: str) -> Json:
    return {"$ref": f"{COMPONENTS}{name}"}


def with_default(schema: Json, default: Any) -> Json:
    return {**schema, "default": default}
