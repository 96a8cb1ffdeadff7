"""Hosted files are written atomically: an upload cut short, or a catalog killed mid-upload,
leaves no visible half file, nothing servable, and the previous version of the file intact."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from dinum_pipelines.catalog import CatalogSettings, CatalogStore, Publisher, RunningCatalog, bootstrap_publisher
from dinum_pipelines.catalog.files import FileStore
from dinum_pipelines_tests.catalog.conftest import Api

BOUNDARY = "dinum-test-boundary"
ROW = b"code_commune,population\n"
SECONDS = 10


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"after {SECONDS} s: {what}")


def files_under(root: Path) -> list[Path]:
    """Files below `root` now (os.walk, unlike rglob, tolerates folders the server removes meanwhile)."""
    return sorted(Path(folder, name) for folder, _dirs, names in os.walk(root) for name in names)


def partial_files(root: Path) -> list[Path]:
    return [path for path in files_under(root) if path.name.startswith(".") and path.name.endswith(".part")]


def growing_partials(root: Path) -> list[Path]:
    """Temporary files that have received bytes (a partial may vanish between listing and stat)."""
    found = []
    for path in partial_files(root):
        try:
            if path.stat().st_size > 0:
                found.append(path)
        except FileNotFoundError:
            continue
    return found


def visible_files(root: Path) -> list[Path]:
    return [path for path in files_under(root) if not path.name.startswith(".")]


def start_upload(base_url: str, path: str, token: str, *, announced: int, sent: int) -> socket.socket:
    """A multipart upload announcing `announced` bytes of file but sending only `sent`, left open."""
    head = (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"communes.csv\"\r\n"
        f"Content-Type: text/csv\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    url = urlsplit(base_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=SECONDS)
    request_head = (
        f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nX-API-KEY: {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(head) + announced + len(tail)}\r\n\r\n"
    ).encode()
    sock.sendall(request_head + head + (ROW * (sent // len(ROW) + 1))[:sent])
    return sock


def cut(sock: socket.socket) -> None:
    """Drop the connection the way a crashed client does (RST, no clean end of body)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def test_an_upload_cut_short_leaves_no_file_and_no_resource(
    catalog: RunningCatalog, api: Api, anonymous: Api, publisher: Publisher, dataset: dict[str, Any]
) -> None:
    root = catalog.settings.files_dir
    sock = start_upload(catalog.url, f"/api/1/datasets/{dataset['id']}/upload/", publisher.token, announced=8_000_000, sent=4_000_000)
    try:
        # While it arrives, the bytes sit in a hidden temporary file that no URL reaches (the
        # catalog holds at most a few MiB before writing them: uploads._WriteBehind, uncached.py).
        [partial] = wait_for(lambda: growing_partials(root), "the upload's temporary file")
        assert visible_files(root) == []
        relative = partial.relative_to(root).as_posix()
        for key in (relative, relative.replace(f"/{partial.name}", "/communes.csv")):
            assert anonymous.get(f"{catalog.url}/resources/{key}").status_code == 404
    finally:
        cut(sock)

    wait_for(lambda: partial_files(root) == [], "the aborted upload's temporary file removed")
    assert files_under(root) == []
    assert anonymous.get(f"/datasets/{dataset['id']}/").json()["resources"] == []


def test_a_replacement_cut_short_keeps_the_published_file(
    catalog: RunningCatalog, api: Api, anonymous: Api, publisher: Publisher, dataset: dict[str, Any]
) -> None:
    original = ROW + b"75056,2133111\n"
    resource = api.upload(dataset["id"], "communes.csv", original).json()
    path = f"/api/1/datasets/{dataset['id']}/resources/{resource['id']}/upload/"
    cut(start_upload(catalog.url, path, publisher.token, announced=2_000_000, sent=500_000))

    wait_for(lambda: partial_files(catalog.settings.files_dir) == [], "the aborted replacement's temporary file removed")
    assert len(visible_files(catalog.settings.files_dir)) == 1
    current = anonymous.get(f"/datasets/{dataset['id']}/resources/{resource['id']}/").json()
    assert (current["url"], current["checksum"]) == (resource["url"], resource["checksum"])
    assert anonymous.get(resource["latest"]).content == original


def test_writer_makes_the_file_visible_only_on_commit(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    key = store.new_key("d" * 24, "communes.csv")
    writer = store.writer(key)
    writer.write(ROW)
    assert not store.path(key).exists() and visible_files(tmp_path) == []
    stored = writer.commit()
    assert store.path(key).read_bytes() == ROW and stored.size == len(ROW)
    assert partial_files(tmp_path) == []

    aborted = store.writer(store.new_key("d" * 24, "other.csv"))
    aborted.write(ROW)
    aborted.abort()
    assert files_under(tmp_path) == [store.path(key)]


@pytest.fixture
def catalog_process(tmp_path: Path) -> Iterator[tuple[CatalogSettings, Callable[[], tuple[subprocess.Popen[bytes], str]]]]:
    """`dinum-catalog serve` in a child process (SQLite), startable again on the same data."""
    settings = CatalogSettings.in_directory(tmp_path / "catalog")
    started: list[subprocess.Popen[bytes]] = []

    def start() -> tuple[subprocess.Popen[bytes], str]:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        process = subprocess.Popen(
            [sys.executable, "-m", "dinum_pipelines.catalog", "serve", "--port", str(port),
             "--database-url", settings.database_url, "--files-dir", str(settings.files_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                return requests.get(f"{url}/api/1/datasets/licenses/", timeout=1).ok
            except requests.ConnectionError:
                return False

        wait_for(answers, f"the catalog process at {url}")
        return process, url

    yield settings, start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_catalog_killed_mid_upload_leaves_only_a_hidden_partial_that_a_restart_sweeps(
    catalog_process: tuple[CatalogSettings, Callable[[], tuple[subprocess.Popen[bytes], str]]],
) -> None:
    settings, start = catalog_process
    with CatalogStore(settings) as store:
        publisher = bootstrap_publisher(store, org_slug="insee", org_name="Insee", email="bot@insee.fr", name="Insee Bot")
    process, url = start()
    dataset = requests.post(
        f"{url}/api/1/datasets/", json={"title": "Communes", "description": "Les communes.", "organization": publisher.organization_id},
        headers={"X-API-KEY": publisher.token}, timeout=SECONDS,
    ).json()
    sock = start_upload(url, f"/api/1/datasets/{dataset['id']}/upload/", publisher.token, announced=8_000_000, sent=4_000_000)
    try:
        wait_for(lambda: growing_partials(settings.files_dir), "the upload's temporary file")
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        sock.close()

    [partial] = partial_files(settings.files_dir)
    assert visible_files(settings.files_dir) == []
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(partial, (two_days_ago, two_days_ago))  # the sweep spares recent ones (an upload may be running)

    _, url = start()
    assert files_under(settings.files_dir) == []
    after = requests.get(f"{url}/api/1/datasets/{dataset['id']}/", timeout=SECONDS).json()
    assert after["resources"] == []
