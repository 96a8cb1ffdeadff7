"""Downloading a source file from an administration's server, safely and only when it changed.

Administrations' servers are slow, flaky and sometimes answer an HTML error page with status 200.
`fetch_to_file` streams the body to a temporary file next to its destination (never the whole
file in memory), hashes it on the way, checks it is complete and is not an HTML page, and uses
conditional GET so an unchanged source costs a 304 and no new version.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from dinum_pipelines.lib.streams import BackgroundSink
from dinum_pipelines.lib.uncached import UncachedWriter

USER_AGENT = "dinum-pipelines/0.1 (+https://github.com/etalab; open data republication)"
CHUNK_SIZE = 1024 * 1024
# Blocks received ahead of the hashing and of the writing: memory stays at a few CHUNK_SIZE.
_BLOCKS_AHEAD = 4
# Headers kept in the raw store's manifest: enough to explain a version and to revalidate it.
KEPT_HEADERS = ("content-type", "content-length", "content-encoding", "etag", "last-modified", "date")
_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body")
# Content-Encodings we decompress ourselves; anything else is left to requests.
_ZLIB_ENCODINGS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}


class FetchError(RuntimeError):
    """The source could not be downloaded, or what came back is not the data (the message says why).

    `transient` is False when trying again later cannot help (a 404, a file over the size limit):
    the download step's retry policy then stops at once."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


# Client errors that mean "not now" rather than "never": worth another try later.
RETRYABLE_CLIENT_ERRORS = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Validators:
    """What a server told us about the version we hold, to ask it "has it changed since?"."""

    etag: str | None = None
    last_modified: str | None = None

    def request_headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True)
class Download:
    """Outcome of one fetch. `path` is None when the server answered 304 Not Modified."""

    url: str
    status_code: int
    fetched_at: datetime
    headers: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    sha256: str | None = None
    size: int | None = None

    @property
    def not_modified(self) -> bool:
        return self.status_code == 304

    @property
    def validators(self) -> Validators:
        return Validators(self.headers.get("etag"), self.headers.get("last-modified"))


# Bytes of a request body read and sent at a time (urllib3 reads 16 KiB): the catalog client's
# uploads stream files of gigabytes, 1.8 GB is then 1,800 reads and socket writes, not 110,000.
SEND_BLOCK_BYTES = 1 << 20


class _LargeBlockAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        kwargs.setdefault("blocksize", SEND_BLOCK_BYTES)
        super().init_poolmanager(*args, **kwargs)


def make_session(retries: int = 4, backoff_factor: float = 1.0) -> requests.Session:
    """A session that retries connection errors, 429 and 5xx with exponential backoff.

    urllib3 honours `Retry-After` on 429 and 503, so a server asking us to wait is obeyed. Only
    idempotent methods are retried (GET, HEAD, PUT, DELETE, OPTIONS): a POST that failed after
    the server acted on it would act twice (a second dataset, a second file); a refused
    connection, which the server never saw, is retried whatever the method.
    """
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff_factor,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=Retry.DEFAULT_ALLOWED_METHODS,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = _LargeBlockAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def looks_like_html(head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith(_HTML_MARKERS)


class _Body:
    """The response body, decoded, with the count of bytes that came over the wire.

    urllib3 decompresses a gzip body without checking that the stream ended: a gzip cut short
    (with a Content-Length that matches what was sent) yields a silently shorter file. So gzip
    and deflate are decompressed here, and a stream that stops before its end marker is an error.
    """

    def __init__(self, response: requests.Response, url: str) -> None:
        self._response = response
        self._url = url
        self.wire_bytes = 0
        encoding = response.headers.get("content-encoding", "").strip().lower()
        self._wbits = _ZLIB_ENCODINGS.get(encoding)

    def chunks(self) -> Iterator[bytes]:
        if self._wbits is None:
            for chunk in self._response.iter_content(CHUNK_SIZE):
                self.wire_bytes += len(chunk)
                yield chunk
            return
        decompressor = zlib.decompressobj(self._wbits)
        for raw in self._response.raw.stream(CHUNK_SIZE, decode_content=False):
            self.wire_bytes += len(raw)
            try:
                while raw:
                    yield decompressor.decompress(raw)
                    # Concatenated gzip members (allowed by RFC 1952) follow the end marker.
                    raw = decompressor.unused_data if decompressor.eof else b""
                    if raw:
                        decompressor = zlib.decompressobj(self._wbits)
            except zlib.error as exc:
                raise FetchError(f"{self._url}: corrupt compressed body after {self.wire_bytes} bytes: {exc}") from exc
        if not decompressor.eof:
            raise FetchError(
                f"{self._url}: truncated compressed body: the gzip stream ends without its end marker "
                f"after {self.wire_bytes} bytes"
            )
        yield decompressor.flush()


def fetch_to_file(
    session: requests.Session,
    url: str,
    directory: Path,
    *,
    previous: Validators | None = None,
    timeout: tuple[float, float] = (10.0, 60.0),
    max_bytes: int | None = None,
    expect_html: bool = False,
) -> Download:
    """GET `url` into a new temporary file inside `directory` (the caller moves or deletes it)."""
    directory.mkdir(parents=True, exist_ok=True)
    headers = previous.request_headers() if previous else {}
    try:
        response = session.get(url, headers=headers, timeout=timeout, stream=True)
    except requests.RequestException as exc:
        raise FetchError(f"{url}: request failed: {exc}") from exc
    fetched_at = datetime.now(UTC)
    kept = {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
    with response:
        if response.status_code == 304:
            return Download(url=url, status_code=304, fetched_at=fetched_at, headers=kept)
        if response.status_code != 200:
            transient = response.status_code >= 500 or response.status_code in RETRYABLE_CLIENT_ERRORS
            raise FetchError(f"{url}: HTTP {response.status_code} {response.reason}", transient=transient)
        declared = response.headers.get("content-length")
        # Content-Length counts the bytes on the wire (compressed ones when there is a Content-Encoding).
        expected_size = int(declared) if declared and declared.isdigit() else None
        if max_bytes is not None and expected_size is not None and expected_size > max_bytes:
            raise FetchError(f"{url}: file is {expected_size} bytes, over the {max_bytes}-byte limit", transient=False)
        body = _Body(response, url)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(prefix=".download-", dir=directory)
        tmp_path = Path(tmp_name)
        try:
            # Past the page cache (lib/uncached.py): the file is read once, by the clean step,
            # which reads it the same way.
            out = UncachedWriter(tmp_path, fd, 0)
            try:
                # Receiving, hashing and writing each take a core's second per GB or so: in
                # threads of their own, with a few blocks between them, they overlap.
                hashing = BackgroundSink(digest.update, depth=_BLOCKS_AHEAD, name="download-sha256")
                writing = BackgroundSink(out.write, depth=_BLOCKS_AHEAD, name="download-writer")
                try:
                    for chunk in body.chunks():
                        if size == 0 and not expect_html and looks_like_html(chunk[:512]):
                            raise FetchError(
                                f"{url}: the server answered an HTML page instead of the data "
                                f"(Content-Type {response.headers.get('content-type', 'unknown')!r}); "
                                "the source is probably down or has moved"
                            )
                        size += len(chunk)
                        if max_bytes is not None and size > max_bytes:
                            raise FetchError(f"{url}: body exceeds the {max_bytes}-byte limit", transient=False)
                        hashing.put(chunk)
                        writing.put(chunk)
                    hashing.close()
                    writing.close()
                    out.flush()
                except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                    if isinstance(exc, FetchError):
                        raise
                    raise FetchError(f"{url}: download interrupted after {size} bytes: {exc}") from exc
                finally:
                    hashing.close(raise_error=False)
                    writing.close(raise_error=False)
            finally:
                out.close()
            if expected_size is not None and body.wire_bytes != expected_size:
                raise FetchError(f"{url}: truncated body: received {body.wire_bytes} of {expected_size} bytes")
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
    return Download(
        url=url,
        status_code=200,
        fetched_at=fetched_at,
        headers=kept,
        path=tmp_path,
        sha256=digest.hexdigest(),
        size=size,
    )
