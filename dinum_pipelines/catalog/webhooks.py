"""Webhook deliveries: each queued delivery POSTed, signed, retried with backoff, every attempt kept.

A request that publishes only queues deliveries (notifications.py); this thread, one per catalog
process, sends them. It polls the database for due deliveries rather than keep a queue in memory,
so deliveries survive a restart, and claims each one before sending it: the claim moves the
delivery's `next_attempt_at` past the attempt (a lease) in a write transaction that selected it
`FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite's write transactions are serialized already), so
two processes, or two catalog nodes on one PostgreSQL, never send the same attempt; a process that
dies mid-attempt leaves a delivery that is claimed again once its lease is over.

Each attempt POSTs the change's JSON body with these headers:

- `X-Dinum-Signature: sha256=<hex>`: the HMAC-SHA256 of the raw body with the subscription's
  secret, as GitHub's `X-Hub-Signature-256` (compare it in constant time to your own);
- `X-Dinum-Event`: the event (`resource.updated`...), `X-Dinum-Delivery`: the delivery's id, the
  same on every attempt of one delivery (a receiver can drop a repeat).

A 2xx answer delivers; anything else (another status, a redirect, no connection, no answer within
`webhook_timeout_seconds`) is retried after `webhook_retry_seconds`, then twice that, and so on,
`webhook_attempts` attempts in all (CatalogSettings). Each attempt is kept in the delivery's
history (time, status code or error, duration) for the subscriber to read; the secret never is,
nor is it logged (the log names deliveries by id, never by URL, which may hold a token).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import requests
from sqlalchemy import func, select, update

from dinum_pipelines.catalog.db import UtcDateTime, changes, utcnow, webhook_deliveries, webhooks
from dinum_pipelines.catalog.errors import field_error
from dinum_pipelines.catalog.notifications import DELIVERED, FAILED, PENDING
from dinum_pipelines.catalog.render import iso
from dinum_pipelines.catalog.validation_pages import InputError, refuse_private_address

if TYPE_CHECKING:
    from dinum_pipelines.catalog.store import CatalogStore

SIGNATURE_HEADER = "X-Dinum-Signature"
EVENT_HEADER = "X-Dinum-Event"
DELIVERY_HEADER = "X-Dinum-Delivery"
USER_AGENT = "dinum-catalog-webhooks/1"
# The longest wait between two looks at the database when nothing is due: how late another
# process's deliveries (or a retry this process did not expect) can start.
POLL_SECONDS = 1.0
# A claim holds a delivery for the attempt's timeout plus this.
LEASE_MARGIN_SECONDS = 30.0
_log = logging.getLogger(__name__)


def sign(secret: str, body: bytes) -> str:
    """The X-Dinum-Signature value of `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def refuse_private_url(url: str) -> None:
    """A 400 naming `url` when its host resolves to a loopback, private or reserved address (a
    deployment's rule, CatalogSettings.fetch_private_urls off: no posting into its own network)."""
    try:
        refuse_private_address(url)
    except InputError:
        raise field_error("url", "The URL's host is not a public address: this catalog does not post to it.") from None


def body_bytes(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Claimed:
    """A delivery this process holds for one attempt."""

    id: str
    url: str
    secret: str
    event: str
    payload: Any
    attempts: list[Any]


class WebhookDeliverer:
    """The delivery thread of one catalog process (started and stopped by the app's lifespan)."""

    def __init__(self, store: CatalogStore) -> None:
        self._db = store.db
        self._settings = store.settings
        self._queued = store.notifications.queued
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="catalog-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop after the attempt under way; not waiting longer than `timeout` (an attempt may
        take webhook_timeout_seconds: it is claimed again after its lease)."""
        self._stopping.set()
        self._queued.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        failing = False
        with requests.Session() as session:
            while not self._stopping.is_set():
                self._queued.clear()
                try:
                    self.deliver_due(session)
                    wait = self._seconds_to_next_due()
                    failing = False
                except Exception:
                    if not failing:  # once per outage (the database down, say), not at every poll
                        _log.exception("webhook deliveries failed; trying again every %s s", POLL_SECONDS)
                    failing = True
                    wait = POLL_SECONDS
                self._queued.wait(wait)

    def deliver_due(self, session: requests.Session) -> int:
        """Attempt every delivery due now, one at a time; how many were attempted."""
        attempted = 0
        while not self._stopping.is_set():
            claimed = self._claim()
            if claimed is None:
                break
            self._record(claimed, self._attempt(session, claimed))
            attempted += 1
        return attempted

    def _claim(self) -> Claimed | None:
        now = utcnow()
        lease = now + timedelta(seconds=self._settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS)
        due = (
            select(
                webhook_deliveries.c.id, webhook_deliveries.c.attempts, webhooks.c.url, webhooks.c.secret,
                changes.c.event, changes.c.payload,
            )
            .join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
            .join(changes, changes.c.id == webhook_deliveries.c.change_id)
            .where(webhook_deliveries.c.status == PENDING, webhook_deliveries.c.next_attempt_at <= now)
            .order_by(webhook_deliveries.c.next_attempt_at)
            .limit(1)
            .with_for_update(skip_locked=True, of=webhook_deliveries)
        )
        with self._db.write(changes_data=False) as conn:
            row = conn.execute(due).mappings().first()
            if row is None:
                return None
            conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == row["id"]).values(next_attempt_at=lease))
        return Claimed(row["id"], row["url"], row["secret"], row["event"], row["payload"], list(row["attempts"] or []))

    def _attempt(self, session: requests.Session, claimed: Claimed) -> dict[str, Any]:
        """One POST; its record for the history (`error` None: delivered)."""
        at, started = utcnow(), time.monotonic()
        status_code: int | None = None
        error: str | None = None
        timeout = self._settings.webhook_timeout_seconds
        body = body_bytes(claimed.payload)
        headers = {
            "Content-Type": "application/json", "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(claimed.secret, body), EVENT_HEADER: claimed.event, DELIVERY_HEADER: claimed.id,
        }
        try:
            if not self._settings.fetch_private_urls:
                refuse_private_address(claimed.url)  # resolved again at each attempt: the name may have moved
            with session.post(claimed.url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True) as response:
                status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except InputError:
            error = "refused: the URL's host is not public"
        except requests.Timeout:
            error = f"no answer within {timeout:g} s"
        except requests.ConnectionError:
            error = "connection failed"
        except requests.RequestException as exc:
            error = type(exc).__name__
        return {"at": iso(at), "status_code": status_code, "error": error, "duration_ms": int((time.monotonic() - started) * 1000)}

    def _record(self, claimed: Claimed, attempt: dict[str, Any]) -> None:
        attempts = [*claimed.attempts, attempt]
        now = utcnow()
        values: dict[str, Any] = {"attempts": attempts}
        if attempt["error"] is None:
            values.update(status=DELIVERED, delivered_at=now, next_attempt_at=None)
        elif len(attempts) >= self._settings.webhook_attempts:
            values.update(status=FAILED, next_attempt_at=None)
        else:
            backoff = self._settings.webhook_retry_seconds * 2 ** (len(attempts) - 1)
            values.update(next_attempt_at=now + timedelta(seconds=backoff))
        # No row when the subscription was removed meanwhile: nothing to record, nothing more to send.
        with self._db.write(changes_data=False) as conn:
            conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id == claimed.id, webhook_deliveries.c.status == PENDING)
                .values(**values)
            )
        _log.info(
            "webhook delivery %s (%s), attempt %d: %s", claimed.id, claimed.event, len(attempts),
            attempt["error"] or f"delivered ({attempt['status_code']})",
        )

    def _seconds_to_next_due(self) -> float:
        with self._db.read() as conn:
            next_due = conn.scalar(
                select(func.min(webhook_deliveries.c.next_attempt_at, type_=UtcDateTime))
                .where(webhook_deliveries.c.status == PENDING)
            )
        if next_due is None:
            return POLL_SECONDS
        seconds = (next_due - utcnow()).total_seconds()
        return min(POLL_SECONDS, max(0.01, seconds))

