"""Every HTML page carries security headers (issue 12): a Content-Security-Policy that allows no
script and no inline style, nosniff, and a referrer policy; Chromium renders the pages under that
policy without refusing anything."""

from __future__ import annotations

import requests

from dinum_pipelines.catalog.pages import SECURITY_HEADERS
from dinum_pipelines_tests import browser


def test_every_page_carries_the_headers_and_chromium_refuses_nothing(catalog, api, publisher, chromium):
    dataset = api.create_dataset(title="Communes de France", organization=publisher.organization_id, description="x" * 120)
    api.upload(dataset["id"], "communes.csv", b"code,nom\n01001,L'Abergement\n")
    org = api.get(f"/organizations/{publisher.organization_id}/").json()
    paths = ["/", f"/datasets/{dataset['slug']}/", f"/organizations/{org['slug']}/", "/qualite/", "/valider/", "/datasets/inconnu/"]
    for path in paths:
        response = requests.get(catalog.url + path, timeout=10)
        assert "text/html" in response.headers["content-type"], path
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value, (path, name)
    policy = SECURITY_HEADERS["Content-Security-Policy"]
    assert "script-src" not in policy and "unsafe-inline" not in policy and "default-src 'none'" in policy
    for path in paths[:2] + ["/valider/"]:
        messages = browser.console_messages(catalog.url + path)
        assert "Content Security Policy" not in messages and "Refused to" not in messages, (path, messages[-2000:])
