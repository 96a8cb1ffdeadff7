"""Anonymous API answers (dataset listings, datasets, row-API pages), cached per process, keyed on
the data version.

A listing costs a count and a page of rows (3-20 ms of database time at 10,000 datasets), a
dataset two queries and its rendering, and reusers' requests repeat. Every write to what the API
shows moves one number in the database (`db.data_version`, moved in the writing transaction
itself), and entries are keyed on it: a process that holds the same number has nothing new to
show. Each process learns the number without a query per request
(`Database.current_data_version`): its own writes move it as they commit, another process's are
seen after one 10 ms poll. So an anonymous reader may be shown the previous state for 10 ms
after a write made elsewhere (250 ms at the very most, on a loaded machine), and a publisher
(who sends a key) never. The one
thing a listing shows that moves without a write is the clock-dependent quality criterion
(`update_fulfilled_in_time`), hence a time-to-live as well. Callers with a key may see private
datasets: they are neither served from the cache nor added to it.

Handlers put their 200 answers in (app.cached_for_anonymous); `AnonymousCacheMiddleware` answers
repeats before routing, on the event loop, from memory: no request object, no worker thread, no
database. That path is what reusers' repeated GETs take, and what makes their latency
(bench/README.md). When the process has not read the version lately (the first requests after a
pause) the middleware lets the request through, and the handler, in a worker thread, reads it
(`Database.fresh_data_version`). Each entry keeps, beside the body, the usage its answer is (a
dataset GET is a view, a row-API page a download on the `tabular` channel): a cached answer is
still counted. A row-API page depends on the resource's file, which only a write changes, so the
data version keys it as well; pages can be large, hence a bound on the cache's bytes as well as
its entries.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
import re
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_ENTRIES = 2048
MAX_BYTES = 64 * 2**20
TIME_TO_LIVE_SECONDS = 60.0
API_KEY_HEADER = "X-API-KEY"  # udata's: a caller who sends one is not anonymous
FIELDS_HEADER = "X-Fields"  # udata's field mask: part of what an answer shows
# As ASGI gives header names: lower case bytes.
_API_KEY_NAME, _FIELDS_NAME = (name.lower().encode("latin-1") for name in (API_KEY_HEADER, FIELDS_HEADER))


@dataclass(frozen=True)
class Usage:
    """The usage event serving an answer records, each time it is served."""

    kind: str
    channel: str
    dataset_id: str
    resource_id: str | None = None


@dataclass(frozen=True)
class CachedAnswer:
    body: bytes  # JSON
    usage: Usage | None = None  # a dataset GET's view, a row-API page's download


class SharedAnswers:
    """The anonymous answers of one node's worker processes, in a folder they share.

    `serve --workers N` runs N processes, each with its own `ResponseCache`: without this, each
    process computed every first answer itself, N times the work of a start or of a write (at
    100,000 datasets, 260 distinct listings cost 10 s of CPU a process: bench/README.md). Here a
    process that computes an answer leaves it in the folder, and the others read it there instead
    of computing it; a process about to compute one takes the answer's lock file (`flock`), so that
    the others wait for it rather than compute it alongside.

    Keys are `anonymous_cache_key`'s: an answer is kept under its data version, one subfolder a
    version, and a process that starts a new version's subfolder removes the older ones. Each
    process writes at most `max_entries` answers and `max_bytes` a version (the folder holds at
    most N times that); an answer older than the time-to-live is not read. Files are written
    whole, then renamed: a reader sees an answer entire or not at all. The folder is the node's
    own (`serve` makes it on local memory, /dev/shm, and removes it when it stops): nothing else
    should write there.
    """

    def __init__(
        self, directory: Path, *, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES,
        time_to_live: float = TIME_TO_LIVE_SECONDS,
    ) -> None:
        self.directory = directory
        self.max_entries, self.max_bytes, self.time_to_live = max_entries, max_bytes, time_to_live
        self._lock = threading.Lock()
        self._version = -1  # the newest this process wrote or locked under
        self._made = -1  # the newest version whose folder this process made
        self._written = (0, 0)  # answers and bytes this process wrote under it
        self._names = itertools.count()

    # Paths are plain strings: each first answer names its file three times (lock, read, write),
    # and pathlib's objects were a quarter of the 0.3 ms of CPU this class cost a first answer.
    def _path(self, key: Hashable) -> tuple[int, str] | None:
        if not (isinstance(key, tuple) and key and isinstance(key[0], int)):
            return None
        name = hashlib.sha256(repr(key[1:]).encode()).hexdigest()
        return key[0], f"{self.directory}/{key[0]}/{name}"

    def _enter(self, version: int) -> bool:
        """Make `version`'s folder, the older ones removed when it is new to this process; False
        for a version older than one this process has seen (its answers are not worth keeping).
        A folder this process made stays until a newer version's maker removes it, and then its
        answers are stale: writers and lockers meeting its absence give up (FileNotFoundError)."""
        with self._lock:
            if version < self._version:
                return False
            newer = version > self._version
            if newer:
                self._version, self._written = version, (0, 0)
            elif version == self._made:
                return True
        (self.directory / str(version)).mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._made = max(self._made, version)
        if newer:
            for entry in self.directory.iterdir():
                if entry.name.isdigit() and int(entry.name) < version:
                    shutil.rmtree(entry, ignore_errors=True)
        return True

    def get(self, key: Hashable) -> tuple[float, CachedAnswer] | None:
        """(age in seconds, answer) when another process left the answer, fresh enough."""
        found = self._path(key)
        if found is None:
            return None
        try:
            with open(found[1], "rb") as file:
                age = time.time() - os.fstat(file.fileno()).st_mtime
                if age > self.time_to_live:
                    return None
                usage, body = file.read().split(b"\n", 1)
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None
        fields = json.loads(usage)
        return max(age, 0.0), CachedAnswer(body, Usage(**fields) if fields else None)

    def put(self, key: Hashable, answer: CachedAnswer) -> None:
        found = self._path(key)
        if found is None:
            return
        version, path = found
        if not self._enter(version):
            return
        with self._lock:
            answers, size = self._written
            if version != self._version or answers >= self.max_entries or size + len(answer.body) > self.max_bytes:
                return
            self._written = (answers + 1, size + len(answer.body))
        temporary = f"{self.directory}/{version}/.{os.getpid()}-{next(self._names)}"
        try:
            with open(temporary, "wb") as file:
                file.write(json.dumps(asdict(answer.usage) if answer.usage else None).encode() + b"\n" + answer.body)
            os.replace(temporary, path)
        except FileNotFoundError:  # another process removed this version's folder: the answer is stale
            with suppress(FileNotFoundError):
                os.unlink(temporary)

    @contextmanager
    def computing(self, key: Hashable) -> Iterator[None]:
        """Hold the answer's lock file: other processes asking for it wait here until it is left."""
        found = self._path(key)
        if found is None:
            yield
            return
        version, path = found
        try:
            if not self._enter(version):
                raise FileNotFoundError
            descriptor = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:  # an old version, or its folder went meanwhile: compute alone
            yield
            return
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # releases the lock


class ResponseCache:
    def __init__(
        self, max_entries: int = MAX_ENTRIES, time_to_live: float = TIME_TO_LIVE_SECONDS, max_bytes: int = MAX_BYTES,
        shared: SharedAnswers | None = None,
    ) -> None:
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._in_flight: dict[Hashable, _Flight] = {}
        self.max_entries = max_entries
        self.time_to_live = time_to_live
        self.max_bytes = max_bytes
        self._bytes = 0
        self.shared = shared  # the other processes' answers, if this process has siblings

    @contextmanager
    def single_flight(self, key: Hashable) -> Iterator[None]:
        """One thread at a time in this block for `key`; the others wait for it, then look again.

        Without it, readers asking for the same uncached answer at once each computed it: when
        a write (or a start) empties the cache under 50 clients, the same listing was computed
        by a dozen threads together (bench/README.md, cold cache).
        """
        with self._lock:
            flight = self._in_flight.setdefault(key, _Flight())
            flight.waiting += 1
        try:
            with flight.lock, self.shared.computing(key) if self.shared else nullcontext():
                yield
        finally:
            with self._lock:
                flight.waiting -= 1
                if flight.waiting == 0:
                    del self._in_flight[key]

    def get(self, key: Hashable) -> Any | None:
        """The answer kept for `key`: this process's, else one another process left (`shared`)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                stored_at, value = entry
                if time.monotonic() - stored_at <= self.time_to_live:
                    self._entries.move_to_end(key)
                    return value
                self._drop(key)
        found = self.shared.get(key) if self.shared else None
        if found is None:
            return None
        age, answer = found
        self._keep(key, time.monotonic() - age, answer)
        return answer

    def put(self, key: Hashable, value: Any) -> None:
        self._keep(key, time.monotonic(), value)
        if self.shared and isinstance(value, CachedAnswer):
            self.shared.put(key, value)

    def _keep(self, key: Hashable, stored_at: float, value: Any) -> None:
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (stored_at, value)
            self._bytes += _size(value)
            while self._entries and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
                self._drop(next(iter(self._entries)))

    def _drop(self, key: Hashable) -> None:
        _stored_at, value = self._entries.pop(key)
        self._bytes -= _size(value)


def _size(value: Any) -> int:
    return len(value.body) if isinstance(value, CachedAnswer) else 0


@dataclass
class _Flight:
    lock: threading.Lock = field(default_factory=threading.Lock)
    waiting: int = 0  # threads inside or waiting to enter ResponseCache.single_flight(key)


def anonymous_cache_key(scope: Scope, data_version: Callable[[], int | None]) -> Hashable | None:
    """The cache key of an HTTP request; None when its caller sends a key or the version is unknown.

    The version is read first: a write landing while the answer is computed is shown under the
    old number at worst, and the next number makes a new entry. The Host header is part of the key:
    without a public URL set, answers' links are made from it (call.py).
    """
    fields = host = None
    for name, value in scope["headers"]:
        if name == _API_KEY_NAME:
            return None
        if name == _FIELDS_NAME:
            fields = value
        elif name == b"host":
            host = value
    version = data_version()
    return None if version is None else (version, scope["path"], scope["query_string"], fields, host)


JSON_HEADERS = [(b"content-type", b"application/json")]
# What app.py caches (the dataset listing, a dataset, a row-API page): the requests worth waiting
# for another's answer. Never a file download, which a second reader must not wait for.
COALESCED_PATH = re.compile(r"^/api/(?:1/datasets/(?:[^/]+/)?|resources/[^/]+/data/)$")


class AnonymousCacheMiddleware:
    """ASGI middleware answering an anonymous GET from the cache when it holds the request's key.

    `on_hit(answer, scope)` runs for every answer served (the usage it records).
    Requests for an answer that another request of this process is computing wait for it on the
    event loop: as first answers (a start, a write) they used to wait in `single_flight`, each
    holding one of the process's 16 request threads, so that a few popular cold answers (a
    listing, a common search) kept every other cold answer queued behind them.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        cache: ResponseCache,
        data_version: Callable[[], int | None],
        on_hit: Callable[[CachedAnswer, Scope], None],
    ) -> None:
        self.app = app
        self.cache = cache
        self.data_version = data_version
        self.on_hit = on_hit
        self._in_flight: dict[Hashable, anyio.Event] = {}  # only touched on the event loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        key = anonymous_cache_key(scope, self.data_version)
        if key is None:
            await self.app(scope, receive, send)
            return
        if await self._answer_from_cache(key, scope, send):
            return
        if not COALESCED_PATH.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        flight = self._in_flight.get(key)
        if flight is not None:  # its first reader is computing it: wait here, holding no thread
            await flight.wait()
            if await self._answer_from_cache(key, scope, send):
                return
            await self.app(scope, receive, send)  # it was not cached (an error): compute our own
            return
        self._in_flight[key] = flight = anyio.Event()
        try:
            await self.app(scope, receive, send)
        finally:
            del self._in_flight[key]
            flight.set()

    async def _answer_from_cache(self, key: Hashable, scope: Scope, send: Send) -> bool:
        answer = self.cache.get(key)
        if answer is None:
            return False
        self.on_hit(answer, scope)
        headers = [*JSON_HEADERS, (b"content-length", str(len(answer.body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})
        return True
