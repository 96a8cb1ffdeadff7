"""The OpenAPI 3 description of the catalog's API, served at /api/1/swagger.json (udata's path).

Paths, methods and path parameters come from the app's own route table when the document is
requested, so the document cannot list a route that does not exist nor miss one that does. What a
route table cannot say is in `OPERATIONS`, and it says it with the objects the code itself runs:
a request body's schema is that of the Form that cleans it (validation.py), a listing's query
parameters are the QueryString its handler reads them from, a response's schema is the one
declared beside the Renderer method that writes it (render.py), errors are errors.py's bodies. A
route without an entry shows as "Undocumented", which the tests refuse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.routing import BaseRoute, Route

from dinum_pipelines.catalog.api_schemas import ANY_OBJECT, STRING, Json, array, obj, ref
from dinum_pipelines.catalog.chunks import UPLOAD_STATUS_BODY
from dinum_pipelines.catalog.errors import ERROR_BODY, SERVER_ERROR_BODY
from dinum_pipelines.catalog.metrics_api import EVENTS_WINDOW, METRICS_PUSH_BODY, METRICS_PUSH_SUMMARY
from dinum_pipelines.catalog.outages import UNAVAILABLE_BODY
from dinum_pipelines.catalog.notifications import NEW_WEBHOOK_SCHEMA, WEBHOOK_SCHEMAS
from dinum_pipelines.catalog.render import SCHEMAS
from dinum_pipelines.catalog.uploads import UPLOAD_BODY
from dinum_pipelines.catalog.versions import VERSION_SCHEMA
from dinum_pipelines.catalog.validation import (
    DATASET_CHANGES,
    DATASET_LISTING,
    EXTRAS_PATCH,
    FREE_VALUE_COMPONENT,
    FREE_VALUE_SCHEMA,
    NEW_DATASET,
    NEW_ORGANIZATION,
    NEW_REMOTE_RESOURCE,
    NEW_TOKEN,
    ORGANIZATION_CHANGES,
    ORGANIZATION_DATASET_LISTING,
    RESOURCE_CHANGES,
    QueryString,
    extras_keys,
    resource_order,
    storable_strings,
)

API_PREFIXES = ("/api/1/", "/api/2/")
UNDOCUMENTED = "Undocumented"
JSON = "application/json"
MULTIPART = "multipart/form-data"
CSV = "text/csv"


@dataclass(frozen=True)
class Operation:
    summary: str
    response: Json | None = None  # the success answer's body schema (None: no body)
    auth: bool = False  # needs an X-API-KEY
    body: Json | None = None  # the request body's schema
    body_type: str = JSON
    body_required: bool = True
    query: QueryString | None = None
    success: int = 200
    errors: tuple[int, ...] = ()
    tag: str = "datasets"
    response_type: str = JSON
    # The path parameter the answer's `id` is the value of: the document links this operation to
    # every operation taking that parameter (a client, or a fuzzer, follows them).
    creates: str | None = None
    # Answers beside `success` and udata's errors, (status, description, body schema); they take
    # the place of the default answer of their status.
    answers: tuple[tuple[int, str, Json], ...] = ()


# Any operation may answer these: 400 for a control character in the path or any query parameter
# or a bad X-Fields mask, 401 for a key that is sent but invalid (even on reads, as udata), 500 (a
# bug), 503 (the database unavailable: outages.py).
ALWAYS_POSSIBLE = (400, 401, 500, 503)
WRITE_ERRORS = (403, 404, 410)
DATASET_READ_ERRORS = (404, 410)
DATASET = ref("Dataset")
RESOURCE = ref("Resource")
ORGANIZATION = ref("Organization")
# udata's chunked upload (chunks.py): a part answers UploadStatus, a protocol error too (a 400).
UPLOAD_STATUS = ref("UploadStatus")
PART_RECEIVED_ANSWER = (200, "One part of a chunked upload stored (the final request answers the resource)", UPLOAD_STATUS)
CHUNK_ERROR_ANSWER = (
    400, "Invalid request (the errors per field), or a chunked upload that cannot go on as sent ({success: false, error})",
    {"anyOf": [ref("Error"), UPLOAD_STATUS]},
)
EXTRAS = {**ANY_OBJECT, "description": "Free keys and values (hydra's check:*, analysis:*...)"}
OPENAPI_DOCUMENT = obj({"openapi": STRING, "info": ANY_OBJECT, "servers": array(ANY_OBJECT), "paths": ANY_OBJECT,
                        "components": ANY_OBJECT}, closed=False)

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/api/1/swagger.json"): Operation("This document", OPENAPI_DOCUMENT, tag="site"),
    ("GET", "/api/1/datasets/"): Operation(
        "Search and list datasets (paginated; public ones, and the caller's private ones)", ref("DatasetPage"),
        query=DATASET_LISTING,
    ),
    ("POST", "/api/1/datasets/"): Operation(
        "Create a dataset", DATASET, auth=True, body=NEW_DATASET.schema, success=201, creates="dataset"
    ),
    ("GET", "/api/1/datasets/licenses/"): Operation("The licences a dataset may have", ref("Licenses"), tag="reference"),
    ("GET", "/api/1/datasets/frequencies/"): Operation("The update frequencies", ref("Frequencies"), tag="reference"),
    ("GET", "/api/1/datasets/resource_types/"): Operation("The resource types", ref("ResourceTypes"), tag="reference"),
    ("GET", "/api/1/spatial/granularities/"): Operation("The spatial granularities", ref("Granularities"), tag="reference"),
    ("GET", "/api/1/datasets/r/{rid}"): Operation(
        "Stable link: redirects to the resource's current file", success=302, errors=(404,)
    ),
    ("GET", "/api/1/datasets/{dataset}/"): Operation(
        "A dataset, by id or slug (its editors see it deleted, with `deleted` set)", DATASET, errors=DATASET_READ_ERRORS
    ),
    ("PUT", "/api/1/datasets/{dataset}/"): Operation(
        "Update a dataset (partial; {\"deleted\": null} restores a deleted one)", DATASET, auth=True,
        body=DATASET_CHANGES.schema, errors=WRITE_ERRORS,
    ),
    ("DELETE", "/api/1/datasets/{dataset}/"): Operation(
        "Delete a dataset (soft: 410 afterwards to all but its editors)", auth=True, success=204, errors=WRITE_ERRORS
    ),
    ("POST", "/api/1/datasets/{dataset}/upload/"): Operation(
        "Upload a file as a new resource, whole or in parts", ref("UploadedResource"), auth=True, body=UPLOAD_BODY,
        body_type=MULTIPART, success=201, errors=(*WRITE_ERRORS, 415), creates="rid",
        answers=(PART_RECEIVED_ANSWER, CHUNK_ERROR_ANSWER),
    ),
    ("POST", "/api/1/datasets/{dataset}/resources/"): Operation(
        "Add a remote resource", RESOURCE, auth=True, body=NEW_REMOTE_RESOURCE.schema, success=201,
        errors=WRITE_ERRORS, creates="rid",
    ),
    ("PUT", "/api/1/datasets/{dataset}/resources/"): Operation(
        "Reorder the resources (the body lists every resource id)", array(RESOURCE), auth=True,
        body=resource_order.schema, errors=WRITE_ERRORS,
    ),
    ("GET", "/api/1/datasets/{dataset}/resources/{rid}/"): Operation("A resource", RESOURCE, errors=DATASET_READ_ERRORS),
    ("PUT", "/api/1/datasets/{dataset}/resources/{rid}/"): Operation(
        "Update a resource's metadata (a hosted file's url, checksum, filesize and filetype are the server's)",
        RESOURCE, auth=True, body=RESOURCE_CHANGES.schema, errors=WRITE_ERRORS,
    ),
    ("DELETE", "/api/1/datasets/{dataset}/resources/{rid}/"): Operation(
        "Delete a resource and its file", auth=True, success=204, errors=WRITE_ERRORS
    ),
    ("POST", "/api/1/datasets/{dataset}/resources/{rid}/upload/"): Operation(
        "Replace a resource's file (same id, new checksum), whole or in parts", ref("UploadedResource"), auth=True,
        body=UPLOAD_BODY, body_type=MULTIPART, errors=(*WRITE_ERRORS, 415),
        answers=(
            (200, "The resource with its new file; for one part of a chunked upload, {success: true}",
             {"anyOf": [ref("UploadedResource"), UPLOAD_STATUS]}),
            CHUNK_ERROR_ANSWER,
        ),
    ),
    ("GET", "/api/1/datasets/{dataset}/resources/{rid}/versions/"): Operation(
        "A hosted resource's files, newest first: each with its stable URL and what changed since the one before",
        array(ref("ResourceVersion")), errors=DATASET_READ_ERRORS,
    ),
    ("POST", "/api/1/organizations/"): Operation(
        "Create an organization (the caller becomes its admin)", ORGANIZATION, auth=True, body=NEW_ORGANIZATION.schema,
        success=201, tag="organizations", creates="org",
    ),
    ("GET", "/api/1/organizations/{org}/"): Operation(
        "An organization, with its members (a deleted one only to its members)", ORGANIZATION, errors=(404, 410),
        tag="organizations",
    ),
    ("PUT", "/api/1/organizations/{org}/"): Operation(
        "Update an organization (admins; {\"deleted\": null} restores it)", ORGANIZATION, auth=True,
        body=ORGANIZATION_CHANGES.schema, errors=WRITE_ERRORS, tag="organizations",
    ),
    ("DELETE", "/api/1/organizations/{org}/"): Operation(
        "Delete an organization (admins; soft: 410 afterwards to non-members)", auth=True, success=204,
        errors=WRITE_ERRORS, tag="organizations",
    ),
    ("GET", "/api/2/organizations/{org}/extras/"): Operation(
        "An organization's extras", EXTRAS, errors=(404, 410), tag="organizations"
    ),
    ("PUT", "/api/2/organizations/{org}/extras/"): Operation(
        "Merge into an organization's extras (null deletes a key; admins)", EXTRAS, auth=True, body=EXTRAS_PATCH.schema,
        errors=WRITE_ERRORS, tag="organizations",
    ),
    ("DELETE", "/api/2/organizations/{org}/extras/"): Operation(
        "Delete organization extras keys (the body lists them; admins)", auth=True, body=extras_keys.schema,
        success=204, errors=WRITE_ERRORS, tag="organizations",
    ),
    ("GET", "/api/1/organizations/{org}/datasets/"): Operation(
        "An organization's datasets (private ones too for members)", ref("DatasetPage"), query=ORGANIZATION_DATASET_LISTING,
        errors=(404, 410), tag="organizations",
    ),
    ("GET", "/api/1/me/"): Operation("The caller's account", ref("Me"), auth=True, tag="me"),
    ("GET", "/api/1/me/api_tokens/"): Operation("The caller's API tokens", array(ref("ApiToken")), auth=True, tag="me"),
    ("POST", "/api/1/me/api_tokens/"): Operation(
        "Create an API token (shown once)", ref("NewApiToken"), auth=True, body=NEW_TOKEN.schema, body_required=False,
        success=201, tag="me", creates="token_id",
    ),
    ("DELETE", "/api/1/me/api_tokens/{token_id}/"): Operation(
        "Revoke an API token", auth=True, success=204, errors=(404,), tag="me"
    ),
    ("GET", "/api/1/me/webhooks/"): Operation("The caller's webhook subscriptions", array(ref("Webhook")), auth=True, tag="me"),
    ("POST", "/api/1/me/webhooks/"): Operation(
        "Subscribe a URL to a dataset's or an organization's publications: each is POSTed there, signed with "
        "the secret of this answer (shown once) in X-Dinum-Signature: sha256=<hex HMAC-SHA256 of the raw body>",
        ref("NewWebhook"), auth=True, body=NEW_WEBHOOK_SCHEMA, success=201, tag="me", creates="webhook_id",
    ),
    ("DELETE", "/api/1/me/webhooks/{webhook_id}/"): Operation(
        "Unsubscribe (pending deliveries are dropped)", auth=True, success=204, errors=(404,), tag="me"
    ),
    ("GET", "/api/1/me/webhooks/{webhook_id}/deliveries/"): Operation(
        "A subscription's deliveries, newest first, with every attempt", array(ref("WebhookDelivery")), auth=True,
        errors=(404,), tag="me",
    ),
    ("GET", "/api/2/datasets/resources/{rid}/"): Operation(
        "A resource by its id alone, with its dataset's id (udata v2)", ref("ResourceWithDatasetId"),
        errors=DATASET_READ_ERRORS,
    ),
    ("GET", "/api/2/datasets/{dataset}/extras/"): Operation("A dataset's extras", EXTRAS, errors=DATASET_READ_ERRORS),
    ("PUT", "/api/2/datasets/{dataset}/extras/"): Operation(
        "Merge into a dataset's extras (null deletes a key)", EXTRAS, auth=True, body=EXTRAS_PATCH.schema,
        errors=WRITE_ERRORS,
    ),
    ("DELETE", "/api/2/datasets/{dataset}/extras/"): Operation(
        "Delete extras keys (the body lists them)", auth=True, body=extras_keys.schema, success=204, errors=WRITE_ERRORS
    ),
    ("GET", "/api/2/datasets/{dataset}/resources/{rid}/extras/"): Operation(
        "A resource's extras", EXTRAS, errors=DATASET_READ_ERRORS
    ),
    ("PUT", "/api/2/datasets/{dataset}/resources/{rid}/extras/"): Operation(
        "Merge into a resource's extras (null deletes a key)", EXTRAS, auth=True, body=EXTRAS_PATCH.schema,
        errors=WRITE_ERRORS,
    ),
    ("DELETE", "/api/2/datasets/{dataset}/resources/{rid}/extras/"): Operation(
        "Delete resource extras keys (the body lists them)", auth=True, body=extras_keys.schema, success=204,
        errors=WRITE_ERRORS,
    ),
    ("GET", "/api/1/events/"): Operation(
        "The usage log of a time window, as CSV (sysadmins)", {**STRING, "description": "CSV, one event a line"},
        auth=True, query=EVENTS_WINDOW, errors=(403,), tag="metrics", response_type=CSV,
    ),
    ("PUT", "/api/1/metrics/"): Operation(
        "Replace the usage metrics: metric API tables and objects' metrics, all or nothing (sysadmins)",
        METRICS_PUSH_SUMMARY, auth=True, body=METRICS_PUSH_BODY, errors=(403, 409), tag="metrics",
    ),
}

PATH_PARAMETERS = {
    "dataset": "A dataset's id or slug",
    "rid": "A resource's id",
    "org": "An organization's id or slug",
    "token_id": "An API token's id",
    "webhook_id": "A webhook subscription's id",
}
ERROR_DESCRIPTIONS = {
    400: "Invalid request (the errors per field)",
    401: "No key where one is needed, or an invalid, revoked or expired key",
    403: "Not allowed (not a member of the owning organization, not an admin, not a sysadmin)",
    404: "Not found",
    409: "Conflict (nothing was changed)",
    410: "Deleted",
    415: "HTML content refused",
    500: "Unexpected error (a bug): its request id is in the log",
    503: "The database is unavailable: try again in a moment",
}
ERROR_SCHEMAS = {500: "ServerError", 503: "Unavailable"}  # the others answer udata's Error
SUCCESS_DESCRIPTIONS = {200: "OK", 201: "Created", 204: "No content", 302: "Redirect to the file"}
DESCRIPTION = """A udata-compatible catalog: same paths, fields and error bodies as data.gouv.fr's API.

Writes need an `X-API-KEY` header; a key that is sent must be valid, on reads too.
Every JSON answer honours udata's `X-Fields` header, a field mask such as `data{id,title},total`:
the answer then holds only the fields named (the schemas here describe the unmasked answers).
"""
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


def operation_id(method: str, path: str) -> str:
    return f"{method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', path)}".rstrip("_")


def path_parameters(path: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", path)


def _links(source_path: str, creates: str, operations: dict[str, list[str]]) -> Json:
    """Links from the answer of an operation that creates `creates` to every operation taking it
    whose other path parameters the source's own path has."""
    links: Json = {}
    for path, methods in operations.items():
        parameters = path_parameters(path)
        if creates not in parameters or not set(parameters) - {creates} <= set(path_parameters(source_path)):
            continue
        values = {name: "$response.body#/id" if name == creates else f"$request.path.{name}" for name in parameters}
        for method in methods:
            links[operation_id(method, path)] = {"operationId": operation_id(method, path), "parameters": values}
    return links


def _responses(operation: Operation, links: Json) -> Json:
    success: Json = {"description": SUCCESS_DESCRIPTIONS[operation.success]}
    if operation.response is not None:
        success["content"] = {operation.response_type: {"schema": operation.response}}
    if operation.success == 302:
        success["headers"] = {"Location": {"description": "The file's URL", "schema": STRING}}
    if links:
        success["links"] = links
    responses: Json = {str(operation.success): success}
    for status in sorted({*operation.errors, *ALWAYS_POSSIBLE}):
        schema = ref(ERROR_SCHEMAS.get(status, "Error"))
        responses[str(status)] = {"description": ERROR_DESCRIPTIONS[status], "content": {JSON: {"schema": schema}}}
    for status, description, schema in operation.answers:
        responses[str(status)] = {**responses.get(str(status), {}), "description": description, "content": {JSON: {"schema": schema}}}
    return responses


def _parameters(path: str, query: QueryString | None) -> list[Json]:
    parameters = [
        {"name": name, "in": "path", "required": True, "description": PATH_PARAMETERS[name], "schema": storable_strings(STRING)}
        for name in path_parameters(path)
    ]
    for parameter in query.parameters if query else ():
        documented: Json = {
            "name": parameter.name, "in": "query", "description": parameter.description, "schema": storable_strings(parameter.schema),
        }
        if parameter.required:
            documented["required"] = True
        if parameter.schema.get("type") == "array":
            documented.update(style="form", explode=True)  # tag=a&tag=b
        parameters.append(documented)
    return parameters


def _operation(method: str, path: str, operations: dict[str, list[str]]) -> Json:
    operation = OPERATIONS.get((method, path), Operation(UNDOCUMENTED, tag="undocumented"))
    links = _links(path, operation.creates, operations) if operation.creates else {}
    document: Json = {
        "summary": operation.summary,
        "operationId": operation_id(method, path),
        "tags": [operation.tag],
        "responses": _responses(operation, links),
    }
    parameters = _parameters(path, operation.query)
    if parameters:
        document["parameters"] = parameters
    if operation.body is not None:
        # A multipart upload's fields lose their control characters instead (uploads.py).
        schema = storable_strings(operation.body) if operation.body_type == JSON else operation.body
        document["requestBody"] = {"required": operation.body_required, "content": {operation.body_type: {"schema": schema}}}
    if operation.auth:
        document["security"] = [{"apiKey": []}]
    return document


def openapi_document(routes: Iterable[BaseRoute], server_url: str) -> Json:
    operations = api_operations(routes)
    paths = {
        path: {method.lower(): _operation(method, path, operations) for method in methods}
        for path, methods in operations.items()
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "dinum_pipelines catalog (udata API subset)", "version": "1", "description": DESCRIPTION},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-KEY"}},
            "schemas": {**SCHEMAS, **WEBHOOK_SCHEMAS, "Error": ERROR_BODY, "ServerError": SERVER_ERROR_BODY, "UploadStatus": UPLOAD_STATUS_BODY,
                        "ResourceVersion": VERSION_SCHEMA, "Unavailable": UNAVAILABLE_BODY, FREE_VALUE_COMPONENT: FREE_VALUE_SCHEMA},
        },
    }
