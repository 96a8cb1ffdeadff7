"""Identifiers the catalog hands out: object ids, resource ids, slugs and API tokens.

udata gives datasets, organizations and users 24-hex MongoDB ObjectIds and resources UUIDs; clients
(and the publisher's config files) are used to those shapes, so we produce the same ones.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import unicodedata
import uuid

TOKEN_PREFIX = "udata_"

_NON_SLUG = re.compile(r"[^a-z0-9]+")
# Letters Unicode does not decompose into a base letter plus accents.
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ø": "o", "đ": "d", "ł": "l"})


def new_object_id() -> str:
    """A 24-hex id shaped like a MongoDB ObjectId: 4 bytes of Unix time, then 8 random bytes.

    The time prefix keeps ids roughly ordered by creation, as ObjectIds are.
    """
    return f"{int(time.time()) & 0xFFFFFFFF:08x}{secrets.token_hex(8)}"


def new_resource_id() -> str:
    return str(uuid.uuid4())


def fold(text: str) -> str:
    """Lower case without accents ("Élection" -> "election"): the form slugs and searches compare."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_LIGATURES))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def slugify(text: str, *, max_length: int = 255) -> str:
    """Lower-case ASCII words joined by '-', accents stripped ("Élection 2024" -> "election-2024")."""
    ascii_text = fold(text).encode("ascii", "ignore").decode("ascii")
    return _NON_SLUG.sub("-", ascii_text).strip("-")[:max_length].rstrip("-")


def new_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_api_token(token: str) -> str:
    """What we store instead of the token. A token carries 256 random bits, so a plain SHA-256
    cannot be brute-forced and needs no salt (the same reasoning as GitHub's token storage)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
