"""Account set-up shared by the CLI, the demo runner and the tests.

udata creates accounts through its web UI; our catalog has none yet, so these functions are how an
organization, its publishing user and that user's API token come to exist. They are idempotent
(get or create), so the demo can run them on every start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from dinum_pipelines.catalog.db import utcnow
from dinum_pipelines.catalog.store import CatalogStore


@dataclass(frozen=True)
class Publisher:
    """What a pipeline needs to publish as a member of an organization."""

    token: str  # the plain API token (X-API-KEY); not stored anywhere, keep it
    user_id: str
    organization_id: str
    organization_slug: str


def split_name(name: str) -> tuple[str, str]:
    """'Jeanne Dupont' -> ('Jeanne', 'Dupont'); udata users have a first and a last name."""
    first, _, last = name.strip().partition(" ")
    return first, last.strip()


def ensure_user(store: CatalogStore, email: str, name: str) -> dict[str, Any]:
    return store.accounts.user_by_email(email) or store.accounts.create_user(email, *split_name(name))


def ensure_organization(store: CatalogStore, slug: str, name: str) -> dict[str, Any]:
    existing = store.accounts.organization(slug)
    return existing if existing is not None else store.accounts.create_organization(slug, name)


def create_token(
    store: CatalogStore, email: str, name: str = "", *, expires_days: float | None = None
) -> tuple[str, dict[str, Any]]:
    """A new API token for the user with this email: (plain token, stored record)."""
    user = store.accounts.require_user(email)
    expires_at = None if expires_days is None else utcnow() + timedelta(days=expires_days)
    return store.accounts.create_token(user["id"], name, expires_at=expires_at)


def bootstrap_publisher(
    store: CatalogStore,
    *,
    org_slug: str,
    org_name: str,
    email: str,
    name: str,
    role: str = "admin",
    token_name: str = "publisher",
    expires_days: float | None = None,
) -> Publisher:
    """Organization + user + membership (get or create), then a fresh token for that user."""
    org = ensure_organization(store, org_slug, org_name)
    user = ensure_user(store, email, name)
    store.accounts.set_member(org["id"], user["id"], role)
    token, _record = create_token(store, user["email"], token_name, expires_days=expires_days)
    return Publisher(token=token, user_id=user["id"], organization_id=org["id"], organization_slug=org["slug"])
