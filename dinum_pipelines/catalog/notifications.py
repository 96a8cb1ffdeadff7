"""The change log and the webhook subscriptions: what the Atom feeds and the webhooks tell reusers.

A reuser who mirrors a dataset wants to hear when it changes rather than poll it. Each
publication (a file uploaded or replaced, a remote resource added or pointed elsewhere, a dataset
created, changed, made public or deleted) is recorded as one `changes` row, with the body its
webhooks will POST (URLs absolute, as the publishing request named the catalog), and with the
`webhook_deliveries` of the subscriptions that should hear of it. The storage method that makes the
change writes them in its own transaction (`publication` gives it the hook, datasets.Notify): a
change is committed with its feed entry and its queued deliveries, or not at all. The delivery
thread (webhooks.py) sends them off the request path, woken once they are committed.

Who hears of what: the feeds are public, so they list the changes of datasets that were public when
they changed and still are (a private or deleted dataset never shows, and a private dataset made
public starts with a `dataset.published` entry). A subscription to a dataset or an organization
hears of every change of a public dataset, and of a private one only if the subscriber may edit it.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, false, func, insert, or_, select
from sqlalchemy.engine import Connection, RowMapping

from dinum_pipelines.catalog.api_schemas import COUNT, DATE_TIME, STRING, URI, Json, array, nullable, obj
from dinum_pipelines.catalog.datasets import Notify, records_in
from dinum_pipelines.catalog.db import (
    Database,
    after_commit,
    changes,
    datasets,
    organization_members,
    utcnow,
    webhook_deliveries,
    webhooks,
)
from dinum_pipelines.catalog.errors import NotFound, field_error
from dinum_pipelines.catalog.ids import new_object_id
from dinum_pipelines.catalog.render import Renderer, iso
from dinum_pipelines.catalog.validation import HTTP_URL, Form, accepts, http_url, text

DATASET_CREATED = "dataset.created"
DATASET_UPDATED = "dataset.updated"
DATASET_PUBLISHED = "dataset.published"  # a private (or deleted) dataset made public
DATASET_DELETED = "dataset.deleted"
RESOURCE_CREATED = "resource.created"  # a file uploaded, a remote resource added
RESOURCE_UPDATED = "resource.updated"  # a file replaced, a remote resource's URL changed
EVENTS = (DATASET_CREATED, DATASET_UPDATED, DATASET_PUBLISHED, DATASET_DELETED, RESOURCE_CREATED, RESOURCE_UPDATED)
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
FEED_SIZE = 50
HISTORY_SIZE = 100  # the deliveries a subscriber sees, newest first
WEBHOOK_NOT_FOUND = "Webhook not found"
MAX_URL_LENGTH = 2000
MAX_SUBSCRIPTIONS = 100  # per user


def is_public(dataset: Mapping[str, Any]) -> bool:
    return not dataset["private"] and not dataset["deleted"]


def dataset_update_event(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """The event of a dataset's update: made public (or restored public) is a publication of its own."""
    return DATASET_PUBLISHED if is_public(after) and not is_public(before) else DATASET_UPDATED


def change_body(render: Renderer, event: str, dataset: Json, resource: Json | None, at: datetime) -> Json:
    """What a webhook POSTs (and a feed entry shows) for one change."""
    shown = render.dataset({**dataset, "resources": []})
    body: Json = {
        "event": event,
        "dataset": {
            "id": shown["id"], "slug": shown["slug"], "title": shown["title"], "page": shown["page"], "uri": shown["uri"],
            "organization": dataset["organization_id"],
        },
        "resource": None,
        "created_at": iso(at),
    }
    if resource is not None:
        file = render.resource(resource)
        body["resource"] = {name: file[name] for name in ("id", "title", "url", "latest", "format", "checksum", "filesize")}
    return body


# The request body of POST /api/1/me/webhooks/.


@accepts({**HTTP_URL, "maxLength": MAX_URL_LENGTH})
def webhook_url(value: Any) -> str:
    url = http_url(value)
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"Field cannot be longer than {MAX_URL_LENGTH} characters.")
    return url


NEW_WEBHOOK = Form(
    {"url": webhook_url, "dataset": text(255), "organization": text(255)},
    required=("url",),
)
NEW_WEBHOOK_SCHEMA: Json = {
    **NEW_WEBHOOK.schema,
    "description": "The URL to POST to, and exactly one of `dataset` and `organization` (an id or a slug).",
    # What clean_new_webhook asks: one of the two given (a non-empty string), not both.
    "oneOf": [
        {"required": [name], "properties": {name: {"type": "string", "minLength": 1}}} for name in ("dataset", "organization")
    ],
}


def clean_new_webhook(payload: Any) -> tuple[str, str, str]:
    """(url, "dataset" or "organization", its id or slug); a 400 naming the field otherwise."""
    fields = NEW_WEBHOOK.clean(payload)
    given = [name for name in ("dataset", "organization") if fields.get(name)]
    if len(given) != 1:
        raise field_error("dataset", "Give exactly one of `dataset` and `organization`.")
    return fields["url"], given[0], fields[given[0]]


# The documents of the subscription API, and their schemas (openapi.py lists them as components).

_WEBHOOK_PROPERTIES: Json = {
    "id": STRING,
    "url": STRING,
    "dataset": nullable(STRING),
    "organization": nullable(STRING),
    "created_at": DATE_TIME,
    "deliveries": {**URI, "description": "This subscription's delivery history"},
}
_ATTEMPT = obj({"at": DATE_TIME, "status_code": nullable({"type": "integer"}), "error": nullable(STRING), "duration_ms": COUNT})
WEBHOOK_SCHEMAS: dict[str, Json] = {
    "Webhook": obj(_WEBHOOK_PROPERTIES),
    "NewWebhook": obj({
        **_WEBHOOK_PROPERTIES,
        "secret": {**STRING, "description": "The key of the X-Dinum-Signature HMAC: shown this once only"},
    }),
    "WebhookDelivery": obj({
        "id": {**STRING, "description": "The X-Dinum-Delivery header of its requests"},
        "event": {"type": "string", "enum": list(EVENTS)},
        "status": {"type": "string", "enum": [PENDING, DELIVERED, FAILED]},
        "attempts": COUNT,
        "created_at": DATE_TIME,
        "delivered_at": nullable(DATE_TIME),
        "next_attempt_at": nullable(DATE_TIME),
        "last_status_code": nullable({"type": "integer"}),
        "last_error": nullable(STRING),
        "history": array(_ATTEMPT),
    }),
}


def webhook_document(render: Renderer, row: Mapping[str, Any], *, secret: str | None = None) -> Json:
    document: Json = {
        "id": row["id"],
        "url": row["url"],
        "dataset": row["dataset_id"],
        "organization": row["organization_id"],
        "created_at": iso(row["created_at"]),
        "deliveries": render.api_url(f"/me/webhooks/{row['id']}/deliveries/"),
    }
    if secret is not None:
        document["secret"] = secret  # only in the creation response
    return document


def delivery_document(row: Mapping[str, Any]) -> Json:
    history = row["attempts"] or []
    last = history[-1] if history else {}
    return {
        "id": row["id"],
        "event": row["event"],
        "status": row["status"],
        "attempts": len(history),
        "created_at": iso(row["created_at"]),
        "delivered_at": iso(row["delivered_at"]),
        "next_attempt_at": iso(row["next_attempt_at"]) if row["status"] == PENDING else None,
        "last_status_code": last.get("status_code"),
        "last_error": last.get("error"),
        "history": history,
    }


class Notifications:
    """The change log, the subscriptions and their delivery histories, as stored."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # Set when a change queued deliveries: the delivery thread of this process wakes at once
        # (another process's finds them at its next poll).
        self.queued = threading.Event()

    # The change log

    def publication(self, render: Renderer, event: str | Callable[[Json], str]) -> Notify:
        """The hook a storage method (datasets.py) calls inside the transaction of a publication:
        the change logged and its deliveries queued with it, or none of it. `event` may be a
        function of the dataset as changed (a dataset update: made public or not)."""

        def notify(conn: Connection, dataset_id: str, resource_id: str | None) -> None:
            dataset, resource = records_in(conn, dataset_id, resource_id)
            self._log(conn, render, event if isinstance(event, str) else event(dataset), dataset, resource)

        return notify

    def _log(self, conn: Connection, render: Renderer, event: str, dataset: Json, resource: Json | None) -> None:
        public = not dataset["private"] and (event == DATASET_DELETED or not dataset["deleted"])
        now = utcnow()
        change_id = conn.execute(
            insert(changes).values(
                occurred_at=now, event=event, dataset_id=dataset["id"], organization_id=dataset["organization_id"],
                resource_id=resource["id"] if resource else None, public=public,
                payload=change_body(render, event, dataset, resource, now),
            ).returning(changes.c.id)
        ).scalar_one()
        subscribers = _subscribers(conn, dataset, public)
        if subscribers:
            conn.execute(insert(webhook_deliveries), [
                {
                    "id": str(uuid.uuid4()), "webhook_id": webhook_id, "change_id": change_id, "status": PENDING,
                    "attempts": [], "created_at": now, "next_attempt_at": now,
                }
                for webhook_id in subscribers
            ])
            after_commit(conn, self.queued.set)

    def feed(
        self, *, dataset_id: str | None = None, organization_id: str | None = None, before: int | None = None,
        limit: int = FEED_SIZE,
    ) -> list[RowMapping]:
        """The public changes, newest first (of one dataset, or one organization's), before the
        change `before` if given."""
        query = (
            select(changes.c.id, changes.c.occurred_at, changes.c.event, changes.c.dataset_id, changes.c.payload)
            .join(datasets, datasets.c.id == changes.c.dataset_id)
            .where(changes.c.public.is_(True), datasets.c.private.is_(False), datasets.c.deleted_at.is_(None))
        )
        if dataset_id is not None:
            query = query.where(changes.c.dataset_id == dataset_id)
        if organization_id is not None:
            query = query.where(changes.c.organization_id == organization_id)
        if before is not None:
            query = query.where(changes.c.id < before)
        with self._db.read() as conn:
            return list(conn.execute(query.order_by(changes.c.id.desc()).limit(limit)).mappings())

    # Subscriptions

    def subscribe(
        self, user_id: str, url: str, *, dataset_id: str | None = None, organization_id: str | None = None
    ) -> tuple[RowMapping, str]:
        """A new subscription and its secret (the key of its signatures). A user has at most
        MAX_SUBSCRIPTIONS: each publication costs a request per subscription."""
        secret = secrets.token_hex(32)
        webhook_id = new_object_id()
        with self._db.write(changes_data=False) as conn:
            if conn.scalar(select(func.count()).select_from(webhooks).where(webhooks.c.user_id == user_id)) >= MAX_SUBSCRIPTIONS:
                raise field_error("url", f"At most {MAX_SUBSCRIPTIONS} subscriptions per user: delete one first.")
            conn.execute(insert(webhooks).values(
                id=webhook_id, user_id=user_id, url=url, dataset_id=dataset_id, organization_id=organization_id,
                secret=secret, created_at=utcnow(),
            ))
        return self.subscription(user_id, webhook_id), secret

    def subscriptions(self, user_id: str) -> list[RowMapping]:
        with self._db.read() as conn:
            return list(conn.execute(_WEBHOOKS.where(webhooks.c.user_id == user_id).order_by(webhooks.c.created_at)).mappings())

    def subscription(self, user_id: str, webhook_id: str) -> RowMapping:
        """The user's subscription; NotFound for anyone else's, as for one that does not exist."""
        with self._db.read() as conn:
            return _own(conn, user_id, webhook_id)

    def unsubscribe(self, user_id: str, webhook_id: str) -> None:
        """Remove the subscription and its deliveries, pending ones included: nothing more is sent."""
        with self._db.write(changes_data=False) as conn:
            _own(conn, user_id, webhook_id)
            conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id))
            conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id))

    def deliveries(self, user_id: str, webhook_id: str, limit: int = HISTORY_SIZE) -> list[RowMapping]:
        """The subscription's deliveries, newest first, with their events."""
        query = (
            select(webhook_deliveries, changes.c.event)
            .join(changes, changes.c.id == webhook_deliveries.c.change_id)
            .where(webhook_deliveries.c.webhook_id == webhook_id)
            .order_by(webhook_deliveries.c.created_at.desc(), webhook_deliveries.c.change_id.desc())
            .limit(limit)
        )
        with self._db.read() as conn:
            _own(conn, user_id, webhook_id)
            return list(conn.execute(query).mappings())


# Everything but the secret, which is only ever read to sign (webhooks.py).
_WEBHOOKS = select(*[column for column in webhooks.c if column.name != "secret"])


def _own(conn: Connection, user_id: str, webhook_id: str) -> RowMapping:
    row = conn.execute(_WEBHOOKS.where(webhooks.c.id == webhook_id, webhooks.c.user_id == user_id)).mappings().first()
    if row is None:
        raise NotFound(WEBHOOK_NOT_FOUND)
    return row


def _subscribers(conn: Connection, dataset: Json, public: bool) -> list[str]:
    """The ids of the subscriptions to hear of a change of `dataset`: those to it or to its
    organization; for a private dataset, only those of users who may edit it (app.can_edit's rule)."""
    organization_id = dataset["organization_id"]
    on_organization = webhooks.c.organization_id == organization_id if organization_id else false()
    rows = conn.execute(
        select(webhooks.c.id, webhooks.c.user_id).where(or_(webhooks.c.dataset_id == dataset["id"], on_organization))
    ).all()
    if public:
        return [row.id for row in rows]
    if organization_id:
        members = select(organization_members.c.user_id).where(organization_members.c.organization_id == organization_id)
        editors = set(conn.scalars(members))
    else:
        editors = {dataset["owner_id"]}
    return [row.id for row in rows if row.user_id in editors]
