"""The catalog's side of usage metrics: the usage-log export, the metrics push, the metric API.

- `GET /api/1/events/?since=&until=` (sysadmin): the access events of a time window, streamed as
  CSV. The metrics pipeline reads the log through this endpoint rather than from the catalog's
  database: a production pipeline runs elsewhere and should hold an API key that can be revoked,
  not database credentials, and the catalog stays free to change its tables.
- `PUT /api/1/metrics/` (sysadmin): the pipeline's tables for the metric API and every object's
  `metrics` (udata names), applied in ONE transaction: a push that fails for any reason, at any
  row, leaves every previous figure in place (udata#3846: a failed metrics run wiped them).
- `GET /api/{model}/data/` and `/api/{model}/data/csv/`: data.gouv.fr's metric API
  (api-tabular), over the pushed tables: `col__exact`, `__contains`, `__less` (<=), `__greater`
  (>=), `__strictly_less`, `__strictly_greater`, `col__sort=asc|desc`, `page`, `page_size` (max 50),
  answering `{data, links, meta}` and errors as `{"errors": [{code, title, detail}]}`.
- `SimulatedClock`: the middleware behind CatalogSettings.simulated_clock (see events.py).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from dinum_pipelines.catalog.api_schemas import COUNT, DATE_TIME, array, obj
from dinum_pipelines.catalog.db import (
    Database,
    datasets,
    metric_tables,
    organization_metrics,
    organizations,
    resources,
    utcnow,
)
from dinum_pipelines.catalog.datasets import dataset_doc, drop_documents
from dinum_pipelines.catalog.errors import CatalogError, Conflict, Forbidden, ValidationError, field_error
from dinum_pipelines.catalog.events import simulated_time
from dinum_pipelines.lib.metrics.schema import METRIC_MODELS, MetricModel, write_events_csv

if TYPE_CHECKING:
    from dinum_pipelines.catalog.call import Call
    from dinum_pipelines.catalog.store import CatalogStore
from dinum_pipelines.catalog.validation import MAX_PAGE, QueryParameter, QueryString, refuse_unstorable_body

SIMULATED_TIME_HEADER = "X-Dinum-Simulated-Time"
MAX_PAGE_SIZE = 50
DEFAULT_PAGE_SIZE = 20
_EXPORT_CHUNK_ROWS = 1000
OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "exact": lambda column, value: column == value,
    "contains": lambda column, value: column.contains(value, autoescape=True),
    "less": lambda column, value: column <= value,
    "greater": lambda column, value: column >= value,
    "strictly_less": lambda column, value: column < value,
    "strictly_greater": lambda column, value: column > value,
}
Json = dict[str, Any]


def require_sysadmin(call: Call) -> Json:
    user = call.require_user()
    if not call.store.accounts.is_sysadmin(user["id"]):
        raise Forbidden("Reserved to sysadmins.")
    return user


# The usage log export


def _aware_datetime(value: str | None, name: str) -> datetime:
    """`value` as a UTC datetime (what the database compares); a 400 naming `name` otherwise."""
    try:
        parsed = datetime.fromisoformat(value or "")
    except ValueError:
        raise field_error(name, "Expected an ISO 8601 date and time with a time zone, e.g. 2026-10-02T22:00:00+00:00.") from None
    if parsed.tzinfo is None:
        raise field_error(name, "Give a time zone (e.g. +00:00).")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise field_error(name, "Out of range.") from None


def _window_bound(name: str, description: str) -> QueryParameter:
    return QueryParameter(name, lambda params: _aware_datetime(params.get(name), name), DATE_TIME, description, required=True)


EVENTS_WINDOW = QueryString((
    _window_bound("since", "The window's start, included (ISO 8601 with a time zone)"),
    _window_bound("until", "The window's end, excluded (ISO 8601 with a time zone)"),
))


def export_events(call: Call) -> Response:
    """The events with `since <= occurred_at < until`, as CSV (header: lib.metrics.EVENT_COLUMNS)."""
    require_sysadmin(call)
    window = EVENTS_WINDOW.read(call.query)
    since, until = window["since"], window["until"]
    if until <= since:
        raise field_error("until", "must be after since")
    return StreamingResponse(_csv_chunks(call.store.events.between(since, until)), media_type="text/csv; charset=utf-8")


def _csv_chunks(rows: Iterator[Json]) -> Iterator[str]:
    """The export's CSV, a thousand rows at a time, written as the rows are read."""
    buffer = io.StringIO()
    pending: list[Json] = []
    header = True
    for row in rows:
        pending.append(row)
        if len(pending) == _EXPORT_CHUNK_ROWS:
            write_events_csv(pending, buffer, header=header)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending, header = [], False
    write_events_csv(pending, buffer, header=header)
    yield buffer.getvalue()


# The metrics push


OBJECT_KINDS = ("datasets", "resources", "organizations")
# What _validate_tables and _validate_objects accept, and what `replace` answers, for the OpenAPI document.
_PUSHED_METRICS: Json = {"type": "object", "additionalProperties": {"anyOf": [COUNT, {"type": "object", "additionalProperties": COUNT}]}}
METRICS_PUSH_BODY: Json = obj({
    "tables": obj({
        name: obj({
            "columns": {**array({"type": "string"}), "enum": [list(model.columns)]},
            "rows": array(array({"anyOf": [COUNT, {"type": "string", "minLength": 1, "maxLength": 36}]})),
        }, closed=False)
        for name, model in METRIC_MODELS.items()
    }),
    "objects": obj({
        kind: obj({"default": _PUSHED_METRICS, "by_id": {"type": "object", "additionalProperties": _PUSHED_METRICS}}, closed=False)
        for kind in OBJECT_KINDS
    }),
}, closed=False)
METRICS_PUSH_SUMMARY: Json = obj({
    "tables": obj(dict.fromkeys(METRIC_MODELS, COUNT)),
    "updated": obj(dict.fromkeys(OBJECT_KINDS, COUNT)),
    "unknown": obj(dict.fromkeys(OBJECT_KINDS, COUNT)),
})


def _validate_tables(payload: Json) -> dict[str, list[list[Any]]]:
    tables = payload.get("tables")
    if not isinstance(tables, dict) or set(tables) != set(METRIC_MODELS):
        raise field_error("tables", f"Expected exactly the tables {sorted(METRIC_MODELS)}.")
    validated = {}
    for name, model in METRIC_MODELS.items():
        table = tables[name]
        if not isinstance(table, dict) or table.get("columns") != list(model.columns):
            raise field_error(f"tables.{name}.columns", f"Expected {list(model.columns)}.")
        rows = table.get("rows")
        if not isinstance(rows, list):
            raise field_error(f"tables.{name}.rows", "Expected a list of rows.")
        for number, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != len(model.columns) or not all(
                _is_count(value) if column in model.count_columns else _is_id(value)
                for column, value in zip(model.columns, row, strict=True)
            ):
                raise field_error(f"tables.{name}.rows[{number}]", "Expected ids (short strings) and counts (integers >= 0).")
        validated[name] = rows
    return validated


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 36


def _is_metrics(value: Any) -> bool:
    """`{"views": 3, "views_by_months": {"2026-10": 3}}`: counts, or dicts of counts."""
    return isinstance(value, dict) and all(
        isinstance(key, str) and (_is_count(item) or (isinstance(item, dict) and all(_is_count(n) for n in item.values())))
        for key, item in value.items()
    )


def _validate_objects(payload: Json) -> dict[str, Json]:
    objects = payload.get("objects")
    if not isinstance(objects, dict) or set(objects) != set(OBJECT_KINDS):
        raise field_error("objects", f"Expected exactly {list(OBJECT_KINDS)}.")
    for kind in OBJECT_KINDS:
        entry = objects[kind]
        if not isinstance(entry, dict) or not _is_metrics(entry.get("default")) or not isinstance(entry.get("by_id"), dict):
            raise field_error(f"objects.{kind}", "Expected {default: metrics, by_id: {id: metrics}}.")
        for object_id, metrics in entry["by_id"].items():
            if not _is_metrics(metrics):
                raise field_error(f"objects.{kind}.by_id.{object_id}", "Expected metrics: counts or dicts of counts.")
    return objects


class MetricsStore:
    """The pushed metric tables and objects' metrics, in the catalog's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def replace(self, tables: dict[str, list[list[Any]]], objects: dict[str, Json]) -> Json:
        """Replace every metric table and every object's metrics, all in one transaction."""
        summary: Json = {"tables": {}, "updated": {}, "unknown": {}}
        try:
            with self._db.write() as conn:
                for name, rows in tables.items():
                    table = metric_tables[name]
                    conn.execute(delete(table))
                    if rows:
                        # `__id` is the row's place in the push, not a sequence's next value, so the
                        # same push gives the same ids (PostgreSQL sequences never go back).
                        columns = METRIC_MODELS[name].columns
                        conn.execute(
                            insert(table),
                            [{"row_id": number, **dict(zip(columns, row, strict=True))} for number, row in enumerate(rows, 1)],
                        )
                    summary["tables"][name] = len(rows)
                shown: set[str] = set()  # the datasets whose documents show a changed metric
                for kind, table, columns_for, dataset_id in (
                    ("datasets", datasets, dataset_doc, datasets.c.id), ("resources", resources, _doc_only, resources.c.dataset_id),
                ):
                    summary["updated"][kind], summary["unknown"][kind] = _update_docs(
                        conn, table, columns_for, objects[kind], dataset_id, shown
                    )
                # Stored again after the push (store_missing_documents): rendering them all here would
                # hold the transaction for minutes at 100,000 datasets.
                drop_documents(conn, shown)
                summary["updated"]["organizations"], summary["unknown"]["organizations"] = _update_organizations(
                    conn, objects["organizations"]
                )
        except IntegrityError:
            raise Conflict("The push repeats a row (same object and month); nothing was changed.") from None
        return summary

    def organization(self, organization_id: str) -> Json | None:
        with self._db.read() as conn:
            return conn.scalar(
                select(organization_metrics.c.metrics).where(organization_metrics.c.organization_id == organization_id)
            )

    def query(self, model: MetricModel, conditions: list[Any], order: list[Any], page: int, page_size: int | None) -> tuple[list[Json], int]:
        table = metric_tables[model.name]
        query = select(table).where(*conditions).order_by(*order, table.c.row_id)
        if page_size is not None:
            query = query.offset((page - 1) * page_size).limit(page_size)
        with self._db.read() as conn:
            total = conn.scalar(select(func.count()).select_from(table).where(*conditions)) or 0
            rows = [dict(row) for row in conn.execute(query).mappings()]
        return rows, total


def _merged(current: Json | None, entry: Json, object_id: str) -> Json:
    return {**(current or {}), **entry["default"], **entry["by_id"].get(object_id, {})}


def _doc_only(doc: Json) -> Json:
    return {"doc": doc}


def _update_docs(
    conn: Connection, table: Table, columns_for: Callable[[Json], Json], entry: Json, dataset_id: Any, shown: set[str]
) -> tuple[int, int]:
    """Set `doc.metrics` of every row (pushed values, else the defaults); only changed rows are
    written, with the columns `columns_for(doc)` derives from the document (datasets: `views`),
    and the id of the dataset that shows them (`dataset_id`, a column of `table`) added to `shown`."""
    changed, seen = 0, set()
    for row in conn.execute(select(table.c.id, table.c.doc, dataset_id.label("dataset_id"))).mappings():
        seen.add(row["id"])
        metrics = _merged(row["doc"].get("metrics"), entry, row["id"])
        if metrics != row["doc"].get("metrics"):
            conn.execute(update(table).where(table.c.id == row["id"]).values(**columns_for({**row["doc"], "metrics": metrics})))
            shown.add(row["dataset_id"])
            changed += 1
    return changed, len(set(entry["by_id"]) - seen)


def _update_organizations(conn: Connection, entry: Json) -> tuple[int, int]:
    current = {row.organization_id: row.metrics for row in conn.execute(select(organization_metrics))}
    ids = set(conn.scalars(select(organizations.c.id)))
    changed = 0
    for organization_id in sorted(ids):
        metrics = _merged(current.get(organization_id), entry, organization_id)
        if metrics != current.get(organization_id):
            where = organization_metrics.c.organization_id == organization_id
            conn.execute(delete(organization_metrics).where(where))
            conn.execute(insert(organization_metrics).values(organization_id=organization_id, metrics=metrics))
            changed += 1
    return changed, len(set(entry["by_id"]) - ids)


def push_metrics(call: Call) -> Response:
    require_sysadmin(call)
    payload = call.json()
    if not isinstance(payload, dict):
        raise field_error("payload", "Expected a JSON object.")
    refuse_unstorable_body(payload)
    tables, objects = _validate_tables(payload), _validate_objects(payload)
    summary = MetricsStore(call.store.db).replace(tables, objects)
    call.request.app.state.document_filler.wake()  # the documents showing the pushed metrics
    return call.respond(summary)


def organization_metrics_of(store: CatalogStore, organization_id: str) -> Json | None:
    """The pushed `metrics` of an organization (None before the first push); for the API and the pages."""
    return MetricsStore(store.db).organization(organization_id)


# The metric API


class MetricApiError(CatalogError):
    """api-tabular's error body: {"errors": [{code, title, detail}]}."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title

    def body(self) -> Json:
        return {"errors": [{"code": None, "title": self.title, "detail": self.message}]}


def _model(call: Call) -> MetricModel:
    model = METRIC_MODELS.get(call.params["model"])
    if model is None:
        raise MetricApiError(404, "Unknown model", f"No metric table {call.params['model']!r}; known: {sorted(METRIC_MODELS)}.")
    return model


def _int_param(call: Call, name: str, default: int, maximum: int | None = None) -> int:
    raw = call.query.get(name)
    try:
        value = default if raw is None else int(raw) if len(raw) <= 20 else 0
    except ValueError:
        raise MetricApiError(400, "Invalid query string", f"{name} must be an integer") from None
    if value < 1 or (maximum is not None and value > maximum):
        raise MetricApiError(400, "Invalid query string", f"{name} must be between 1 and {maximum or 'infinity'}")
    return value


def _filters(call: Call, model: MetricModel) -> tuple[list[Any], list[Any]]:
    """SQL conditions and ordering from `col__op=value` parameters."""
    table = metric_tables[model.name]
    conditions, order = [], []
    for key, value in call.query.multi_items():
        if key in ("page", "page_size"):
            continue
        column_name, _, operator = key.rpartition("__")
        if column_name not in model.columns:
            raise MetricApiError(400, "Invalid query string", f"Unknown column {column_name or key!r} in {key!r}")
        column = table.c[column_name]
        if operator == "sort":
            if value not in ("asc", "desc"):
                raise MetricApiError(400, "Invalid query string", f"{key} must be asc or desc")
            order.append(column.desc() if value == "desc" else column.asc())
            continue
        if operator not in OPERATORS:
            raise MetricApiError(400, "Invalid query string", f"Unknown operator {operator!r}; known: {sorted(OPERATORS)}, sort")
        if column_name in model.count_columns and operator != "contains":
            try:
                value = int(value)
            except ValueError:
                raise MetricApiError(400, "Invalid query string", f"{key} expects an integer") from None
        conditions.append(OPERATORS[operator](column, value))
    return conditions, order


def _row(model: MetricModel, row: Json) -> Json:
    return {"__id": row["row_id"], **{column: row[column] for column in model.columns}}


def metric_data(call: Call) -> Response:
    model = _model(call)
    page = _int_param(call, "page", 1, MAX_PAGE)
    page_size = _int_param(call, "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    conditions, order = _filters(call, model)
    rows, total = MetricsStore(call.store.db).query(model, conditions, order, page, page_size)
    return call.respond({
        "data": [_row(model, row) for row in rows],
        "links": {
            "next": call.page_url(page + 1) if page * page_size < total else None,
            "prev": call.page_url(page - 1) if page > 1 else None,
        },
        "meta": {"page": page, "page_size": page_size, "total": total},
    })


def metric_data_csv(call: Call) -> Response:
    """Every matching row, without pagination."""
    model = _model(call)
    conditions, order = _filters(call, model)
    rows, _total = MetricsStore(call.store.db).query(model, conditions, order, 1, None)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["__id", *model.columns])
    writer.writerows([[row["row_id"], *(row[column] for column in model.columns)] for row in rows])
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8")


# Load simulation


class SimulatedClock:
    """ASGI middleware: a sysadmin's request with `X-Dinum-Simulated-Time: <ISO datetime>` records
    its events at that time. Installed only when CatalogSettings.simulated_clock is on; even then
    the header is refused from anyone else, and times in the future are refused."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope) if scope["type"] == "http" else None
        value = headers.get(SIMULATED_TIME_HEADER) if headers is not None else None
        if headers is None or value is None:
            await self.app(scope, receive, send)
            return
        store = scope["app"].state.store
        token = headers.get("X-API-KEY")

        def check() -> datetime:
            user = store.accounts.authenticate(token) if token else None
            if user is None or not store.accounts.is_sysadmin(user["id"]):
                raise Forbidden(f"{SIMULATED_TIME_HEADER} is reserved to sysadmins.")
            when = _aware_datetime(value, SIMULATED_TIME_HEADER)
            if when > utcnow() + timedelta(minutes=1):
                raise ValidationError({SIMULATED_TIME_HEADER: ["A simulated time cannot be in the future."]})
            return when

        try:
            when = await run_in_threadpool(check)
        except CatalogError as exc:
            await JSONResponse(exc.body(), exc.status)(scope, receive, send)
            return
        with simulated_time(when):
            await self.app(scope, receive, send)
