"""One API request as a handler sees it (`Call`): parameters, JSON body, caller, and the means to answer.

A module of its own so that the modules holding handlers (metrics_api.py, dcat.py, app.py) depend
on it and not on each other: app.py wires the routes and imports them, never the reverse.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dinum_pipelines.catalog.errors import AUTHENTICATION_REQUIRED, Unauthorized, field_error
from dinum_pipelines.catalog.masks import apply_mask, parse_mask
from dinum_pipelines.catalog.render import Renderer
from dinum_pipelines.catalog.response_cache import API_KEY_HEADER, FIELDS_HEADER
from dinum_pipelines.catalog.store import CatalogStore

T = TypeVar("T")
Json = dict[str, Any]
_UNKNOWN: Any = object()


class Call:
    """One API request as a handler sees it: parameters, body, caller, and the means to answer."""

    def __init__(self, request: Request, body: bytes, store: CatalogStore) -> None:
        self.request = request
        self.body = body
        self.store = store
        base_url = store.settings.public_url or str(request.base_url)
        self.render = Renderer(base_url)
        self._user: Json | None = _UNKNOWN
        self._data_version: int | None = None

    @property
    def params(self) -> Mapping[str, str]:
        return self.request.path_params

    @property
    def query(self) -> Any:
        return self.request.query_params

    @property
    def user_agent(self) -> str | None:
        return self.request.headers.get("user-agent")

    @property
    def user(self) -> Json | None:
        """The caller, from X-API-KEY; a key that is sent must be valid, even on reads (as udata).
        Looked up once per call. Not a functools.cached_property: on Python 3.11 that holds one
        lock for the attribute of every instance, so the requests of a worker took turns to check
        their keys (a third of a worker's time under 50 keyed clients, py-spy)."""
        if self._user is _UNKNOWN:
            token = self.request.headers.get(API_KEY_HEADER)
            self._user = None if not token else self.store.accounts.authenticate(token, self.data_version)
        return self._user

    @property
    def data_version(self) -> int:
        """The data version as committed when this call first asked (one query per call): what
        it reads through `store.db.reads` is read at that version or later."""
        if self._data_version is None:
            self._data_version = self.store.db.data_version()
        return self._data_version

    def require_user(self) -> Json:
        if self.user is None:
            raise Unauthorized(AUTHENTICATION_REQUIRED)
        return self.user

    def json(self) -> Any:
        """The JSON body, parsed. Whoever reads it refuses what no database column can store (a
        control character or a lone surrogate in a string, key or value): a Form in the fields it
        keeps (validation.clean), the readers of the bodies stored whole in all of it."""
        if "application/json" not in self.request.headers.get("content-type", ""):
            raise field_error("Content-Type", "expecting application/json")
        try:
            payload = json.loads(self.body or b"null")
        except ValueError as exc:
            raise field_error("payload", f"Invalid JSON: {exc}") from exc
        return payload

    def respond(self, data: Any, status: int = 200) -> JSONResponse:
        mask = self.request.headers.get(FIELDS_HEADER)
        return JSONResponse(apply_mask(data, parse_mask(mask)) if mask else data, status)

    def respond_text(self, body: str, status: int = 200) -> Response:
        """`respond`, for a document already in JSON (documents.py): parsed only to apply a field mask."""
        if self.request.headers.get(FIELDS_HEADER):
            return self.respond(json.loads(body), status)
        return Response(body.encode("utf-8"), status, media_type=JSONResponse.media_type)

    def page_url(self, page: int) -> str:
        """This request's URL with another `page` (other parameters, repeated ones included, kept)."""
        query = [(key, value) for key, value in self.query.multi_items() if key != "page"] + [("page", str(page))]
        return f"{self.render.base_url}{self.request.url.path}?{urlencode(query)}"

    async def in_thread(self, function: Callable[..., T], *args: Any) -> T:
        return await run_in_threadpool(function, *args)
