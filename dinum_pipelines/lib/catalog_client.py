"""A udata API v1 client: the only code that talks to a catalog.

It speaks to the project's own catalog and to demo.data.gouv.fr or www.data.gouv.fr alike;
only the base URL and the API key change. The key travels in the `X-API-KEY` header and is
never put in an error message, a log line or a repr.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
import urllib3

from dinum_pipelines.lib.http import make_session


class CatalogError(RuntimeError):
    """The catalog refused or failed a call, or never answered; carries the HTTP status (0: no
    answer) and udata's message, so that a failed run says which catalog failed and how."""

    def __init__(self, method: str, url: str, status: int, body: str, retries: int = 0):
        self.status = status
        after = f" after {retries} retries" if retries else ""
        outcome = f"HTTP {status}{after}: {body[:500]}" if status else f"no answer{after} ({body[:300]})"
        super().__init__(f"catalog {method} {url} -> {outcome}")


def send(session: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
    """One call to a catalog through `session` (which retries what is safe to retry, see
    lib/http.make_session); an error status or no answer at all raise CatalogError. The API key
    travels in a header, which neither message quotes."""
    try:
        response = session.request(method, url, **kwargs)
    except requests.RequestException as exc:
        cause = exc.args[0] if exc.args and isinstance(exc.args[0], urllib3.exceptions.MaxRetryError) else None
        retries = session.get_adapter(url).max_retries.total if cause is not None else 0
        reason = getattr(cause, "reason", None) or exc
        raise CatalogError(method, url, 0, f"{type(reason).__name__}: {reason}", retries or 0) from None
    if response.status_code >= 400:
        history = getattr(getattr(response.raw, "retries", None), "history", ())
        raise CatalogError(method, url, response.status_code, response.text, len(history))
    return response


class UdataClient:
    def __init__(self, base_url: str, api_key: str | None, session: requests.Session | None = None, timeout: float = 120):
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.session = session or make_session(retries=3, backoff_factor=0.5)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"UdataClient({self.base_url!r}, api_key={'***' if self._api_key else None})"

    def _url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}/api/{path.lstrip('/')}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = self._url(path)
        headers = kwargs.pop("headers", {})
        if self._api_key and method != "GET":
            headers["X-API-KEY"] = self._api_key
        response = send(self.session, method, url, headers=headers, timeout=self.timeout, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # Datasets
    def get_dataset(self, dataset_id: str) -> dict:
        return self._call("GET", f"1/datasets/{dataset_id}/")

    def create_dataset(self, payload: dict) -> dict:
        return self._call("POST", "1/datasets/", json=payload)

    def update_dataset(self, dataset_id: str, payload: dict) -> dict:
        return self._call("PUT", f"1/datasets/{dataset_id}/", json=payload)

    def iter_organization_datasets(self, organization: str, page_size: int = 100) -> Iterator[dict]:
        """Every dataset of an organization, private ones included when the key is a member's."""
        url: str | None = self._url(f"1/organizations/{organization}/datasets/?page_size={page_size}")
        while url:
            # Authenticated read so that private (draft) datasets are listed too.
            headers = {"X-API-KEY": self._api_key} if self._api_key else {}
            page = self._call("GET", url, headers=headers)
            yield from page["data"]
            url = page.get("next_page")

    def delete_dataset(self, dataset_id: str) -> None:
        self._call("DELETE", f"1/datasets/{dataset_id}/")

    def get_organization(self, organization: str) -> dict:
        return self._call("GET", f"1/organizations/{organization}/")

    # Resources
    def upload_resource(self, dataset_id: str, path: Path) -> dict:
        return self._upload(f"1/datasets/{dataset_id}/upload/", path)

    def replace_resource_file(self, dataset_id: str, resource_id: str, path: Path) -> dict:
        return self._upload(f"1/datasets/{dataset_id}/resources/{resource_id}/upload/", path)

    def _upload(self, path_in_api: str, path: Path) -> dict:
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        with path.open("rb") as handle:
            return self._call("POST", path_in_api, files={"file": (path.name, handle, mime)})

    def update_resource(self, dataset_id: str, resource_id: str, payload: dict) -> dict:
        return self._call("PUT", f"1/datasets/{dataset_id}/resources/{resource_id}/", json=payload)

    def delete_resource(self, dataset_id: str, resource_id: str) -> None:
        self._call("DELETE", f"1/datasets/{dataset_id}/resources/{resource_id}/")

    def update_resource_extras(self, dataset_id: str, resource_id: str, extras: dict) -> dict:
        return self._call("PUT", f"2/datasets/{dataset_id}/resources/{resource_id}/extras/", json=extras)
