"""schemathesis hooks for test_schemathesis.py: the refusals of schema-valid requests that are the
catalog's rules and that an OpenAPI 3.0 document cannot state, dropped one by one.

Each is a 400 whose body names exactly that rule; any other refusal of a schema-valid request
still fails the run:
- a key of a free object (extras, a geometry, the v2 extras bodies) holding a control character
  or a lone surrogate: no database column stores one, and OpenAPI 3.0 has no `propertyNames` to
  say so of keys (their values are said, validation.FREE_VALUE_SCHEMA);
- a reference to an organization or a dataset that does not exist, or that the caller may not
  publish under (udata's 400 naming the field): a document cannot list which ids exist;
- a reorder that does not name every resource of the dataset exactly once: the same;
- a dataset's organization changed by PUT (README.md: a transfer is not a field edit);
- a tag whose slug is shorter than 3 or longer than 96 characters (udata's rule, on the slug: a
  document states lengths of what is sent);
- a date that the calendar has not (2024-02-31), or a period that ends before it starts;
- a webhook whose URL's host is not a public address (the catalog resolves it to know);
- a chunked upload's part that does not fit the upload it names (its rank beyond the upload's
  last, its bytes beyond its size, or parts never sent before the final request: udata's
  UploadStatus errors), which depends on the parts sent before.

And one acceptance of an invalid request, schemathesis' own: a multipart field sent with another
JSON type (`true` for a file name), which the multipart body turns into the same text.

Loaded by the schemathesis CLI through SCHEMATHESIS_HOOKS (test_schemathesis.run_schemathesis).
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis

from dinum_pipelines.catalog.chunks import PART_BEYOND_LIMIT, PART_BEYOND_TOTAL
from dinum_pipelines.catalog.validation import UNSTORABLE, UNSTORABLE_TEXT

SCHEMA_VALID_REQUEST_REJECTED = "ST202"
SCHEMA_VIOLATING_REQUEST_ACCEPTED = "ST201"
RULES = (
    "Unknown organization ", "Unknown dataset ", "Permission denied for this organization",
    "The list must contain every resource id of the dataset exactly once.",
    "The organization of a dataset cannot be changed",
    "Tags must be 3 to 96 characters long",
    "The URL's host is not a public address",
    "The end date must not be before the start date.",
    "is not an ISO 8601 date.",
    PART_BEYOND_TOTAL,
    PART_BEYOND_LIMIT,
)


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


def holds_unstorable_key(value: Any) -> bool:
    """A key, at any depth of `value`, holding a control character or a lone surrogate."""
    if isinstance(value, dict):
        return any(UNSTORABLE.search(key) or holds_unstorable_key(item) for key, item in value.items())
    if isinstance(value, list):
        return any(holds_unstorable_key(item) for item in value)
    return False


def is_documented_refusal(status: int, content: bytes, body: Any) -> bool:
    """A 400 for one of the module docstring's rules alone."""
    if status != 400:
        return False
    answer = _json(content)
    if isinstance(answer, dict) and answer.get("success") is False:  # udata's UploadStatus
        return True
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if not isinstance(errors, dict) or not errors:
        return False
    unstorable_key = holds_unstorable_key(body)
    return all(
        (message == UNSTORABLE_TEXT and unstorable_key) or message.startswith(RULES) or message.endswith(RULES)
        for field_messages in errors.values() for message in field_messages
    )


def is_multipart_type_change(failure: Any, media_type: str | None) -> bool:
    """An invalid request whose only fault was a field's JSON type in a multipart body, where
    every field is text: the boolean `true` and the text "true" are the same bytes."""
    return (
        failure.code == SCHEMA_VIOLATING_REQUEST_ACCEPTED and (media_type or "").startswith("multipart/form-data")
        and "violates `type`" in failure.message
    )


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but a schema-valid request refused by one of the documented rules, and
    a multipart field's type that its serialization erased."""
    if is_multipart_type_change(failure, case.media_type):
        return False
    if failure.code != SCHEMA_VALID_REQUEST_REJECTED:
        return True
    return not is_documented_refusal(response.status_code, response.content, case.body)
