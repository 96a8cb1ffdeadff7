"""The OpenAPI 3 description of the catalog's API, served at /api/1/swagger.json (udata's path).

Paths, methods and path parameters come from the app's own route table when the document is
requested, so the document cannot list a route that does not exist nor miss one that does. What a
route table cannot say (a summary, whether a key is needed, the body, the answers) is in
`OPERATIONS`; a route without an entry there shows as "Undocumented", which the tests refuse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute, Route

API_PREFIXES = ("/api/1/", "/api/2/")
UNDOCUMENTED = "Undocumented"
Json = dict[str, Any]


@dataclass(frozen=True)
class Operation:
    summary: str
    auth: bool = False  # needs an X-API-KEY
    body: str | None = None  # "json" or "multipart"
    success: int = 200
    errors: tuple[int, ...] = ()
    tag: str = "datasets"


WRITE_ERRORS = (400, 401, 403, 404, 410)
DATASET_READ_ERRORS = (404, 410)
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/api/1/swagger.json"): Operation("This document", tag="site"),
    ("GET", "/api/1/datasets/"): Operation("Search and list public datasets (paginated)", errors=(400,)),
    ("POST", "/api/1/datasets/"): Operation("Create a dataset", auth=True, body="json", success=201, errors=(400, 401)),
    ("GET", "/api/1/datasets/licenses/"): Operation("The licences a dataset may have", tag="reference"),
    ("GET", "/api/1/datasets/frequencies/"): Operation("The update frequencies", tag="reference"),
    ("GET", "/api/1/datasets/resource_types/"): Operation("The resource types", tag="reference"),
    ("GET", "/api/1/spatial/granularities/"): Operation("The spatial granularities", tag="reference"),
    ("GET", "/api/1/datasets/r/{rid}"): Operation("Stable link: redirects to the resource's current file", success=302, errors=(404,)),
    ("GET", "/api/1/datasets/{dataset}/"): Operation(
        "A dataset, by id or slug (its editors see it deleted, with `deleted` set)", errors=DATASET_READ_ERRORS
    ),
    ("PUT", "/api/1/datasets/{dataset}/"): Operation(
        "Update a dataset (partial; {\"deleted\": null} restores a deleted one)", auth=True, body="json", errors=WRITE_ERRORS
    ),
    ("DELETE", "/api/1/datasets/{dataset}/"): Operation(
        "Delete a dataset (soft: 410 afterwards to all but its editors)", auth=True, success=204, errors=WRITE_ERRORS
    ),
    ("POST", "/api/1/datasets/{dataset}/upload/"): Operation(
        "Upload a file as a new resource", auth=True, body="multipart", success=201, errors=(*WRITE_ERRORS, 415)
    ),
    ("POST", "/api/1/datasets/{dataset}/resources/"): Operation(
        "Add a remote resource", auth=True, body="json", success=201, errors=WRITE_ERRORS
    ),
    ("PUT", "/api/1/datasets/{dataset}/resources/"): Operation(
        "Reorder the resources (the body lists every resource id)", auth=True, body="json", errors=WRITE_ERRORS
    ),
    ("GET", "/api/1/datasets/{dataset}/resources/{rid}/"): Operation("A resource", errors=DATASET_READ_ERRORS),
    ("PUT", "/api/1/datasets/{dataset}/resources/{rid}/"): Operation(
        "Update a resource's metadata", auth=True, body="json", errors=WRITE_ERRORS
    ),
    ("DELETE", "/api/1/datasets/{dataset}/resources/{rid}/"): Operation(
        "Delete a resource and its file", auth=True, success=204, errors=WRITE_ERRORS
    ),
    ("POST", "/api/1/datasets/{dataset}/resources/{rid}/upload/"): Operation(
        "Replace a resource's file (same id, new checksum)", auth=True, body="multipart", errors=(*WRITE_ERRORS, 415)
    ),
    ("POST", "/api/1/organizations/"): Operation(
        "Create an organization (the caller becomes its admin)", auth=True, body="json", success=201, errors=(400, 401),
        tag="organizations",
    ),
    ("GET", "/api/1/organizations/{org}/"): Operation(
        "An organization, with its members (a deleted one only to its members)", errors=(404, 410), tag="organizations"
    ),
    ("PUT", "/api/1/organizations/{org}/"): Operation(
        "Update an organization (admins; {\"deleted\": null} restores it)", auth=True, body="json", errors=WRITE_ERRORS,
        tag="organizations",
    ),
    ("DELETE", "/api/1/organizations/{org}/"): Operation(
        "Delete an organization (admins; soft: 410 afterwards to non-members)", auth=True, success=204,
        errors=WRITE_ERRORS, tag="organizations",
    ),
    ("GET", "/api/2/organizations/{org}/extras/"): Operation("An organization's extras", errors=(404, 410), tag="organizations"),
    ("PUT", "/api/2/organizations/{org}/extras/"): Operation(
        "Merge into an organization's extras (null deletes a key; admins)", auth=True, body="json", errors=WRITE_ERRORS,
        tag="organizations",
    ),
    ("DELETE", "/api/2/organizations/{org}/extras/"): Operation(
        "Delete organization extras keys (the body lists them; admins)", auth=True, body="json", success=204,
        errors=WRITE_ERRORS, tag="organizations",
    ),
    ("GET", "/api/1/organizations/{org}/datasets/"): Operation(
        "An organization's datasets (private ones too for members)", errors=(400, 404, 410), tag="organizations"
    ),
    ("GET", "/api/1/me/"): Operation("The caller's account", auth=True, errors=(401,), tag="me"),
    ("GET", "/api/1/me/api_tokens/"): Operation("The caller's API tokens", auth=True, errors=(401,), tag="me"),
    ("POST", "/api/1/me/api_tokens/"): Operation(
        "Create an API token (shown once)", auth=True, body="json", success=201, errors=(400, 401), tag="me"
    ),
    ("DELETE", "/api/1/me/api_tokens/{token_id}/"): Operation("Revoke an API token", auth=True, success=204, errors=(401, 404), tag="me"),
    ("GET", "/api/2/datasets/resources/{rid}/"): Operation(
        "A resource by its id alone, with its dataset's id (udata v2)", errors=DATASET_READ_ERRORS
    ),
    ("GET", "/api/2/datasets/{dataset}/extras/"): Operation("A dataset's extras", errors=DATASET_READ_ERRORS),
    ("PUT", "/api/2/datasets/{dataset}/extras/"): Operation(
        "Merge into a dataset's extras (null deletes a key)", auth=True, body="json", errors=WRITE_ERRORS
    ),
    ("DELETE", "/api/2/datasets/{dataset}/extras/"): Operation(
        "Delete extras keys (the body lists them)", auth=True, body="json", success=204, errors=WRITE_ERRORS
    ),
    ("GET", "/api/2/datasets/{dataset}/resources/{rid}/extras/"): Operation("A resource's extras", errors=DATASET_READ_ERRORS),
    ("PUT", "/api/2/datasets/{dataset}/resources/{rid}/extras/"): Operation(
        "Merge into a resource's extras (null deletes a key)", auth=True, body="json", errors=WRITE_ERRORS
    ),
    ("DELETE", "/api/2/datasets/{dataset}/resources/{rid}/extras/"): Operation(
        "Delete resource extras keys (the body lists them)", auth=True, body="json", success=204, errors=WRITE_ERRORS
    ),
    ("GET", "/api/1/events/"): Operation(
        "The usage log of a time window (?since=&until=, ISO with time zone), as CSV (sysadmins)",
        auth=True, errors=(400, 401, 403), tag="metrics",
    ),
    ("PUT", "/api/1/metrics/"): Operation(
        "Replace the usage metrics: metric API tables and objects' metrics, all or nothing (sysadmins)",
        auth=True, body="json", errors=(400, 401, 403, 409), tag="metrics",
    ),
}

ERROR_DESCRIPTIONS = {
    400: "Invalid request (validation errors per field)",
    401: "No key, or an invalid, revoked or expired key",
    403: "Not a member of the owning organization",
    404: "Not found",
    410: "Deleted",
    415: "HTML content refused",
    409: "Conflict (nothing was changed)",
}
SUCCESS_DESCRIPTIONS = {200: "OK", 201: "Created", 204: "No content", 302: "Redirect to the file"}
_CONVERTER = re.compile(r"\{(\w+):\w+\}")


def api_operations(routes: Iterable[BaseRoute]) -> dict[str, list[str]]:
    """API path -> methods, from the route table; the slash/no-slash twins count once (first seen)."""
    found: dict[str, list[str]] = {}
    canonical: dict[str, str] = {}
    for route in routes:
        if not isinstance(route, Route) or not route.path.startswith(API_PREFIXES):
            continue
        path = _CONVERTER.sub(r"{\1}", route.path)
        path = canonical.setdefault(path.rstrip("/"), path)
        methods = sorted((route.methods or set()) - {"HEAD"})
        found.setdefault(path, [])
        found[path] += [method for method in methods if method not in found[path]]
    return found


def _responses(operation: Operation) -> Json:
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    responses: Json = {str(operation.success): {"description": SUCCESS_DESCRIPTIONS[operation.success]}}
    if operation.success in (200, 201):
        responses[str(operation.success)]["content"] = {"application/json": {"schema": {}}}
    for status in operation.errors:
        responses[str(status)] = {"description": ERROR_DESCRIPTIONS[status], **error}
    return responses


def _request_body(kind: str) -> Json:
    if kind == "multipart":
        schema = {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}, "required": ["file"]}
        return {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    return {"required": True, "content": {"application/json": {"schema": {}}}}


def _operation(method: str, path: str) -> Json:
    operation = OPERATIONS.get((method, path), Operation(UNDOCUMENTED, tag="undocumented"))
    document: Json = {
        "summary": operation.summary,
        "operationId": f"{method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', path)}".rstrip("_"),
        "tags": [operation.tag],
        "responses": _responses(operation),
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{(\w+)\}", path)
    ]
    if parameters:
        document["parameters"] = parameters
    if operation.body:
        document["requestBody"] = _request_body(operation.body)
    if operation.auth:
        document["security"] = [{"apiKey": []}]
    return document


def openapi_document(routes: Iterable[BaseRoute], server_url: str) -> Json:
    paths = {
        path: {method.lower(): _operation(method, path) for method in methods}
        for path, methods in api_operations(routes).items()
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "dinum_pipelines catalog (udata API subset)",
            "version": "1",
            "description": "A udata-compatible catalog: same paths, fields and error bodies as data.gouv.fr's API.",
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-KEY"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"message": {"type": "string"}, "errors": {"type": "object"}},
                    "required": ["message"],
                }
            },
        },
    }
