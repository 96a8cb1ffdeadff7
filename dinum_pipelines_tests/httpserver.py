"""A scripted HTTP server on 127.0.0.1 for tests: each request pops the next planned reply.

It plays the flaky administration: 503 then 200, an HTML page with status 200, a body shorter
than its Content-Length, a 304 to a conditional request; and a webhook receiver (POST bodies
are recorded).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Send this Content-Length instead of the body's real length (to simulate truncation).
    declared_length: int | None = None
    delay: float = 0.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up (the fetchers close a connection they will not read further, a 404
        # for instance) is the client's business; anything else is printed as http.server does.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class ScriptedServer:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                self.answer(b"")

            def do_POST(self) -> None:  # noqa: N802
                self.answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def answer(self, body: bytes) -> None:
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "received_at": time.monotonic(),
                        "body": body,
                        **{k.lower(): v for k, v in self.headers.items()},
                    }
                )
                reply = server.replies.popleft() if server.replies else Reply(404, b"no reply planned")
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                length = reply.declared_length if reply.declared_length is not None else len(reply.body)
                self.send_header("Content-Length", str(length))
                if reply.declared_length is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                if reply.status != 304:
                    self.wfile.write(reply.body)
                if reply.declared_length is not None:
                    self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def plan(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
