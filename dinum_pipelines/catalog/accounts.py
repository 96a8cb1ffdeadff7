"""Users, organizations, memberships and API tokens: who may write what.

udata's rule, which we keep: a dataset belongs to an organization (or, failing that, to a user) and
any member of that organization, admin or editor, may modify it. Tokens are stored only as hashes,
shown once at creation, revocable and optionally expiring, as udata 16+ does.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from dinum_pipelines.catalog.db import (
    Database,
    api_tokens,
    dataset_documents,
    datasets,
    organization_members,
    organizations,
    sysadmins,
    unique_slug,
    users,
    utcnow,
)
from dinum_pipelines.catalog.errors import Conflict, NotFound, Unauthorized, field_error
from dinum_pipelines.catalog.ids import hash_api_token, new_api_token, new_object_id, slugify

ROLES = ("admin", "editor")
# What a dataset's document shows of its organization besides its id (render.Renderer.organization_ref).
ORGANIZATION_REF_FIELDS = frozenset({"name", "acronym", "slug"})
INVALID_TOKEN = "Invalid API token"
REVOKED_TOKEN = "Revoked API token"
EXPIRED_TOKEN = "Expired API token"
# Recording each use would turn every authenticated read into a write; once a minute is enough
# for "last used" to be useful.
_LAST_USED_RESOLUTION = timedelta(minutes=1)
ORGANIZATION_BY_ID, ORGANIZATION_BY_SLUG = (select(organizations).where(key == bindparam("key")) for key in (organizations.c.id, organizations.c.slug))


class Accounts:
    def __init__(self, db: Database) -> None:
        self._db = db
        # When this process last wrote each token's `last_used_at`: the token's cached read
        # (db.VersionedReads) keeps the value it was read with, since that write moves no version.
        self._last_used_written: dict[str, datetime] = {}
        self._last_used_lock = threading.Lock()

    # Users

    def create_user(self, email: str, first_name: str, last_name: str = "") -> dict[str, Any]:
        email = email.strip().lower()
        if "@" not in email:
            raise field_error("email", f"{email!r} is not an email address.")
        try:
            with self._db.write() as conn:
                slug = unique_slug(conn, users.c.slug, slugify(f"{first_name} {last_name}") or "user")
                user_id = new_object_id()
                conn.execute(
                    insert(users).values(
                        id=user_id, email=email, slug=slug, first_name=first_name,
                        last_name=last_name, created_at=utcnow(),
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"A user with the email {email!r} already exists.") from exc
        return self.require_user(user_id)

    def user(self, user_id: str) -> dict[str, Any] | None:
        return self._one(select(users).where(users.c.id == user_id))

    def user_by_email(self, email: str) -> dict[str, Any] | None:
        return self._one(select(users).where(users.c.email == email.strip().lower()))

    def require_user(self, user_id_or_email: str) -> dict[str, Any]:
        user = self.user_by_email(user_id_or_email) if "@" in user_id_or_email else self.user(user_id_or_email)
        if user is None:
            raise NotFound(f"Unknown user {user_id_or_email!r}.")
        return user

    def grant_sysadmin(self, user_id: str) -> None:
        """Give the user udata's sysadmin powers (usage log export, metrics push); idempotent."""
        with self._db.write() as conn:
            if conn.scalar(select(sysadmins.c.user_id).where(sysadmins.c.user_id == user_id)) is None:
                conn.execute(insert(sysadmins).values(user_id=user_id, granted_at=utcnow()))

    def is_sysadmin(self, user_id: str) -> bool:
        with self._db.read() as conn:
            return conn.scalar(select(sysadmins.c.user_id).where(sysadmins.c.user_id == user_id)) is not None

    # Organizations and members

    def create_organization(
        self, slug: str | None, name: str, *, acronym: str | None = None, description: str = "",
        url: str | None = None, extras: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A new organization; without a `slug`, one is made from the name (unique, as udata does)."""
        if slug is not None and (slugify(slug) != slug or not slug):
            raise field_error("slug", f"{slug!r} is not a slug (lower-case letters, digits and '-').")
        org_id = new_object_id()
        try:
            with self._db.write() as conn:
                if slug is None:
                    slug = unique_slug(conn, organizations.c.slug, slugify(name) or "organization")
                conn.execute(
                    insert(organizations).values(
                        id=org_id, slug=slug, name=name, acronym=acronym,
                        description=description, url=url, extras=extras, created_at=utcnow(),
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"An organization with the slug {slug!r} already exists.") from exc
        return self.require_organization(org_id)

    def update_organization(self, organization_id: str, changes: dict[str, Any], *, restore: bool = False) -> dict[str, Any]:
        """Apply cleaned `changes` (name, acronym, description, url, extras); undo a soft delete if
        `restore`. The slug stays: links to the organization keep working."""
        values = {**changes, **({"deleted_at": None} if restore else {})}
        if values:
            with self._db.write() as conn:
                conn.execute(update(organizations).where(organizations.c.id == organization_id).values(**values))
                if ORGANIZATION_REF_FIELDS & values.keys():
                    # Its datasets' stored documents show it: they go, rendered when read until
                    # Datasets.store_missing_documents stores them again (documents.py).
                    conn.execute(delete(dataset_documents).where(
                        dataset_documents.c.dataset_id.in_(select(datasets.c.id).where(datasets.c.organization_id == organization_id))
                    ))
        return self._organization_record(organization_id)

    def soft_delete_organization(self, organization_id: str) -> None:
        with self._db.write() as conn:
            conn.execute(update(organizations).where(organizations.c.id == organization_id).values(deleted_at=utcnow()))

    def transform_organization_extras(self, organization_id: str, transform: Any) -> dict[str, Any]:
        """Replace the extras by `transform(extras)` atomically."""
        with self._db.write() as conn:
            current = conn.scalar(select(organizations.c.extras).where(organizations.c.id == organization_id))
            extras: dict[str, Any] = transform(current or {})
            conn.execute(update(organizations).where(organizations.c.id == organization_id).values(extras=extras))
        return extras

    def _organization_record(self, organization_id: str) -> dict[str, Any]:
        org = self.organization(organization_id)
        if org is None:
            raise NotFound(f"Unknown organization {organization_id!r}.")
        return org

    def organization(self, id_or_slug: str) -> dict[str, Any] | None:
        """The organization whose id is `id_or_slug`, else the one whose slug is: plain reads
        (db.PlainRead), since a listing filtered by organization looks it up first."""
        return self._db.plain_row(ORGANIZATION_BY_ID, {"key": id_or_slug}) or self._db.plain_row(ORGANIZATION_BY_SLUG, {"key": id_or_slug})

    def organizations(self) -> list[dict[str, Any]]:
        """Every live organization, by name (the pages' organization filter)."""
        query = select(organizations).where(organizations.c.deleted_at.is_(None)).order_by(organizations.c.name)
        with self._db.read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def require_organization(self, id_or_slug: str) -> dict[str, Any]:
        org = self.organization(id_or_slug)
        if org is None or org["deleted_at"] is not None:
            raise NotFound(f"Unknown organization {id_or_slug!r}.")
        return org

    def set_member(self, organization_id: str, user_id: str, role: str = "editor") -> None:
        """Make the user a member with `role`, or change the role of an existing member."""
        if role not in ROLES:
            raise field_error("role", f"{role!r} is not one of {', '.join(ROLES)}.")
        with self._db.write() as conn:
            changed = conn.execute(
                update(organization_members)
                .where(organization_members.c.organization_id == organization_id)
                .where(organization_members.c.user_id == user_id)
                .values(role=role)
            ).rowcount
            if not changed:
                conn.execute(
                    insert(organization_members).values(
                        organization_id=organization_id, user_id=user_id, role=role, since=utcnow()
                    )
                )

    def role(self, user_id: str, organization_id: str) -> str | None:
        with self._db.read() as conn:
            return conn.scalar(
                select(organization_members.c.role)
                .where(organization_members.c.organization_id == organization_id)
                .where(organization_members.c.user_id == user_id)
            )

    def organizations_of(self, user_id: str) -> list[dict[str, Any]]:
        """The user's organizations, each with the user's `role` in it."""
        query = (
            select(organizations, organization_members.c.role)
            .join(organization_members, organization_members.c.organization_id == organizations.c.id)
            .where(organization_members.c.user_id == user_id)
            .where(organizations.c.deleted_at.is_(None))
            .order_by(organizations.c.name)
        )
        with self._db.read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def members_of(self, organization_id: str) -> list[dict[str, Any]]:
        query = (
            select(users, organization_members.c.role, organization_members.c.since)
            .join(organization_members, organization_members.c.user_id == users.c.id)
            .where(organization_members.c.organization_id == organization_id)
            .order_by(organization_members.c.since)
        )
        with self._db.read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    # API tokens

    def create_token(
        self, user_id: str, name: str = "", *, expires_at: datetime | None = None
    ) -> tuple[str, dict[str, Any]]:
        """A new token for the user: (the plain token, to show once; the stored record)."""
        token = new_api_token()
        token_id = new_object_id()
        with self._db.write() as conn:
            conn.execute(
                insert(api_tokens).values(
                    id=token_id, user_id=user_id, name=name, token_hash=hash_api_token(token),
                    token_prefix=token[:10], created_at=utcnow(), expires_at=expires_at,
                )
            )
        record = self._one(select(api_tokens).where(api_tokens.c.id == token_id))
        assert record is not None
        return token, record

    def tokens_of(self, user_id: str) -> list[dict[str, Any]]:
        query = select(api_tokens).where(api_tokens.c.user_id == user_id).order_by(api_tokens.c.created_at)
        with self._db.read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def revoke_token(self, token_id: str, *, user_id: str | None = None) -> None:
        """Revoke a token (only one of `user_id`'s when given); revoking twice is harmless."""
        query = select(api_tokens.c.revoked_at).where(api_tokens.c.id == token_id)
        if user_id is not None:
            query = query.where(api_tokens.c.user_id == user_id)
        with self._db.write() as conn:
            found = conn.execute(query).first()
            if found is None:
                raise NotFound(f"Unknown API token {token_id!r}.")
            if found.revoked_at is None:
                conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=utcnow()))

    def authenticate(self, token: str, data_version: int | None = None) -> dict[str, Any]:
        """The user a token belongs to; `Unauthorized` with udata's message otherwise. The token
        and its user are read once per data version (db.VersionedReads; the version committed now
        unless the caller read it already): revoking a token, or deleting its user, is a write,
        after which the next request reads them again."""
        token_hash = hash_api_token(token)
        version = self._db.data_version() if data_version is None else data_version
        found, user = self._db.reads.get(version, ("api-token", token_hash), lambda: self._token_owner(token_hash))
        now = utcnow()
        if found is None or found["user_deleted_at"] is not None:
            raise Unauthorized(INVALID_TOKEN)
        if found["revoked_at"] is not None:
            raise Unauthorized(REVOKED_TOKEN)
        if found["expires_at"] is not None and found["expires_at"] <= now:
            raise Unauthorized(EXPIRED_TOKEN)
        with self._last_used_lock:
            last_used = max(filter(None, (found["last_used_at"], self._last_used_written.get(found["id"]))), default=None)
            due = last_used is None or now - last_used > _LAST_USED_RESOLUTION
            if due:
                self._last_used_written[found["id"]] = now
        if due:
            # Not a change to what the API shows: the data version stays. Moving it emptied every
            # process's cache of anonymous answers once a minute per key in use.
            with self._db.write(changes_data=False) as conn:
                conn.execute(update(api_tokens).where(api_tokens.c.id == found["id"]).values(last_used_at=now))
        return dict(user)

    def _token_owner(self, token_hash: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(the token with its user's deletion time, its user), both None for an unknown token."""
        query = (
            select(api_tokens, users.c.deleted_at.label("user_deleted_at"))
            .join(users, users.c.id == api_tokens.c.user_id)
            .where(api_tokens.c.token_hash == token_hash)
        )
        found = self._one(query)
        return (found, self.require_user(found["user_id"])) if found is not None else (None, None)

    # Helpers

    def _one(self, query: Any) -> dict[str, Any] | None:
        with self._db.read() as conn:
            row: RowMapping | None = conn.execute(query).mappings().first()
        return None if row is None else dict(row)

