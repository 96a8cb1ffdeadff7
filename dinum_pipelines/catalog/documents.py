"""A dataset's udata document, rendered by the transaction that writes the dataset and stored
beside it (`db.dataset_documents`), so that a first answer reads one row per dataset.

At 100,000 datasets a listing's first answer spent more time reading its 20 datasets, their
organizations and their 40 resources, building records and rendering them, than finding them
(bench/README.md, the catalog's sixth pass); a dataset's GET did the same for one. Every write to a dataset
(datasets.py, `document_changed`) renders its document again in the same transaction, so the
stored text is always the one a rendering would give now, with two exceptions handled here:

- URLs are absolute and depend on the host the catalog is reached under. Documents are rendered
  with a placeholder base URL, a control character that no stored text can hold (the API refuses
  them: call.Call.json), and `served` puts the request's base URL in its place. A record that
  holds the character all the same (written around the API) gets no stored document.
- `quality.update_fulfilled_in_time` turns with the clock: a document holds `until` the instant
  it would (quality_score.update_fulfilled_in_time_until); past it, the dataset is rendered when
  read, as is one without a document (a catalog upgraded from revision 0015, an organization
  renamed: `Datasets.store_missing_documents` fills them in).

The text is the JSON that Starlette's JSONResponse would send for the same document.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from dinum_pipelines.catalog import render
from dinum_pipelines.catalog.quality_score import update_fulfilled_in_time_until
from dinum_pipelines.catalog.render import Renderer

_PLACEHOLDER = "\x01"
_RENDERER = Renderer(_PLACEHOLDER)
_ENCODED_PLACEHOLDER = json.dumps(_PLACEHOLDER)[1:-1]  # \u0001, as JSON escapes it
_URL_START = f'"{_ENCODED_PLACEHOLDER}'  # a string value built on the placeholder base


def dumps(data: Any) -> str:
    """JSON text as Starlette's JSONResponse writes it."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


def stored_document(record: dict[str, Any]) -> tuple[str, datetime | None] | None:
    """The document to store for a dataset `record` (with its organization, owner and resources)
    and until when it holds (None: until the dataset changes); None if the record's own text holds
    the placeholder, which would be taken for a URL."""
    if _ENCODED_PLACEHOLDER in json.dumps(record, default=str):
        return None
    # The renderer's clock, its quality criterion's, read before it renders: if the criterion turns
    # in between, the document is rendered late and already expired, never on time past its turn.
    now = render.utcnow()
    return dumps(_RENDERER.dataset(record)), update_fulfilled_in_time_until(record, now)


def holds(valid_until: datetime | None) -> bool:
    """Whether a stored document still shows what rendering the dataset now would (by the
    renderer's clock, the one its quality criterion reads)."""
    return valid_until is None or render.utcnow() <= valid_until


def served(body: str, base_url: str) -> str:
    """A stored document with `base_url` (a Renderer's) in its URLs."""
    return body.replace(_URL_START, '"' + json.dumps(base_url, ensure_ascii=False)[1:-1])


def page_text(bodies: list[str], *, total: int, page: int, page_size: int, page_url: Callable[[int], str]) -> str:
    """udata's pager (Renderer.page) around documents already in JSON."""
    envelope = dumps(Renderer.page([], total=total, page=page, page_size=page_size, page_url=page_url))
    empty_data = '{"data":[]'
    assert envelope.startswith(empty_data)
    return '{"data":[' + ",".join(bodies) + "]" + envelope[len(empty_data):]
