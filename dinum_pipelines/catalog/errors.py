"""The catalog's failures, each carrying the HTTP status and body udata would answer with.

Storage, validation and HTTP layers raise the same exceptions; the app turns them into
`{"message": ...}` (plus `errors` for validation) and the CLI into an exit message.
"""

from __future__ import annotations

from typing import Any

PERMISSION_DENIED = "You do not have the permission to modify that object."
AUTHENTICATION_REQUIRED = "Authentication required: send a valid API key in the X-API-KEY header."


class CatalogError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"message": self.message}


class ValidationError(CatalogError):
    def __init__(self, errors: dict[str, list[str]], message: str = "Validation error") -> None:
        super().__init__(message)
        self.errors = errors

    def body(self) -> dict[str, Any]:
        return {"errors": self.errors, "message": self.message}

    def __str__(self) -> str:
        details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in self.errors.items())
        return f"{self.message} ({details})"


class Unauthorized(CatalogError):
    status = 401


class Forbidden(CatalogError):
    status = 403

    def __init__(self, message: str = PERMISSION_DENIED) -> None:
        super().__init__(message)


class NotFound(CatalogError):
    status = 404


class Conflict(CatalogError):
    status = 409


class Gone(CatalogError):
    status = 410


class UnsupportedMediaType(CatalogError):
    status = 415


def field_error(field: str, message: str) -> ValidationError:
    return ValidationError({field: [message]})
