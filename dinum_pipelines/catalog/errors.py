"""The catalog's failures, each carrying the HTTP status and body udata would answer with.

Storage, validation and HTTP layers raise the same exceptions; the app turns them into
`{"message": ...}` (plus `errors` for validation) and the CLI into an exit message.
"""

from __future__ import annotations

from typing import Any

from dinum_pipelines.catalog.api_schemas import STRING, Json, array, obj

PERMISSION_DENIED = "You do not have the permission to modify that object."
AUTHENTICATION_REQUIRED = "Authentication required: send a valid API key in the X-API-KEY header."


# The bodies below, as the OpenAPI document shows them: `{"message"}`, plus `errors` (field ->
# messages) for validation, and the body of an unexpected error (a 500).
ERROR_BODY: Json = obj({"message": STRING, "errors": {"type": "object", "additionalProperties": array(STRING)}}, optional=["errors"])
SERVER_ERROR_BODY: Json = obj({
    "message": STRING,
    "status": {"type": "integer", "enum": [500]},
    "request_id": {**STRING, "description": "Also in the X-Request-Id header and in the log line with the traceback"},
})


def server_error_body(request_id: str) -> dict[str, Any]:
    return {"message": "Internal server error", "status": 500, "request_id": request_id}


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
