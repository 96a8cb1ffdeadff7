"""The demo administrations' server over real loopback HTTP: caching headers, 304s, 404s, updates."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

import pytest
import requests

from dinum_pipelines.demo.administrations import DEMO_FILES, demo_file
from dinum_pipelines.demo.server import ADMIN_URL_ENV, RunningAdministrations, ServedFile, serve_administrations
from dinum_pipelines.lib.declare.registry import load_registry

SUBVENTIONS = demo_file("subventions_associations")


@pytest.fixture(scope="module")
def running() -> Iterator[RunningAdministrations]:
    with serve_administrations() as server:
        yield server


@pytest.fixture
def server(running: RunningAdministrations) -> RunningAdministrations:
    running.reset()
    return running


def _get(server: RunningAdministrations, path: str, **headers: str) -> requests.Response:
    return requests.get(server.url_for(path), headers=headers, timeout=10)


def test_serves_each_file_with_validators(server: RunningAdministrations) -> None:
    for file in DEMO_FILES:
        response = _get(server, file.path)
        content = file.generate()
        assert response.status_code == 200
        assert response.content == content
        assert response.headers["Content-Type"] == file.content_type
        assert response.headers["Content-Length"] == str(len(content))
        etag = response.headers["ETag"]
        assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
        assert parsedate_to_datetime(response.headers["Last-Modified"]) == file.last_modified


def test_csv_content_type_names_the_charset(server: RunningAdministrations) -> None:
    assert _get(server, SUBVENTIONS.path).headers["Content-Type"] == "text/csv; charset=windows-1252"


def test_validators_do_not_change_across_restarts(server: RunningAdministrations) -> None:
    first = _get(server, SUBVENTIONS.path).headers
    with serve_administrations() as other:
        second = _get(other, SUBVENTIONS.path).headers
    assert (first["ETag"], first["Last-Modified"]) == (second["ETag"], second["Last-Modified"])


def test_head_has_headers_and_no_body(server: RunningAdministrations) -> None:
    response = requests.head(server.url_for(SUBVENTIONS.path), timeout=10)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["Content-Length"] == str(len(SUBVENTIONS.generate()))


@pytest.mark.parametrize("form", ["{}", "W/{}", '"other", {}', "*"])
def test_if_none_match_gives_304(server: RunningAdministrations, form: str) -> None:
    etag = _get(server, SUBVENTIONS.path).headers["ETag"]
    response = _get(server, SUBVENTIONS.path, **{"If-None-Match": form.format(etag)})
    assert response.status_code == 304 and response.content == b""
    assert response.headers["ETag"] == etag


def test_if_modified_since(server: RunningAdministrations) -> None:
    last_modified = _get(server, SUBVENTIONS.path).headers["Last-Modified"]
    later = format_datetime(SUBVENTIONS.last_modified + timedelta(days=3), usegmt=True)
    earlier = format_datetime(SUBVENTIONS.last_modified - timedelta(seconds=1), usegmt=True)
    assert _get(server, SUBVENTIONS.path, **{"If-Modified-Since": last_modified}).status_code == 304
    assert _get(server, SUBVENTIONS.path, **{"If-Modified-Since": later}).status_code == 304
    assert _get(server, SUBVENTIONS.path, **{"If-Modified-Since": earlier}).status_code == 200
    assert _get(server, SUBVENTIONS.path, **{"If-Modified-Since": "not a date"}).status_code == 200


def test_if_none_match_takes_precedence_over_if_modified_since(server: RunningAdministrations) -> None:
    headers = _get(server, SUBVENTIONS.path).headers
    response = _get(
        server, SUBVENTIONS.path, **{"If-None-Match": '"stale"', "If-Modified-Since": headers["Last-Modified"]}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "path", ["/nope.csv", "/prefecture-de-demonstration/nope.csv", "/unknown/subventions-associations.csv"]
)
def test_unknown_path_is_404(server: RunningAdministrations, path: str) -> None:
    assert _get(server, path).status_code == 404


def test_publish_changes_etag_and_date(server: RunningAdministrations) -> None:
    before = _get(server, SUBVENTIONS.path).headers
    served = server.publish(SUBVENTIONS.path, SUBVENTIONS.generate() + b"SUB-2025-00001;2025\r\n")

    # A client holding the old validators downloads the new version.
    response = _get(server, SUBVENTIONS.path, **{"If-None-Match": before["ETag"]})
    assert response.status_code == 200 and response.content.endswith(b"SUB-2025-00001;2025\r\n")
    assert response.headers["ETag"] == served.etag != before["ETag"]
    assert response.headers["Content-Type"] == SUBVENTIONS.content_type  # kept from the previous version
    assert parsedate_to_datetime(response.headers["Last-Modified"]) > parsedate_to_datetime(before["Last-Modified"])
    assert _get(server, SUBVENTIONS.path, **{"If-Modified-Since": before["Last-Modified"]}).status_code == 200
    assert _get(server, SUBVENTIONS.path, **{"If-None-Match": served.etag}).status_code == 304


def test_publishing_the_same_bytes_changes_nothing(server: RunningAdministrations) -> None:
    before = _get(server, SUBVENTIONS.path).headers
    server.publish(SUBVENTIONS.path, SUBVENTIONS.generate())
    after = _get(server, SUBVENTIONS.path).headers
    assert (after["ETag"], after["Last-Modified"]) == (before["ETag"], before["Last-Modified"])


def test_publish_new_file_and_remove(server: RunningAdministrations) -> None:
    when = datetime(2025, 2, 1, 12, 0, tzinfo=UTC)
    server.publish("/mairie-de-demonstration/erreur.html", b"<html>Erreur</html>", last_modified=when)
    response = _get(server, "/mairie-de-demonstration/erreur.html")
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/html"
    assert parsedate_to_datetime(response.headers["Last-Modified"]) == when
    server.remove(SUBVENTIONS.path)
    assert _get(server, SUBVENTIONS.path).status_code == 404


def test_records_requests(server: RunningAdministrations) -> None:
    etag = _get(server, SUBVENTIONS.path).headers["ETag"]
    _get(server, SUBVENTIONS.path, **{"If-None-Match": etag})
    seen = server.requests_seen
    assert [(r.method, r.path, r.status) for r in seen] == [
        ("GET", SUBVENTIONS.path, 200),
        ("GET", SUBVENTIONS.path, 304),
    ]
    assert seen[1].headers["If-None-Match"] == etag


def test_quiet_logs(server: RunningAdministrations, capfd: pytest.CaptureFixture[str]) -> None:
    _get(server, SUBVENTIONS.path)
    _get(server, "/missing")
    requests.post(server.url_for(SUBVENTIONS.path), timeout=10)  # 501 from the stdlib handler
    assert capfd.readouterr().err == ""


def test_stop_releases_the_port() -> None:
    served = ServedFile(b"{}", "application/json", datetime(2025, 1, 1, tzinfo=UTC))
    server = serve_administrations(files={"/a/b.json": served})
    assert _get(server, "/a/b.json").json() == {}
    server.stop()
    server.stop()
    with pytest.raises(OSError), socket.create_connection((server.host, server.port), timeout=2):
        pass


def test_registry_urls_are_served(server: RunningAdministrations, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ADMIN_URL_ENV, server.url)
    registry = load_registry()
    assert registry
    for slug, spec in registry.items():
        response = requests.get(spec.source.resolved_url, timeout=10)
        assert response.status_code == 200, spec.source.resolved_url
        assert response.content == demo_file(slug).generate()
