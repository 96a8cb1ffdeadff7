"""A udata API v1 client: the only code that talks to a catalog.

It speaks to the project's own catalog and to demo.data.gouv.fr or www.data.gouv.fr alike;
only the base URL and the API key change. The key travels in the `X-API-KEY` header and is
never put in an error message, a log line or a repr.

Files are sent from disk as they go out, never built into a body in memory: a small one as one
streamed multipart upload, a large one with udata's chunked upload protocol (parts of a few MiB,
each retried on its own, since storing a part twice is harmless; then a final request that has the
catalog assemble them), so a multi-GB file survives a dropped connection without starting over.
A publication of several large files sends the next file's parts while the current one goes
(`send_parts_ahead`): the catalog writes both, and the run waits for neither alone.
"""

from __future__ import annotations

import copy
import logging
import mimetypes
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import requests
import urllib3

from dinum_pipelines.lib.ingest.http import make_session

CHUNKED_ABOVE_BYTES = 64 << 20
# Each part waits for the catalog's answer before the next goes: the catalog idles between
# parts, less with fewer of them (3 GB on loopback: 8.5-10.1 s in 8 MiB parts, 5.2-6.0 s in 32).
CHUNK_BYTES = 32 << 20
PART_ATTEMPTS = 5
_READ_BLOCK = 1 << 20  # what read() without a size returns at most: never the whole file
_log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class FileSlice:
    path: Path
    offset: int
    length: int


class MultipartBody:
    """A multipart/form-data body read from disk while it is sent: the text fields, then (if
    any) the bytes of `file`. It has a length, so requests sends it with a Content-Length and
    reads it block by block; one object per attempt, since sending consumes it."""

    def __init__(self, fields: dict[str, str], file: FileSlice | None = None, field_name: str = "file") -> None:
        boundary = secrets.token_hex(16)
        self.content_type = f"multipart/form-data; boundary={boundary}"
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields.items()
        )
        tail = f"--{boundary}--\r\n".encode()
        self._file = file
        self._handle: BinaryIO | None = None
        self._remaining = 0
        if file is not None:
            quoted = file.path.name.replace('"', "%22").replace("\r", "").replace("\n", "")
            mime = mimetypes.guess_type(file.path.name)[0] or "application/octet-stream"
            head += (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; filename="{quoted}"\r\n'
                f"Content-Type: {mime}\r\n\r\n"
            ).encode()
            tail = b"\r\n" + tail
        self._head, self._tail = head, tail
        self._length = len(head) + (file.length if file else 0) + len(tail)

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        if self._head:
            out, self._head = self._head, b""
            return out
        if self._file is not None and self._handle is None:
            self._handle = self._file.path.open("rb")
            self._handle.seek(self._file.offset)
            self._remaining = self._file.length
        if self._remaining:
            assert self._handle is not None
            block = self._handle.read(min(self._remaining, size if size > 0 else _READ_BLOCK))
            if not block:
                raise OSError(f"{self._file.path.name} is shorter than when its upload began")  # type: ignore[union-attr]
            self._remaining -= len(block)
            return block
        if self._handle is not None:
            self._handle.close()
        out, self._tail = self._tail, b""
        return out


def _worth_sending_again(error: CatalogError) -> bool:
    """No answer, or the catalog overloaded or failing: a part sent again may go through."""
    return error.status == 0 or error.status == 429 or error.status >= 500


@dataclass
class _PartsAhead:
    """The parts of one file being sent by a thread of their own (UdataClient.send_parts_ahead)."""

    upload: dict[str, str]  # the chunked upload's fields: its uuid, file name and number of parts
    size: int
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    sent: bool = False
    error: BaseException | None = None


def _catalog_session() -> requests.Session:
    """A session that retries what is safe to retry (lib/ingest/http.make_session)."""
    return make_session(retries=3, backoff_factor=0.5)


def _upload_path(dataset_id: str, resource_id: str | None) -> str:
    """Where a new file (or a new version of a resource's file) is uploaded: its parts and final request alike."""
    return f"1/datasets/{dataset_id}/" + (f"resources/{resource_id}/upload/" if resource_id else "upload/")


class UdataClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        session: requests.Session | None = None,
        timeout: float = 120,
        *,
        chunked_above: int = CHUNKED_ABOVE_BYTES,
        chunk_size: int = CHUNK_BYTES,
        part_attempts: int = PART_ATTEMPTS,
        part_backoff: float = 1.0,
    ):
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.session = session or _catalog_session()
        self.timeout = timeout
        # Files above `chunked_above` bytes go in parts of `chunk_size`.
        self.chunked_above = chunked_above
        self.chunk_size = chunk_size
        self.part_attempts = part_attempts
        self.part_backoff = part_backoff
        self._ahead: dict[tuple[str, Path], _PartsAhead] = {}

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
        return self._upload(_upload_path(dataset_id, None), path)

    def replace_resource_file(self, dataset_id: str, resource_id: str, path: Path) -> dict:
        return self._upload(_upload_path(dataset_id, resource_id), path)

    def send_parts_ahead(
        self, dataset_id: str, path: Path, resource_id: str | None = None, *, wanted: Callable[[], bool] = lambda: True
    ) -> None:
        """Start sending the parts of a large file from a thread (with a session of its own) while
        the caller sends something else; `upload_resource` (`replace_resource_file` with
        `resource_id`) of the same file then waits for them and sends only the final request,
        which makes the file visible. `wanted` is asked first, in the thread (whether the file
        differs from the one served: its digest may take a while). A file sent in one request is
        not sent ahead. `stop_sending_ahead` ends what a failed publication left going; a part
        that failed for good only means the upload sends its parts itself."""
        path_in_api = _upload_path(dataset_id, resource_id)
        size = path.stat().st_size
        if size <= self.chunked_above or (path_in_api, path) in self._ahead:
            return
        sender = copy.copy(self)  # the same catalog, key and settings; its own session and nothing ahead
        sender.session, sender._ahead = _catalog_session(), {}
        ahead = _PartsAhead(self._new_upload(path, size), size)

        def send() -> None:
            try:
                if wanted():
                    sender._send_parts(path_in_api, path, size, ahead.upload, ahead.stop)
                    ahead.sent = not ahead.stop.is_set()
            except BaseException as exc:  # noqa: BLE001 - reported by the upload, which sends the parts again
                ahead.error = exc
            finally:
                sender.session.close()

        ahead.thread = threading.Thread(target=send, name=f"parts-ahead-{path.name}", daemon=True)
        self._ahead[(path_in_api, path)] = ahead
        ahead.thread.start()

    def stop_sending_ahead(self) -> None:
        """Stop the parts still being sent ahead (after their current part) and forget them."""
        aheads, self._ahead = list(self._ahead.values()), {}
        for ahead in aheads:
            ahead.stop.set()
        for ahead in aheads:
            if ahead.thread is not None:
                ahead.thread.join()

    def _upload(self, path_in_api: str, path: Path) -> dict:
        size = path.stat().st_size
        if size <= self.chunked_above:
            return self._post_form(path_in_api, {}, FileSlice(path, 0, size))
        ahead = self._ahead.pop((path_in_api, path), None)
        if ahead is not None and ahead.thread is not None:
            ahead.thread.join()
            if ahead.sent and ahead.size == size:
                return self._post_form(path_in_api, ahead.upload, None)
            if ahead.error is not None:
                _log.warning("the parts of %s sent ahead failed (%s); sending them again", path.name, ahead.error)
        upload = self._new_upload(path, size)
        self._send_parts(path_in_api, path, size, upload)
        return self._post_form(path_in_api, upload, None)

    def _post_form(self, path_in_api: str, fields: dict[str, str], file: FileSlice | None) -> dict:
        body = MultipartBody(fields, file)
        return self._call("POST", path_in_api, data=body, headers={"Content-Type": body.content_type})

    def _new_upload(self, path: Path, size: int) -> dict[str, str]:
        """udata's chunked upload: every part (retried on its own, `_send_parts`), then the final
        request with these fields, whose answer is the resource, as for a whole upload."""
        return {"uuid": str(uuid.uuid4()), "filename": path.name, "totalparts": str(-(-size // self.chunk_size))}

    def _send_parts(
        self, path_in_api: str, path: Path, size: int, upload: dict[str, str], stop: threading.Event | None = None
    ) -> None:
        total = upload["totalparts"]
        for index, offset in enumerate(range(0, size, self.chunk_size)):
            if stop is not None and stop.is_set():
                return
            length = min(self.chunk_size, size - offset)
            part = {**upload, "partindex": str(index), "partbyteoffset": str(offset), "chunksize": str(length)}
            self._send_part(path_in_api, part, FileSlice(path, offset, length), f"part {index + 1}/{total} of {path.name}")

    def _send_part(self, path_in_api: str, fields: dict[str, str], part: FileSlice, what: str) -> None:
        for attempt in range(1, self.part_attempts + 1):
            try:
                self._post_form(path_in_api, fields, part)
                return
            except CatalogError as error:
                if attempt == self.part_attempts or not _worth_sending_again(error):
                    raise
                delay = self.part_backoff * 2 ** (attempt - 1)
                # The error names the URL and the catalog's answer, never the key (a header).
                _log.warning("%s failed (%s); sending it again in %.1f s", what, error, delay)
                time.sleep(delay)

    def update_resource(self, dataset_id: str, resource_id: str, payload: dict) -> dict:
        return self._call("PUT", f"1/datasets/{dataset_id}/resources/{resource_id}/", json=payload)

    def delete_resource(self, dataset_id: str, resource_id: str) -> None:
        self._call("DELETE", f"1/datasets/{dataset_id}/resources/{resource_id}/")

    def update_resource_extras(self, dataset_id: str, resource_id: str, extras: dict) -> dict:
        return self._call("PUT", f"2/datasets/{dataset_id}/resources/{resource_id}/extras/", json=extras)

    def download(self, url: str, destination: Path, *, user_agent: str | None = None) -> None:
        """A published file (a resource's `url`), streamed to `destination` block by block;
        `user_agent` instead of the session's, to tell the catalog's usage log who reads it."""
        headers = {"User-Agent": user_agent} if user_agent else {}
        response = send(self.session, "GET", url, headers=headers, timeout=self.timeout, stream=True)
        with response, destination.open("wb") as handle:
            for block in response.iter_content(_READ_BLOCK):
                handle.write(block)
