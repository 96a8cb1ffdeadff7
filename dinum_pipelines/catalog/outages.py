"""What the catalog answers when something it depends on goes away in the middle of a request.

- The database unreachable, restarting or saturated (SQLAlchemy's OperationalError,
  InterfaceError, or a pool with no connection to give): a 503 with udata's JSON error body (an
  HTML page for the pages) and a warning in the log, not a 500 and a traceback. It is an outage,
  not a bug: the client may try again, and the pipeline's client does (lib/http.make_session).
  Once the database is back, the next request reconnects (the PostgreSQL pool pings a
  connection before lending it, see db.open_engine).
- The client gone before it sent its whole body (a killed pipeline, a dropped connection):
  handlers read the body before they write anything (an upload's partial file is dropped), so
  nothing changed, and one log line says so instead of a traceback.

The log lines carry the exception's class and first line only: SQLAlchemy's own text quotes the
statement and its parameters.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from dinum_pipelines.catalog.api_schemas import STRING, Json, obj
from dinum_pipelines.catalog.pages import error_page

DATABASE_UNAVAILABLE = "The catalog's database is unavailable; try again in a moment."
# The API's 503 body, as the OpenAPI document shows it (any operation may answer it).
UNAVAILABLE_BODY: Json = obj({"message": STRING, "status": {"type": "integer", "enum": [503]}})
logger = logging.getLogger("dinum_pipelines.catalog")


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else ''}"


async def database_unavailable(request: Request, exc: Exception) -> Response:
    logger.warning("%s %s: 503, the database is unavailable (%s)", request.method, request.url.path, _first_line(exc))
    if not request.url.path.startswith("/api/"):
        return error_page(503, "Le catalogue est momentanément indisponible ; réessayez dans un instant.")
    return JSONResponse({"message": DATABASE_UNAVAILABLE, "status": 503}, 503)


async def client_disconnected(request: Request, _exc: Exception) -> Response:
    logger.warning("%s %s: the client went away before sending its whole body; nothing was changed", request.method, request.url.path)
    return Response(status_code=400)  # nobody is there to read it


OUTAGE_HANDLERS = {
    OperationalError: database_unavailable,
    InterfaceError: database_unavailable,
    PoolTimeout: database_unavailable,
    ClientDisconnect: client_disconnected,
}
