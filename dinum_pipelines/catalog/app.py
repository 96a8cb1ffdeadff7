"""The catalog's HTTP API: udata v1 paths, fields, status codes and error bodies.

The pipeline's publisher talks to this app with `requests` exactly as it would to
www.data.gouv.fr, only the base URL and the API key change, so every choice here follows udata
(see ../shared/research-udata-api.md §1). Handlers are plain functions run in a worker thread
(the storage layer is synchronous SQLAlchemy); only the upload handlers are async, because they
stream the request body to disk.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar
from urllib.parse import urlencode

import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from dinum_pipelines.catalog import table_index, tabular
from dinum_pipelines.catalog.call import Call
from dinum_pipelines.catalog.chunks import PART_RECEIVED, sweep_abandoned_parts
from dinum_pipelines.catalog.db import POOL_SIZE
from dinum_pipelines.catalog.dcat import catalog_rdf, dataset_rdf
from dinum_pipelines.catalog.documents import dumps, page_text, served
from dinum_pipelines.catalog.errors import (
    CatalogError,
    Forbidden,
    Gone,
    NotFound,
    field_error,
    server_error_body,
)
from dinum_pipelines.catalog.events import DATASET_VIEW, PERMALINK_MARK, RESOURCE_DOWNLOAD
from dinum_pipelines.catalog.files import safe_filename
from dinum_pipelines.catalog.listing import DatasetQuery
from dinum_pipelines.catalog.metrics_api import (
    SimulatedClock,
    export_events,
    metric_data,
    metric_data_csv,
    organization_metrics_of,
    push_metrics,
)
from dinum_pipelines.catalog.feeds import feed_routes
from dinum_pipelines.catalog import notifications
from dinum_pipelines.catalog.notifications import clean_new_webhook, dataset_update_event, delivery_document, webhook_document
from dinum_pipelines.catalog.webhooks import WebhookDeliverer, refuse_private_url
from dinum_pipelines.catalog.openapi import openapi_document
from dinum_pipelines.catalog.outages import OUTAGE_HANDLERS
from dinum_pipelines.catalog.pages import error_page, page_routes
from dinum_pipelines.catalog.public_address import PublicAddressMiddleware
from dinum_pipelines.catalog.render import (
    FREQUENCY_LIST,
    GRANULARITY_LIST,
    LICENSE_LIST,
    RESOURCE_TYPE_LIST,
    Renderer,
)
from dinum_pipelines.catalog.response_cache import (
    AnonymousCacheMiddleware,
    CachedAnswer,
    Usage,
    ResponseCache,
    SharedAnswers,
    anonymous_cache_key,
)
from dinum_pipelines.catalog.settings import CatalogSettings
from dinum_pipelines.catalog.store import CatalogStore
from dinum_pipelines.catalog.uploads import ReceivedFile, receive_upload
from dinum_pipelines.catalog.validation import (
    DATASET_LISTING,
    NEW_TOKEN,
    ORGANIZATION_DATASET_LISTING,
    UNSTORABLE,
    clean_dataset_changes,
    clean_new_dataset,
    clean_new_organization,
    clean_new_remote_resource,
    clean_organization_changes,
    clean_resource_changes,
    extras_keys,
    merge_extras,
    refuse_control_characters,
    resource_order,
)
from dinum_pipelines.catalog.validation_pages import validation_routes
from dinum_pipelines.catalog.versions import render_version
from dinum_pipelines.catalog.warm_up import warm_up as warm_up_worker
from dinum_pipelines.lib.publish.column_profile import PROFILE_EXTRA

# Handlers run in this many threads (anyio's default is 40): each holds a database connection
# (db.POOL_SIZE), and past ~16 more threads only add GIL contention (bench/README.md).
REQUEST_THREADS = POOL_SIZE - 2
# Requests whose time is CPU and short (the row API's pages, aggregations apart: DuckDB and the
# page's JSON; a dataset's GET) run this many at a time per process, the others waiting their
# turn on the event loop in order of arrival. Deployments run a process per core; two per process
# keep a core busy while one waits for the database. At 50 keyed clients on 10M rows, sharing the
# cores among 16 threads cost 10 ms of CPU a page against 6.1 with one at a time (GIL hand-offs,
# DuckDB's and SQLite's locks), and the same pages came back 1.5x slower (bench/README.md,
# bench_row_api.py).
COMPUTING_THREADS = 2
DATASET_DELETED = "Dataset has been deleted"
ORGANIZATION_NOT_FOUND = "Organization not found"
ORGANIZATION_DELETED = "Organization has been deleted"
T = TypeVar("T")
logger = logging.getLogger("dinum_pipelines.catalog")
REQUEST_ID_HEADER = "X-Request-Id"
Json = dict[str, Any]


class RefuseUnstorablePaths:
    """A path holding a control character or a lone surrogate names nothing the catalog can
    store: a 400 (JSON for the API, a page elsewhere) before any route reads it from a database."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and UNSTORABLE.search(scope["path"]):
            message = "The path cannot contain control characters (NUL and the like)."
            if scope["path"].startswith("/api/"):
                response: Response = JSONResponse({"errors": {"path": [message]}, "message": "Validation error"}, 400)
            else:
                response = error_page(400, "Cette adresse contient des caractères de contrôle.")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


Handler = Callable[[Call], Response]
AsyncHandler = Callable[[Call], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def _store(request: Request) -> CatalogStore:
    store: CatalogStore = request.app.state.store
    return store


def threaded(handler: Handler, *, computing: Callable[[Request], bool] | None = None) -> Endpoint:
    """An endpoint that reads the body, then runs `handler` in a worker thread; a request that is
    `computing` (its time is CPU, not waits, and short) only when one of the process's
    COMPUTING_THREADS is free, requests waiting their turn in order of arrival."""

    async def endpoint(request: Request) -> Response:
        refuse_control_characters(request.query_params.multi_items())
        body = b"" if request.method in ("GET", "HEAD") else await request.body()
        call = Call(request, body, _store(request))

        def run() -> Response:
            _ = call.user  # an invalid key fails every request, before anything else
            return handler(call)

        limiter = request.app.state.computing_limiter if computing is not None and computing(request) else None
        return await anyio.to_thread.run_sync(run, limiter=limiter)

    return endpoint


def streaming(handler: AsyncHandler) -> Endpoint:
    """An endpoint whose handler reads the body itself (uploads)."""

    async def endpoint(request: Request) -> Response:
        refuse_control_characters(request.query_params.multi_items())
        call = Call(request, b"", _store(request))
        await call.in_thread(lambda: call.user)
        return await handler(call)

    return endpoint


# Access rules


def can_edit(store: CatalogStore, user: Json | None, dataset: Json) -> bool:
    """Members (any role) of the dataset's organization, or its owner when it has no organization."""
    if user is None:
        return False
    if dataset["organization_id"]:
        return store.accounts.role(user["id"], dataset["organization_id"]) is not None
    return dataset["owner_id"] == user["id"]


def visible_dataset(call: Call, dataset_ref: str | None = None) -> Json:
    """The dataset of the path (or `dataset_ref`), as udata shows it: its editors see it whatever
    its state (a deleted one with `deleted` set, so that they can restore it); others get 404 for
    a private one and 410 for a deleted one."""
    dataset = call.store.datasets.require(dataset_ref or call.params["dataset"])
    refuse_hidden_dataset(call, dataset)
    return dataset


def refuse_hidden_dataset(call: Call, dataset: Json) -> None:
    """404 for a private dataset, 410 for a deleted one, unless the caller may edit it."""
    if not can_edit(call.store, call.user, dataset):
        if dataset["private"]:
            raise NotFound("Dataset not found")
        if dataset["deleted"]:
            raise Gone(DATASET_DELETED)


def editable_dataset(call: Call, *, restoring: bool = False) -> Json:
    """The dataset of the path, if the caller may modify it (udata's order: 404, 401, 410, 403).
    A deleted dataset is 410 to every write except its restoration."""
    dataset = call.store.datasets.require(call.params["dataset"])
    user = call.require_user()
    if dataset["deleted"] and not restoring:
        raise Gone(DATASET_DELETED)
    if not can_edit(call.store, user, dataset):
        raise Forbidden()
    return dataset


def asks_restoration(payload: Any) -> bool:
    """udata's `{"deleted": null}` in a PUT: restore the deleted dataset or organization."""
    return isinstance(payload, dict) and "deleted" in payload and payload["deleted"] is None


def refuse_deletion_by_put(payload: Any) -> None:
    if isinstance(payload, dict) and payload.get("deleted") is not None:
        raise field_error("deleted", "Only null is accepted here (it restores a deleted object); delete with DELETE.")


def organization_id_for(call: Call, reference: str) -> str:
    """The id of an organization the caller belongs to (udata's "publish as" rule)."""
    org = call.store.accounts.organization(reference)
    if org is None or org["deleted_at"] is not None:
        raise field_error("organization", f"Unknown organization '{reference}'.")
    if call.store.accounts.role(call.require_user()["id"], org["id"]) is None:
        raise field_error("organization", "Permission denied for this organization")
    organization_id: str = org["id"]
    return organization_id


def dataset_page(call: Call, query: DatasetQuery) -> Response:
    """A page of datasets, from their stored documents where they have them (documents.py)."""
    items, total = call.store.datasets.search_documents(query)
    base_url = call.render.base_url
    bodies = [served(item, base_url) if isinstance(item, str) else dumps(call.render.dataset(item)) for item in items]
    return call.respond_text(page_text(bodies, total=total, page=query.page, page_size=query.page_size, page_url=call.page_url))


def download_channel(request: Request) -> str:
    """`web` for browsers, `api` for programs (scripts, pipelines, curl): what the metrics split on."""
    return "web" if request.headers.get("user-agent", "").startswith("Mozilla/") else "api"


# Datasets


def cached_for_anonymous(call: Call, handler: Callable[[Call], tuple[Response, Usage | None]]) -> Response:
    """`handler`'s answer, kept in the per-process cache for anonymous callers (response_cache.py).

    Only 200 answers are kept, with the usage the answer records (the handler's second value: a
    dataset GET's view, a row-API page's download): repeats are answered by
    AnonymousCacheMiddleware, and counted. Callers asking for the same answer while it is
    computed wait for it rather than compute it again.
    """
    key = anonymous_cache_key(call.request.scope, call.store.db.fresh_data_version)
    if key is None:
        return handler(call)[0]
    cache: ResponseCache = call.request.app.state.response_cache
    with cache.single_flight(key):
        answer = cache.get(key)
        if answer is not None:  # computed by the caller we waited for
            count_cached_use(call.store, answer, call.request.scope)
            return Response(answer.body, media_type="application/json")
        response, usage = handler(call)
        if response.status_code == 200:
            cache.put(key, CachedAnswer(bytes(response.body), usage))
        return response


def record_usage(store: CatalogStore, usage: Usage, user_agent: str | None) -> None:
    store.events.record(
        usage.kind, channel=usage.channel, user_agent=user_agent, dataset_id=usage.dataset_id, resource_id=usage.resource_id,
    )


def count_cached_use(store: CatalogStore, answer: CachedAnswer, scope: Scope) -> None:
    """The usage an answer served from the cache still is."""
    if answer.usage is not None:
        record_usage(store, answer.usage, Headers(scope=scope).get("user-agent"))


def list_datasets(call: Call) -> Response:
    return cached_for_anonymous(call, lambda c: (_list_datasets(c), None))


def _list_datasets(call: Call) -> Response:
    query = DATASET_LISTING.read(call.query)  # the parameters the OpenAPI document lists
    organization = query["organization"]
    org = call.store.accounts.organization(organization) if organization else None
    return dataset_page(
        call,
        DatasetQuery(
            **deleted_filter(call, query["deleted"]),
            q=query["q"],
            organization_id=org["id"] if org else organization,  # an unknown one matches nothing
            tags=query["tag"],
            license=query["license"],
            format=query["format"],
            sort=query["sort"],
            page=query["page"],
            page_size=query["page_size"],
        ),
    )


def deleted_filter(call: Call, deleted: bool | None) -> Json:
    """udata's `deleted` listing filter: authenticated callers only (401 otherwise); `true` lists
    the deleted datasets the caller may edit (so that they can restore them), `false` the usual."""
    if deleted is None:
        return {}
    user = call.require_user()
    if not deleted:
        return {}
    organization_ids = tuple(org["id"] for org in call.store.accounts.organizations_of(user["id"]))
    return {"deleted": True, "editable_by": (user["id"], organization_ids)}


def create_dataset(call: Call) -> Response:
    user = call.require_user()
    fields = clean_new_dataset(call.json())
    reference = fields.pop("organization", None)
    organization_id = organization_id_for(call, reference) if reference else None
    record = call.store.datasets.create(
        fields, owner_id=None if organization_id else user["id"], organization_id=organization_id,
        notify=call.store.notifications.publication(call.render, notifications.DATASET_CREATED),
    )
    return call.respond(call.render.dataset(record), 201)


def get_dataset(call: Call) -> Response:
    return cached_for_anonymous(call, _get_dataset)


def _get_dataset(call: Call) -> tuple[Response, Usage]:
    """An API read of a dataset is a view on the "api" channel, whether cached or not. Its stored
    document is sent when it has one that holds (documents.py); otherwise it is rendered."""
    stored = call.store.datasets.get_document(call.params["dataset"])
    if stored is not None:
        dataset, body = stored
        refuse_hidden_dataset(call, dataset)
    else:
        dataset = visible_dataset(call)
    usage = Usage(DATASET_VIEW, "api", dataset["id"])
    if call.request.method == "GET":
        record_usage(call.store, usage, call.user_agent)
    if stored is not None:
        return call.respond_text(served(body, call.render.base_url)), usage
    return call.respond(call.render.dataset(dataset)), usage


def update_dataset(call: Call) -> Response:
    """A partial update; `{"deleted": null}` restores a deleted dataset (with the other changes of
    the body, in the same transaction), as in udata. Deleting is DELETE's job."""
    payload = call.json()
    dataset = editable_dataset(call, restoring=asks_restoration(payload))
    refuse_deletion_by_put(payload)
    changes = clean_dataset_changes(payload)
    reference = changes.pop("organization", None)
    if reference is not None and organization_id_for(call, reference) != dataset["organization_id"]:
        raise field_error("organization", "The organization of a dataset cannot be changed; transfer it instead.")
    published = call.store.notifications.publication(call.render, lambda changed: dataset_update_event(dataset, changed))
    record, _changed = call.store.datasets.update(dataset["id"], changes, restore=asks_restoration(payload), notify=published)
    return call.respond(call.render.dataset(record))


def delete_dataset(call: Call) -> Response:
    dataset = editable_dataset(call)
    call.store.datasets.soft_delete(
        dataset["id"], notify=call.store.notifications.publication(call.render, notifications.DATASET_DELETED)
    )
    return Response(status_code=204)


# Resources


def get_resource(call: Call) -> Response:
    dataset = visible_dataset(call)
    return call.respond(call.render.resource(call.store.datasets.resource_of(dataset["id"], call.params["rid"])))


def create_remote_resource(call: Call) -> Response:
    dataset = editable_dataset(call)
    record = call.store.datasets.add_resource(
        dataset["id"], clean_new_remote_resource(call.json()),
        notify=call.store.notifications.publication(call.render, notifications.RESOURCE_CREATED),
    )
    return call.respond(call.render.resource(record), 201)


def reorder_resources(call: Call) -> Response:
    dataset = editable_dataset(call)
    records = call.store.datasets.reorder_resources(dataset["id"], resource_order(call.json()))
    return call.respond([call.render.resource(record) for record in records])


def update_resource(call: Call) -> Response:
    dataset = editable_dataset(call)
    resource = call.store.datasets.resource_of(dataset["id"], call.params["rid"])
    record, _changed = call.store.datasets.update_resource(
        resource["id"], clean_resource_changes(call.json(), resource),
        notify=call.store.notifications.publication(call.render, notifications.RESOURCE_UPDATED),  # a new URL only
    )
    return call.respond(call.render.resource(record))


def delete_resource(call: Call) -> Response:
    dataset = editable_dataset(call)
    resource = call.store.datasets.resource_of(dataset["id"], call.params["rid"])
    for file_key in call.store.datasets.delete_resource(resource["id"]):
        table_index.remove(call.store.files.path(file_key))
        call.store.files.delete(file_key)
    return Response(status_code=204)


async def _stored_upload(call: Call, dataset_id: str, save: Callable[[ReceivedFile], Json]) -> Json | None:
    """Receive the file, then `save` it in the database; the file is dropped if saving fails.
    None: the request was one part of a chunked upload, stored until the final request."""
    received = await receive_upload(call.request, call.store.files, dataset_id)
    if received is None:
        return None
    try:
        return await call.in_thread(save, received)
    except BaseException:
        await call.in_thread(call.store.files.delete, received.stored.key)
        raise


async def upload_resource(call: Call) -> Response:
    dataset = await call.in_thread(editable_dataset, call)

    def save(received: ReceivedFile) -> Json:
        fields = {"title": received.filename, "description": None, "type": "main", "extras": {}, **received.resource_fields()}
        return call.store.datasets.add_resource(
            dataset["id"], fields, file_key=received.stored.key,
            notify=call.store.notifications.publication(call.render, notifications.RESOURCE_CREATED),
        )

    record = await _stored_upload(call, dataset["id"], save)
    if record is None:
        return call.respond(PART_RECEIVED)
    _index_table(call, record)
    return call.respond({**call.render.resource(record), "success": True}, 201)


async def reupload_resource(call: Call) -> Response:
    """Replace a resource's file: same id, new URL and checksum; the old file stays, an earlier version (versions.py)."""

    def editable_resource() -> Json:
        return call.store.datasets.resource_of(editable_dataset(call)["id"], call.params["rid"])

    resource = await call.in_thread(editable_resource)

    def save(received: ReceivedFile) -> Json:
        return call.store.datasets.replace_file(
            resource["id"], received.stored.key, received.resource_fields(),
            notify=call.store.notifications.publication(call.render, notifications.RESOURCE_UPDATED),
        )

    record = await _stored_upload(call, resource["dataset_id"], save)
    if record is None:
        return call.respond(PART_RECEIVED)
    _index_table(call, record, replaced=resource)
    return call.respond({**call.render.resource(record), "success": True})


def _index_table(call: Call, record: Json, *, replaced: Json | None = None) -> None:
    """A published Parquet gets its row index, built in the background (table_index.py); the
    file it replaces loses its own."""
    if replaced is not None and tabular.is_parquet(replaced):
        table_index.remove(call.store.files.path(replaced["file_key"]))
    if tabular.is_parquet(record):
        table_index.published(call.store.files.path(record["file_key"]))


def resource_without_dataset(call: Call) -> Response:
    """`/api/2/datasets/resources/{rid}/`: a resource found by its id alone, with its dataset's id
    (udata's v2; datagouv-client's `Resource` reads it), under the dataset's visibility rules."""
    resource = call.store.datasets.resource(call.params["rid"])
    if resource is None:
        raise NotFound("Resource not found")
    visible_dataset(call, resource["dataset_id"])
    return call.respond({"resource": call.render.resource(resource), "dataset_id": resource["dataset_id"]})


def create_organization(call: Call) -> Response:
    """`POST /api/1/organizations/`: the caller creates an organization and becomes its admin."""
    user = call.require_user()
    fields = clean_new_organization(call.json())
    org = call.store.accounts.create_organization(
        None, fields.pop("name"), **{**fields, "description": fields.get("description") or ""}
    )
    call.store.accounts.set_member(org["id"], user["id"], "admin")
    return call.respond(organization_document(call, org), 201)


def resource_permalink(call: Call) -> Response:
    """`/datasets/r/{rid}`: the stable URL, redirecting to wherever the file currently is."""
    resource = call.store.datasets.resource(call.params["rid"])
    if resource is None:
        raise NotFound("Resource not found")
    target = call.render.resource_target(resource)
    if resource.get("file_key"):
        # Counted once, by serve_file, on the permalink channel (see events.py).
        target = f"{target}?{urlencode([PERMALINK_MARK])}"
    elif call.request.method == "GET":
        call.store.events.record(
            RESOURCE_DOWNLOAD, channel="permalink", user_agent=call.user_agent,
            dataset_id=resource["dataset_id"], resource_id=resource["id"],
        )
    return RedirectResponse(target, status_code=302)


def starts_the_file(range_header: str | None) -> bool:
    """Whether a GET is a download to count: a whole file, or a range from its first byte. HTTP
    Range requests (answered by FileResponse, or nginx) let DuckDB, Polars or pyarrow read a
    Parquet file's footer and only the row groups a query needs; one query makes many such
    requests, none of which is a download, and a resumed download is the same download."""
    if range_header is None:
        return True
    first = range_header.partition("=")[2].split(",")[0].strip()
    return first.startswith("0-") or first == "0"


def serve_file(call: Call) -> Response:
    """A hosted file (a resource's `url`). Only keys of current resources are served, so replaced
    files and half-written uploads never are."""
    resource = call.store.datasets.resource_by_file_key(call.params["key"])
    path = call.store.files.path(resource["file_key"]) if resource else None
    if resource is None or path is None or not path.is_file():
        raise NotFound("File not found")
    if call.request.method == "GET" and starts_the_file(call.request.headers.get("range")):
        via_permalink = call.query.get(PERMALINK_MARK[0]) == PERMALINK_MARK[1]
        call.store.events.record(
            RESOURCE_DOWNLOAD, channel="permalink" if via_permalink else download_channel(call.request),
            user_agent=call.user_agent,
            dataset_id=resource["dataset_id"], resource_id=resource["id"],
        )
    return call.store.files.response(resource["file_key"], media_type=resource.get("mime") or None)


def resource_versions(call: Call) -> Response:
    """A resource's versions, newest first, under its dataset's visibility (versions.py)."""
    dataset = visible_dataset(call)
    resource = call.store.datasets.resource_of(dataset["id"], call.params["rid"])
    rows = call.store.versions.of_resource(resource)
    return call.respond([render_version(call.render.base_url, resource, row) for row in rows])


def serve_version(call: Call) -> Response:
    """`/datasets/r/{rid}/versions/{n}`: a version's file, at a URL later publications leave
    working; counted as a download of the resource, as its other URLs are."""
    resource = call.store.datasets.resource(call.params["rid"])
    if resource is None:
        raise NotFound("Resource not found")
    visible_dataset(call, resource["dataset_id"])
    row = call.store.versions.version(resource, call.params["number"])
    if row is None or not call.store.files.path(row["file_key"]).is_file():
        raise NotFound("Version not found")
    if call.request.method == "GET" and starts_the_file(call.request.headers.get("range")):
        call.store.events.record(
            RESOURCE_DOWNLOAD, channel=download_channel(call.request), user_agent=call.user_agent,
            dataset_id=resource["dataset_id"], resource_id=resource["id"],
        )
    return call.store.files.response(row["file_key"], media_type=row["mime"] or None)


def _table_file(call: Call) -> tuple[Json, Path]:
    """The Parquet file serving the path's resource: its own file if it is Parquet; for another
    hosted file (the pipeline's CSV), the Parquet of the same dataset with the same stem. NotFound
    when there is none, or when the resource's dataset is not visible to the caller. Found once
    per data version and caller (db.VersionedReads): a row-API page's lookups are one query."""
    user = call.user
    key = ("table-file", call.params["rid"], user["id"] if user else None)
    return call.store.db.reads.get(call.data_version, key, lambda: _find_table_file(call))


def _find_table_file(call: Call) -> tuple[Json, Path]:
    resource = call.store.datasets.resource(call.params["rid"])
    if resource is None or not resource.get("file_key"):
        raise NotFound("Resource not found")
    dataset = visible_dataset(call, resource["dataset_id"])
    table = tabular.table_of(resource, dataset["resources"])
    if table is not None and (path := call.store.files.path(table["file_key"])).is_file():
        return resource, path
    raise NotFound("No tabular data for this resource: it has no Parquet file")


def _tabular_resource(call: Call) -> tuple[Json, Path, Usage]:
    """The resource and its Parquet for the row API; each call is one use of the data, counted
    on the "tabular" channel (api-tabular's traffic is data.gouv.fr's too)."""
    resource, path = _table_file(call)
    usage = Usage(RESOURCE_DOWNLOAD, "tabular", resource["dataset_id"], resource["id"])
    record_usage(call.store, usage, call.user_agent)
    return resource, path, usage


def _not_found(exc: NotFound | Gone) -> Response:
    return JSONResponse({"message": exc.message, "status": 404}, 404)


def _bounded_page(request: Request) -> bool:
    """A page whose work does not grow with the table: any but an aggregation, which reads every
    matching row (seconds at 10M rows) and would hold a computing slot meanwhile, so it shares the
    cores with the other requests instead."""
    return not tabular.aggregates(request.query_params.multi_items())


def resource_rows(call: Call) -> Response:
    """`/api/resources/{rid}/data/`: api-tabular's row API over the resource's Parquet (tabular.py),
    anonymous pages kept in the response cache. Errors in udata's body with the status (404),
    api-tabular's (400)."""
    return cached_for_anonymous(call, _resource_rows)


def _resource_rows(call: Call) -> tuple[Response, Usage | None]:
    try:
        resource, path, usage = _tabular_resource(call)
    except (NotFound, Gone) as exc:
        return _not_found(exc), None
    query, data, total = tabular.rows(path, call.query.multi_items())
    base = f"{call.render.base_url}/api/resources/{resource['id']}"
    last_page = query.page * query.page_size >= total
    return call.respond({
        "data": data,
        "links": {
            "profile": f"{base}/profile/",
            "swagger": f"{base}/swagger/",
            "next": None if last_page else call.page_url(query.page + 1),
            "prev": call.page_url(query.page - 1) if query.page > 1 else None,
        },
        "meta": {"page": query.page, "page_size": query.page_size, "total": total},
    }), usage


def _resource_export(call: Call, fmt: str) -> Response:
    """`/data/csv/` and `/data/json/`: the whole selection, streamed (tabular.Export)."""
    try:
        resource, path, _usage = _tabular_resource(call)
    except (NotFound, Gone) as exc:
        return _not_found(exc)
    selection = tabular.export(path, call.query.multi_items())
    filename = safe_filename(f"{PurePosixPath(resource.get('title') or resource['id']).stem}-selection.{fmt}")
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if fmt == "csv":
        return StreamingResponse(selection.csv_chunks(), media_type="text/csv; charset=utf-8", headers=headers)
    return StreamingResponse(selection.json_chunks(), media_type="application/json", headers=headers)


def resource_rows_csv(call: Call) -> Response:
    return _resource_export(call, "csv")


def resource_rows_json(call: Call) -> Response:
    return _resource_export(call, "json")


def resource_swagger(call: Call) -> Response:
    """`/api/resources/{rid}/swagger/`: this resource's columns, types and operators (OpenAPI 3)."""
    try:
        resource, path = _table_file(call)
    except (NotFound, Gone) as exc:
        return _not_found(exc)
    return JSONResponse(tabular.swagger(path, resource["id"], call.render.base_url))


def resource_profile(call: Call) -> Response:
    """`/api/resources/{rid}/profile/`: the column profile the pipeline computed at publication
    (the `dinum:profile` extra, csv-detective's shape), as api-tabular's profile endpoint."""
    try:
        resource, _path = _table_file(call)
    except (NotFound, Gone) as exc:
        return _not_found(exc)
    profile = (resource.get("extras") or {}).get(PROFILE_EXTRA)
    if profile is None:
        return JSONResponse({"message": "No profile was published for this resource", "status": 404}, 404)
    return JSONResponse({"profile": profile, "dataset_id": resource["dataset_id"], "indexes": None})


# Extras (v2): merged, never replaced, and no clock moves (hydra-style reports are not data changes).


def _dataset_extras(call: Call, update: Callable[[Json], Json] | None) -> Response:
    dataset = editable_dataset(call) if update else visible_dataset(call)
    if update is None:
        return call.respond(dataset.get("extras") or {})
    return call.respond(call.store.datasets.transform_doc_field(dataset["id"], "extras", lambda current: update(current or {})))


def _resource_extras(call: Call, update: Callable[[Json], Json] | None) -> Response:
    dataset = editable_dataset(call) if update else visible_dataset(call)
    resource = call.store.datasets.resource_of(dataset["id"], call.params["rid"])
    if update is None:
        return call.respond(resource.get("extras") or {})
    return call.respond(
        call.store.datasets.transform_resource_doc_field(resource["id"], "extras", lambda current: update(current or {}))
    )


def _extras_handlers(apply: Callable[[Call, Callable[[Json], Json] | None], Response]) -> dict[str, Handler]:
    """GET returns the extras, PUT merges a dict (null deletes a key), DELETE removes a list of keys."""

    def put(call: Call) -> Response:
        patch = call.json()
        return apply(call, lambda current: merge_extras(current, patch))

    def remove(call: Call) -> Response:
        keys = extras_keys(call.json())
        apply(call, lambda current: merge_extras(current, dict.fromkeys(keys)))
        return Response(status_code=204)

    return {"GET": lambda call: apply(call, None), "PUT": put, "DELETE": remove}


# Organizations and the caller


def _organization(call: Call) -> Json:
    """The organization of the path, as udata shows it: a deleted one only to its members."""
    org = call.store.accounts.organization(call.params["org"])
    if org is None:
        raise NotFound(ORGANIZATION_NOT_FOUND)
    if org["deleted_at"] is not None and not (call.user and call.store.accounts.role(call.user["id"], org["id"])):
        raise Gone(ORGANIZATION_DELETED)
    return org


def editable_organization(call: Call, *, restoring: bool = False) -> Json:
    """The organization of the path, if the caller is one of its admins (udata: 404, 401, 410, 403)."""
    org = call.store.accounts.organization(call.params["org"])
    if org is None:
        raise NotFound(ORGANIZATION_NOT_FOUND)
    user = call.require_user()
    if org["deleted_at"] is not None and not restoring:
        raise Gone(ORGANIZATION_DELETED)
    if call.store.accounts.role(user["id"], org["id"]) != "admin":
        raise Forbidden()
    return org


def organization_document(call: Call, org: Json) -> Json:
    _, dataset_count = call.store.datasets.search(DatasetQuery(organization_id=org["id"], page_size=1))
    members = call.store.accounts.members_of(org["id"])
    org = {**org, "metrics": organization_metrics_of(call.store, org["id"])}
    return call.render.organization(org, members=members, dataset_count=dataset_count)


def get_organization(call: Call) -> Response:
    return call.respond(organization_document(call, _organization(call)))


def update_organization(call: Call) -> Response:
    """A partial update by an admin; `{"deleted": null}` restores a deleted organization."""
    payload = call.json()
    org = editable_organization(call, restoring=asks_restoration(payload))
    refuse_deletion_by_put(payload)
    changes = clean_organization_changes(payload)
    org = call.store.accounts.update_organization(org["id"], changes, restore=asks_restoration(payload))
    call.request.app.state.document_filler.wake()  # its datasets' documents, if it was renamed
    return call.respond(organization_document(call, org))


def delete_organization(call: Call) -> Response:
    org = editable_organization(call)
    call.store.accounts.soft_delete_organization(org["id"])
    return Response(status_code=204)


def _organization_extras(call: Call, update: Callable[[Json], Json] | None) -> Response:
    org = editable_organization(call) if update else _organization(call)
    if update is None:
        return call.respond(org.get("extras") or {})
    return call.respond(call.store.accounts.transform_organization_extras(org["id"], update))


def organization_datasets(call: Call) -> Response:
    org = _organization(call)
    listing = ORGANIZATION_DATASET_LISTING.read(call.query)  # the parameters the OpenAPI document lists
    is_member = call.user is not None and call.store.accounts.role(call.user["id"], org["id"]) is not None
    query = DatasetQuery(
        organization_id=org["id"], sort=listing["sort"],
        page=listing["page"], page_size=listing["page_size"], include_private=is_member,
    )
    return dataset_page(call, query)


def me(call: Call) -> Response:
    user = call.require_user()
    return call.respond(call.render.me(user, call.store.accounts.organizations_of(user["id"])))


def list_tokens(call: Call) -> Response:
    tokens = call.store.accounts.tokens_of(call.require_user()["id"])
    return call.respond([Renderer.api_token(token) for token in tokens])


def create_token(call: Call) -> Response:
    user = call.require_user()
    fields = NEW_TOKEN.clean(call.json() if call.body else {})  # the body is optional; if sent, an object
    plain, record = call.store.accounts.create_token(user["id"], fields.get("name") or "", expires_at=fields.get("expires_at"))
    return call.respond(Renderer.api_token(record, plain=plain), 201)


def revoke_token(call: Call) -> Response:
    call.store.accounts.revoke_token(call.params["token_id"], user_id=call.require_user()["id"])
    return Response(status_code=204)


# Webhook subscriptions (notifications.py; webhooks.py delivers)


def list_webhooks(call: Call) -> Response:
    rows = call.store.notifications.subscriptions(call.require_user()["id"])
    return call.respond([webhook_document(call.render, row) for row in rows])


def create_webhook(call: Call) -> Response:
    """Subscribe to a dataset or an organization the caller may see; the secret is in this answer only."""
    user = call.require_user()
    url, kind, reference = clean_new_webhook(call.json())
    target_id = _subscribable(call, kind, reference)
    if not call.store.settings.fetch_private_urls:
        refuse_private_url(url)
    row, secret = call.store.notifications.subscribe(user["id"], url, **{f"{kind}_id": target_id})
    return call.respond(webhook_document(call.render, row, secret=secret), 201)


def _subscribable(call: Call, kind: str, reference: str) -> str:
    """The id of the dataset or organization named, if the caller may see it (a private dataset:
    its editors only); a 400 naming the field otherwise, the same whether it exists or not."""
    if kind == "dataset":
        dataset = call.store.datasets.get(reference)
        if dataset and not dataset["deleted"] and (not dataset["private"] or can_edit(call.store, call.user, dataset)):
            return str(dataset["id"])
    else:
        org = call.store.accounts.organization(reference)
        if org and org["deleted_at"] is None:
            return str(org["id"])
    raise field_error(kind, f"Unknown {kind} '{reference}'.")


def delete_webhook(call: Call) -> Response:
    call.store.notifications.unsubscribe(call.require_user()["id"], call.params["webhook_id"])
    return Response(status_code=204)


def list_webhook_deliveries(call: Call) -> Response:
    rows = call.store.notifications.deliveries(call.require_user()["id"], call.params["webhook_id"])
    return call.respond([delivery_document(row) for row in rows])


# Reference lists (udata's shapes)


def _static(data: Any) -> Handler:
    return lambda call: call.respond(data)


def swagger(call: Call) -> Response:
    """The OpenAPI document, generated from the routes this app really has."""
    return call.respond(openapi_document(call.request.app.routes, call.render.base_url))


# Routing


def _route(
    path: str, handlers: Mapping[str, Handler] | None = None, *, stream: Mapping[str, AsyncHandler] | None = None,
    computing: Callable[[Request], bool] | None = None,
) -> list[BaseRoute]:
    """One path, one handler per method; registered with and without the trailing slash."""
    endpoints: dict[str, Endpoint] = {method: threaded(handler, computing=computing) for method, handler in (handlers or {}).items()}
    endpoints.update({method: streaming(handler) for method, handler in (stream or {}).items()})

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await endpoints[method](request)

    paths = [path, path.rstrip("/")] if path.endswith("/") else [path, f"{path}/"]
    return [Route(variant, dispatch, methods=list(endpoints)) for variant in paths]


def _read(request: Request) -> bool:
    """A dataset's GET: CPU work, about a millisecond. At 100,000 datasets with 50 clients, first
    answers computed in every request thread at once kept the event loop from the cached ones:
    p99 49-57 ms, 28-38 ms two at a time (bench/README.md). Its writes wait for the database's
    write lock instead. Listings stay in the request threads: a first one may wait tens of ms for
    another worker computing it (SharedAnswers), which would hold a slot meanwhile."""
    return request.method == "GET"


def routes() -> list[BaseRoute]:
    v1, v2 = "/api/1", "/api/2"
    dataset = f"{v1}/datasets/{{dataset}}"
    resource = f"{dataset}/resources/{{rid}}"
    table: list[list[BaseRoute]] = [
        # Fixed paths first: they would otherwise match `/datasets/{dataset}/`.
        _route(f"{v1}/swagger.json", {"GET": swagger}),
        _route(f"{v1}/datasets/", {"GET": list_datasets, "POST": create_dataset}),
        _route(f"{v1}/datasets/licenses/", {"GET": _static(LICENSE_LIST)}),
        _route(f"{v1}/datasets/frequencies/", {"GET": _static(FREQUENCY_LIST)}),
        _route(f"{v1}/datasets/resource_types/", {"GET": _static(RESOURCE_TYPE_LIST)}),
        _route(f"{v1}/spatial/granularities/", {"GET": _static(GRANULARITY_LIST)}),
        _route(f"{v1}/datasets/r/{{rid}}", {"GET": resource_permalink}),
        _route(f"{dataset}/", {"GET": get_dataset, "PUT": update_dataset, "DELETE": delete_dataset}, computing=_read),
        _route(f"{dataset}/upload/", stream={"POST": upload_resource}),
        _route(f"{dataset}/resources/", {"POST": create_remote_resource, "PUT": reorder_resources}),
        _route(f"{resource}/", {"GET": get_resource, "PUT": update_resource, "DELETE": delete_resource}),
        _route(f"{resource}/upload/", stream={"POST": reupload_resource}),
        _route(f"{resource}/versions/", {"GET": resource_versions}),
        [Route("/datasets/r/{rid}/versions/{number:int}", threaded(serve_version), methods=["GET"])],
        _route(f"{v1}/organizations/", {"POST": create_organization}),
        _route(f"{v1}/organizations/{{org}}/", {"GET": get_organization, "PUT": update_organization, "DELETE": delete_organization}),
        _route(f"{v1}/organizations/{{org}}/datasets/", {"GET": organization_datasets}),
        _route(f"{v1}/me/", {"GET": me}),
        _route(f"{v1}/me/api_tokens/", {"GET": list_tokens, "POST": create_token}),
        _route(f"{v1}/me/api_tokens/{{token_id}}/", {"DELETE": revoke_token}),
        _route(f"{v1}/me/webhooks/", {"GET": list_webhooks, "POST": create_webhook}),
        _route(f"{v1}/me/webhooks/{{webhook_id}}/", {"DELETE": delete_webhook}),
        _route(f"{v1}/me/webhooks/{{webhook_id}}/deliveries/", {"GET": list_webhook_deliveries}),
        _route(f"{v2}/datasets/resources/{{rid}}/", {"GET": resource_without_dataset}),
        _route(f"{v2}/datasets/{{dataset}}/extras/", _extras_handlers(_dataset_extras)),
        _route(f"{v2}/datasets/{{dataset}}/resources/{{rid}}/extras/", _extras_handlers(_resource_extras)),
        _route(f"{v2}/organizations/{{org}}/extras/", _extras_handlers(_organization_extras)),
        [Route("/resources/{key:path}", threaded(serve_file), methods=["GET"])],
        page_routes(),
        feed_routes(),  # the Atom feeds (feeds.py)
        validation_routes(),
        # The DCAT-AP export (dcat.py), at udata's paths: the catalog, and each dataset.
        [Route(path, threaded(handler), methods=["GET"]) for path, handler in (
            ("/catalog", catalog_rdf), ("/catalog.{format}", catalog_rdf),
            ("/datasets/{dataset}/rdf", dataset_rdf), ("/datasets/{dataset}/rdf.{format}", dataset_rdf),
        )],
        # Usage metrics (metrics_api.py): the log export, the pipeline's push, the metric API.
        _route(f"{v1}/events/", {"GET": export_events}),
        _route(f"{v1}/metrics/", {"PUT": push_metrics}),
        # The row API over each published table's Parquet (tabular.py), at api-tabular's path.
        _route("/api/resources/{rid}/data/", {"GET": resource_rows}, computing=_bounded_page),
        _route("/api/resources/{rid}/data/csv/", {"GET": resource_rows_csv}),
        _route("/api/resources/{rid}/data/json/", {"GET": resource_rows_json}),
        _route("/api/resources/{rid}/swagger/", {"GET": resource_swagger}),
        _route("/api/resources/{rid}/profile/", {"GET": resource_profile}),
        _route("/api/{model}/data/", {"GET": metric_data}),
        _route("/api/{model}/data/csv/", {"GET": metric_data_csv}),
    ]
    return [route for group in table for route in group]


async def _catalog_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CatalogError)
    return JSONResponse(exc.body(), exc.status)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"message": exc.detail}, exc.status_code, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    """Any other exception: a 500 with udata's JSON body (an HTML page for the pages) and a request
    id that the log line carries too, so that an operator finds the traceback a user reports."""
    request_id = uuid.uuid4().hex
    logger.error("request %s: %s %s failed", request_id, request.method, request.url.path, exc_info=exc)
    headers = {REQUEST_ID_HEADER: request_id}
    if not request.url.path.startswith("/api/"):
        return error_page(500, "Une erreur inattendue s'est produite.", request_id, headers)
    return JSONResponse(server_error_body(request_id), 500, headers=headers)


class DocumentFiller:
    """A thread that stores the datasets' missing documents (documents.py): when the catalog
    starts (after a migration or a bulk load), and when woken after a change that drops many
    (an organization renamed, a metrics push). Until then those datasets are rendered when read."""

    def __init__(self, store: CatalogStore) -> None:
        self._store = store
        self._woken, self._stopping = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="documents", daemon=True)
        self._woken.set()

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._woken.set()

    def stop(self) -> None:
        self._stopping.set()
        self._woken.set()
        self._thread.join()

    def _run(self) -> None:
        while self._woken.wait() and not self._stopping.is_set():
            self._woken.clear()
            try:
                stored = self._store.datasets.store_missing_documents(stopping=self._stopping)
            except Exception:
                logger.exception("storing the datasets' missing documents failed; those datasets are rendered when read")
            else:
                if stored:
                    logger.info("stored the documents of %d datasets", stored)


def create_app(settings: CatalogSettings, *, store: CatalogStore | None = None, warm_up: bool = False) -> Starlette:
    """The catalog as an ASGI app. It opens (and closes) its own store unless one is given. With
    `warm_up`, it opens its connections and compiles its common statements before it serves
    (warm_up.py: `serve`'s workers)."""
    owns_store = store is None
    catalog_store = store if store is not None else CatalogStore(settings)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = REQUEST_THREADS
        await run_in_threadpool(catalog_store.files.sweep_partials)
        await run_in_threadpool(sweep_abandoned_parts, catalog_store.files)
        if warm_up:
            await run_in_threadpool(warm_up_worker, catalog_store, REQUEST_THREADS)
        deliverer = WebhookDeliverer(catalog_store)  # webhooks.py
        deliverer.start()
        app.state.document_filler.start()
        yield
        app.state.document_filler.stop()
        deliverer.stop()
        if owns_store:
            catalog_store.close()

    app = Starlette(
        routes=routes(),
        exception_handlers={
            CatalogError: _catalog_error, HTTPException: _http_error, **OUTAGE_HANDLERS, Exception: _unexpected_error,
        },
        lifespan=lifespan,
    )
    app.state.store = catalog_store
    app.state.document_filler = DocumentFiller(catalog_store)
    shared = SharedAnswers(settings.shared_answers_dir) if settings.shared_answers_dir else None
    app.state.response_cache = ResponseCache(shared=shared)
    app.state.computing_limiter = anyio.CapacityLimiter(COMPUTING_THREADS)
    app.add_middleware(
        AnonymousCacheMiddleware,
        cache=app.state.response_cache,
        data_version=catalog_store.db.current_data_version,
        on_hit=partial(count_cached_use, catalog_store),
    )
    if settings.simulated_clock:
        app.add_middleware(SimulatedClock)
    app.add_middleware(RefuseUnstorablePaths)
    if settings.public_url:
        app.add_middleware(PublicAddressMiddleware, public_url=settings.public_url)
    return app
