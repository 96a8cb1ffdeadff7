"""A loopback HTTP proxy that puts faults between the pipeline and the catalog (the fault matrix).

The pipeline talks to the proxy's URL as it would to the catalog's. Each request is matched
against the faults planned, in order; a request no fault matches is forwarded untouched. What a
fault can do, each being what a client meets in production:

- `answer(503)`: the front answers an error without reaching the catalog (an overloaded or
  restarting catalog behind its load balancer);
- `drop()`: the connection is closed without an answer (the catalog unreachable);
- `hold_body()`: half the request body reaches the catalog, then the proxy waits until the test
  `release`s it: an upload in flight, long enough to kill the catalog or the client during it;
- `hold_answer()`: the request reaches the catalog, which acts on it; its answer waits until the
  test releases it: a client that dies after the catalog acted but before it heard back;
- `gate(n)`: matching requests wait until `n` of them are waiting, then go on together: a race
  between two publishers made certain instead of likely.

A held request then either goes on (`release(fault, cut=False)`: the rest of the body, or the
answer, is passed on, as far as the two ends are still there) or is cut (`cut=True`: both
connections are closed, so the catalog sees its client vanish mid-request).

One request per connection (the proxy asks the catalog to close after answering and closes the
client's side too): requests reconnects, and each request is matched on its own.
"""

from __future__ import annotations

import io
import re
import socket
import socketserver
import threading
from dataclasses import dataclass, field

WAIT_SECONDS = 30  # how long a held request or a gate waits before giving up on the test
_CHUNK = 64 * 1024


@dataclass
class Fault:
    kind: str  # answer | drop | hold_body | hold_answer | gate
    method: str | None
    path: re.Pattern[str]
    times: int | None  # how many requests it takes; None: every matching request until cleared
    status: int = 503
    gate: threading.Barrier | None = None
    held: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    cut: bool = False
    taken: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.times is None or self.taken < self.times) and self.method in (None, method) and bool(self.path.search(path))


@dataclass(frozen=True)
class Seen:
    """One request as the proxy saw it and what it did with it."""

    method: str
    path: str
    action: str  # forwarded | answered 503 | dropped | held | gated
    status: int | None  # the status the client got (None: no answer)


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.seen: list[Seen] = []  # once answered (or not)
        self.arrived: list[tuple[str, str]] = []  # as soon as the request's head is read
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"fault-proxy-{self.url}", daemon=True)
        self._thread.start()

    # Planning faults

    def _plan(self, kind: str, method: str | None, path: str, times: int | None, **options: object) -> Fault:
        fault = Fault(kind, method, re.compile(path), times, **options)  # type: ignore[arg-type]
        with self._lock:
            self._faults.append(fault)
        return fault

    def answer(self, status: int = 503, *, method: str | None = None, path: str = "", times: int | None = None) -> Fault:
        return self._plan("answer", method, path, times, status=status)

    def drop(self, *, method: str | None = None, path: str = "", times: int | None = None) -> Fault:
        return self._plan("drop", method, path, times)

    def hold_body(self, *, method: str | None = None, path: str = "", times: int | None = 1) -> Fault:
        return self._plan("hold_body", method, path, times)

    def hold_answer(self, *, method: str | None = None, path: str = "", times: int | None = 1) -> Fault:
        return self._plan("hold_answer", method, path, times)

    def gate(self, parties: int, *, method: str | None = None, path: str = "", timeout: float = WAIT_SECONDS) -> Fault:
        """Hold the first `parties` matching requests until they are all in flight at once (after
        `timeout`, each goes on alone and `fault.gate.broken` says so)."""
        return self._plan("gate", method, path, parties, gate=threading.Barrier(parties, timeout=timeout))

    def release(self, fault: Fault, *, cut: bool = False) -> None:
        fault.cut = cut
        fault.released.set()

    def clear(self) -> None:
        """Forward everything from now on (held requests stay held until released)."""
        with self._lock:
            self._faults.clear()

    def stop(self) -> None:
        with self._lock:
            for fault in self._faults:
                fault.released.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # Serving

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.taken += 1
                    return fault
        return None

    def _record(self, method: str, path: str, action: str, status: int | None) -> None:
        with self._lock:
            self.seen.append(Seen(method, path, action, status))

    def _handle(self, client: socket.socket) -> None:
        reader = client.makefile("rb")
        head = _read_head(reader)
        if head is None:
            return
        request_line, headers = head
        method, target = request_line.split(" ")[:2]
        path = target.split("?", 1)[0]
        length = int(headers.get("content-length", "0"))
        with self._lock:
            self.arrived.append((method, path))
        fault = self._take(method, path)
        kind = fault.kind if fault else "forward"
        if fault is not None and fault.kind == "answer":
            reader.read(length)  # a server reads the request before it answers
            body = b'{"message": "Service unavailable (fault proxy)", "status": %d}' % fault.status
            client.sendall(
                b"HTTP/1.1 %d Service Unavailable\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (fault.status, len(body), body)
            )
            self._record(method, path, f"answered {fault.status}", fault.status)
            _close(client)
            return
        if kind == "drop":
            reader.read(length)
            self._record(method, path, "dropped", None)
            _close(client)
            return
        if kind == "gate":
            assert fault is not None and fault.gate is not None
            try:
                fault.gate.wait()
            except threading.BrokenBarrierError:
                pass  # the other party never came: go on alone
        try:
            upstream = socket.create_connection(_address(self.upstream), timeout=WAIT_SECONDS)
        except OSError:
            self._record(method, path, "dropped (catalog down)", None)
            _close(client)
            return
        status = self._forward(client, reader, upstream, request_line, headers, length, fault)
        action = {"forward": "forwarded", "gate": "gated"}.get(kind, "held")
        self._record(method, path, action, status)
        _close(upstream)
        _close(client)

    def _forward(
        self, client: socket.socket, reader: io.BufferedReader, upstream: socket.socket, request_line: str,
        headers: dict[str, str], length: int, fault: Fault | None,
    ) -> int | None:
        """Pass the request on and the answer back; the status the client got (None: none)."""
        head = request_line + "\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items() if name != "connection"
        ) + "Connection: close\r\n\r\n"
        try:
            upstream.sendall(head.encode("latin-1"))
            hold_at = length // 2 if fault is not None and fault.kind == "hold_body" else None
            sent = 0
            while sent < length:
                if sent == hold_at:
                    if self._wait(fault):
                        return None
                    hold_at = None
                chunk = reader.read1(min(_CHUNK, length - sent, (hold_at - sent) if hold_at is not None else _CHUNK))
                if not chunk:
                    return None  # the client went away mid-body: so does the catalog's connection
                upstream.sendall(chunk)
                sent += len(chunk)
            answer = _read_all(upstream)
        except OSError:
            return None  # the catalog went away: the client's connection is closed unanswered
        if not answer:
            return None
        if fault is not None and fault.kind == "hold_answer" and self._wait(fault):
            return None
        try:
            client.sendall(answer)
        except OSError:
            return None
        return int(answer.split(b" ", 2)[1])

    def _wait(self, fault: Fault | None) -> bool:
        """Hold until released; True when the request is to be cut."""
        assert fault is not None
        fault.held.set()
        fault.released.wait(WAIT_SECONDS)
        return fault.cut


def _address(url: str) -> tuple[str, int]:
    host, port = url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    return host, int(port)


def _read_head(reader: io.BufferedReader) -> tuple[str, dict[str, str]] | None:
    request_line = reader.readline().decode("latin-1").rstrip("\r\n")
    if not request_line:
        return None
    headers: dict[str, str] = {}
    for line in iter(reader.readline, b"\r\n"):
        if not line:
            return None
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return request_line, headers


def _read_all(connection: socket.socket) -> bytes:
    parts = []
    while chunk := connection.recv(_CHUNK):
        parts.append(chunk)
    return b"".join(parts)


def _close(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    connection.close()
