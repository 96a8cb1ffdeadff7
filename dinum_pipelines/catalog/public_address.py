"""Requests seen as addressed to the catalog's public URL, when it has one.

Behind a load balancer a node receives requests from nginx, over plain HTTP, perhaps under another
Host than the one clients typed. What the catalog renders itself takes its base from
`CatalogSettings.public_url`, but Starlette builds some URLs from the request: the redirect that
adds a missing trailing slash (`/datasets/{id}` -> `/datasets/{id}/`) pointed at
`http://{Host}/...`, the node's address or plain HTTP where clients use HTTPS (found by
dinum_pipelines_tests/e2e/test_catalog_nodes.py). Giving every request the public URL's scheme
and host makes everything built from the request agree with what the catalog renders.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

_HOST = b"host"


class PublicAddressMiddleware:
    def __init__(self, app: ASGIApp, *, public_url: str) -> None:
        self.app = app
        parts = urlsplit(public_url)
        self.scheme = parts.scheme
        self.host = parts.netloc.encode("latin-1")
        self.server = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [(name, value) for name, value in scope["headers"] if name != _HOST]
            headers.append((_HOST, self.host))
            scope = {**scope, "scheme": self.scheme, "server": self.server, "headers": headers}
        await self.app(scope, receive, send)
