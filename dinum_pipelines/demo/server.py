"""The demo administrations' HTTP server, on loopback, with real caching headers.

The ingest asset decides whether to download again from `ETag` and `Last-Modified`, so the demo
server must behave like a well-configured web server, not like a test double: strong ETags
(a hash of the bytes), a fixed `Last-Modified` per file (never "now", so a restart does not look
like a new version), 304 answers to `If-None-Match` / `If-Modified-Since`, 404 for unknown paths,
`Content-Length` and a precise `Content-Type` (`text/csv; charset=windows-1252`). Tests and the
demo change a file while the server runs (`publish`, `remove`) to simulate an administration that
updates, breaks or withdraws a file; `requests_seen` lets them check what the pipeline asked for.

Files live at `/<administration-slug>/<file>`; the registry files reach them through
`${DINUM_DEMO_ADMIN_URL:-http://127.0.0.1:8765}/...`.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import unquote, urlsplit

from dinum_pipelines.demo.administrations import DEMO_FILES, DemoFile

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
# The environment variable the registry files read the administrations' base URL from.
ADMIN_URL_ENV = "DINUM_DEMO_ADMIN_URL"
# Last-Modified of a file published at a new path without an explicit date (not the clock: reproducible).
NEW_FILE_LAST_MODIFIED = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedFile:
    content: bytes
    content_type: str
    last_modified: datetime
    etag: str = field(init=False)

    def __post_init__(self) -> None:
        if self.last_modified.tzinfo is None:
            raise ValueError("last_modified must be timezone-aware")
        # HTTP dates have a one-second resolution; keep exactly what the header says.
        object.__setattr__(self, "last_modified", self.last_modified.astimezone(UTC).replace(microsecond=0))
        object.__setattr__(self, "etag", f'"{hashlib.sha256(self.content).hexdigest()[:32]}"')

    @classmethod
    def from_demo_file(cls, file: DemoFile) -> ServedFile:
        return cls(file.generate(), file.content_type, file.last_modified)

    @property
    def last_modified_header(self) -> str:
        return format_datetime(self.last_modified, usegmt=True)


@dataclass(frozen=True)
class ServedRequest:
    """One request the server answered, for tests to check conditional requests."""

    method: str
    path: str
    status: int
    headers: Mapping[str, str]


def _etag_matches(if_none_match: str, etag: str) -> bool:
    # If-None-Match uses the weak comparison (RFC 9110 §13.1.2): W/"x" matches "x".
    candidates = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in candidates or etag in candidates


def _not_modified_since(if_modified_since: str, last_modified: datetime) -> bool:
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an unparsable date is ignored, as RFC 9110 §13.1.3 requires
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return last_modified <= since


class _Handler(BaseHTTPRequestHandler):
    server: _AdministrationsHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "DemoAdministration/1.0"

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        if path == "/":
            index = "".join(f"{p}\n" for p in sorted(self.server.administrations.paths)).encode()
            self._send(HTTPStatus.OK, path, index, "text/plain; charset=utf-8", send_body)
            return
        served = self.server.administrations.get(path)
        if served is None:
            self._send(HTTPStatus.NOT_FOUND, path, b"Not Found\n", "text/plain; charset=utf-8", send_body)
            return
        validators = {"ETag": served.etag, "Last-Modified": served.last_modified_header}
        if_none_match = self.headers.get("If-None-Match")
        if_modified_since = self.headers.get("If-Modified-Since")
        # If-None-Match takes precedence: If-Modified-Since is ignored when it is present.
        if (if_none_match is not None and _etag_matches(if_none_match, served.etag)) or (
            if_none_match is None
            and if_modified_since is not None
            and _not_modified_since(if_modified_since, served.last_modified)
        ):
            self._send(HTTPStatus.NOT_MODIFIED, path, None, None, send_body, validators)
            return
        self._send(HTTPStatus.OK, path, served.content, served.content_type, send_body, validators)

    def _send(
        self,
        status: HTTPStatus,
        path: str,
        body: bytes | None,
        content_type: str | None,
        send_body: bool,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.server.administrations.record(ServedRequest(self.command, path, int(status), dict(self.headers.items())))
        self.send_response(status)
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", content_type or "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if body is not None and send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the stdlib's signature)
        logger.debug("%s - %s", self.address_string(), format % args)


class _AdministrationsHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], administrations: RunningAdministrations) -> None:
        self.administrations = administrations
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        # Clients hanging up mid-response are routine; keep them out of the demo's stderr.
        logger.debug("error while serving %s", client_address, exc_info=True)


class RunningAdministrations:
    """A started server. Stop it with `stop()` or use it as a context manager."""

    def __init__(self, files: Mapping[str, ServedFile], host: str, port: int) -> None:
        self._initial_files = {_normalize(path): served for path, served in files.items()}
        self._files = dict(self._initial_files)
        self._lock = threading.Lock()
        self._requests: list[ServedRequest] = []
        self._server = _AdministrationsHTTPServer((host, port), self)
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"demo-administrations-{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL without a trailing slash: the value for `DINUM_DEMO_ADMIN_URL`."""
        return f"http://{self.host}:{self.port}"

    def url_for(self, path: str) -> str:
        return self.url + _normalize(path)

    @property
    def paths(self) -> list[str]:
        with self._lock:
            return sorted(self._files)

    def get(self, path: str) -> ServedFile | None:
        with self._lock:
            return self._files.get(_normalize(path))

    def publish(
        self,
        path: str,
        content: bytes,
        *,
        content_type: str | None = None,
        last_modified: datetime | None = None,
    ) -> ServedFile:
        """Serve `content` at `path` from now on, as an administration updating its file would.

        Without `last_modified`, a changed file gets its previous date plus one day (deterministic,
        and later than what clients cached), an unchanged one keeps its date, a new one the current
        `NEW_FILE_LAST_MODIFIED`. The content type defaults to the previous one, else is guessed
        from the extension.
        """
        path = _normalize(path)
        with self._lock:
            previous = self._files.get(path)
            if content_type is None:
                content_type = previous.content_type if previous else _guess_content_type(path)
            if last_modified is None:
                if previous is None:
                    last_modified = NEW_FILE_LAST_MODIFIED
                elif previous.content == content:
                    last_modified = previous.last_modified
                else:
                    last_modified = previous.last_modified + timedelta(days=1)
            served = ServedFile(content, content_type, last_modified)
            self._files[path] = served
        return served

    def remove(self, path: str) -> None:
        """Withdraw a file: it answers 404 from now on."""
        with self._lock:
            del self._files[_normalize(path)]

    def reset(self) -> None:
        """Serve the files the server started with again, and forget the recorded requests."""
        with self._lock:
            self._files = dict(self._initial_files)
            self._requests.clear()

    def record(self, request: ServedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests_seen(self) -> list[ServedRequest]:
        with self._lock:
            return list(self._requests)

    def stop(self) -> None:
        """Stop serving and release the port; calling it twice is harmless."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> RunningAdministrations:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def _normalize(path: str) -> str:
    return "/" + path.lstrip("/")


def _guess_content_type(path: str) -> str:
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"


def demo_served_files() -> dict[str, ServedFile]:
    """The demo administrations' generated files, by path."""
    return {file.path: ServedFile.from_demo_file(file) for file in DEMO_FILES}


def serve_administrations(
    host: str = DEFAULT_HOST,
    port: int = 0,
    files: Mapping[str, ServedFile] | None = None,
) -> RunningAdministrations:
    """Start serving in a daemon thread and return at once; port 0 picks a free port.

    `files` maps paths (`/<administration>/<file>`) to what they serve; by default the demo
    administrations' generated files (`administrations.DEMO_FILES`).
    """
    return RunningAdministrations(demo_served_files() if files is None else files, host, port)
