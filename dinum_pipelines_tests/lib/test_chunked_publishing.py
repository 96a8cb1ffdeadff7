"""The publisher's uploads against a real catalog on loopback: a file above the threshold goes in
udata's chunked protocol and a failed part is sent again on its own; smaller files go as one
streamed upload. The threshold is lowered so that a few hundred KB exercise the large-file path."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from dinum_pipelines.catalog import CatalogSettings, bootstrap_publisher, serve_in_thread
from dinum_pipelines.lib.publish.catalog_client import CatalogError, UdataClient
from dinum_pipelines.lib.publish.publishing import publish
from dinum_pipelines_tests.faultproxy import FaultProxy
from dinum_pipelines_tests.lib.test_publishing import SPEC

CHUNK = 64 * 1024
UPLOAD_PATH = r"/upload/$"


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[FaultProxy, str]]:
    """A fault proxy in front of a catalog, and the catalog publisher's API key."""
    with serve_in_thread(CatalogSettings.in_directory(tmp_path / "catalog")) as catalog:
        publisher = bootstrap_publisher(catalog.store, org_slug="insee", org_name="Insee", email="bot@insee.fr", name="Bot")
        with FaultProxy(catalog.url) as proxy:
            yield proxy, publisher.token


def chunking_client(proxy: FaultProxy, token: str) -> UdataClient:
    return UdataClient(proxy.url, token, chunked_above=4 * CHUNK, chunk_size=CHUNK, part_backoff=0.05)


def big_csv(tmp_path: Path, rows: int = 30_000) -> Path:
    path = tmp_path / "lieux_covoiturage.csv"
    path.write_bytes(b"id_lieu,insee\n" + b"".join(f"{n:06d}-C-001,{n % 97:05d}\n".encode() for n in range(rows)))
    return path


def uploads(proxy: FaultProxy) -> list[tuple[str, int | None]]:
    """What the proxy did with each upload request, once it has recorded every request that
    arrived (it records one after the client has its answer)."""
    deadline = time.monotonic() + 5
    while len(proxy.seen) < len(proxy.arrived) and time.monotonic() < deadline:
        time.sleep(0.01)
    return [(seen.action, seen.status) for seen in proxy.seen if seen.method == "POST" and "/upload/" in seen.path]


def published_file(client: UdataClient, dataset_id: str, resource_id: str) -> tuple[dict, bytes]:
    resource = requests.get(f"{client.base_url}/api/1/datasets/{dataset_id}/resources/{resource_id}/", timeout=10).json()
    return resource, requests.get(resource["latest"], timeout=10).content


def test_a_file_above_the_threshold_is_published_in_parts(proxied: tuple[FaultProxy, str], tmp_path: Path) -> None:
    proxy, token = proxied
    csv = big_csv(tmp_path)
    parts = -(-csv.stat().st_size // CHUNK)
    client = chunking_client(proxy, token)

    result = publish(client, SPEC, {"csv": csv})
    resource, content = published_file(client, result.dataset_id, result.resource_ids["csv"])
    assert content == csv.read_bytes()
    assert resource["checksum"] == {"type": "sha1", "value": hashlib.sha1(content).hexdigest()}
    assert resource["title"] == csv.name and resource["filesize"] == csv.stat().st_size
    assert uploads(proxy) == [("forwarded", 200)] * parts + [("forwarded", 201)]  # the parts, then the final request

    # A new version replaces the file of the same resource, in parts too.
    csv.write_bytes(csv.read_bytes() + b"999999-C-001,00001\n")
    again = publish(client, SPEC, {"csv": csv})
    assert again.resource_ids == result.resource_ids
    assert published_file(client, result.dataset_id, result.resource_ids["csv"])[1] == csv.read_bytes()


def test_a_failed_part_is_sent_again_and_the_upload_completes(
    proxied: tuple[FaultProxy, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proxy, token = proxied
    csv = big_csv(tmp_path)
    client = chunking_client(proxy, token)
    dataset = client.create_dataset({"title": "Lieux", "description": "Des lieux.", "organization": "insee"})
    proxy.answer(503, method="POST", path=UPLOAD_PATH, times=1)  # the first part meets an overloaded catalog
    proxy.drop(method="POST", path=UPLOAD_PATH, times=1)  # the second attempt, its connection cut

    with caplog.at_level(logging.WARNING, logger="dinum_pipelines.lib.publish.catalog_client"):
        resource = client.upload_resource(dataset["id"], csv)
    assert published_file(client, dataset["id"], resource["id"])[1] == csv.read_bytes()
    assert uploads(proxy)[:3] == [("answered 503", 503), ("dropped", None), ("forwarded", 200)]
    assert "part 1/" in caplog.text and "sending it again" in caplog.text
    assert token not in caplog.text


def test_a_part_that_keeps_failing_stops_the_upload_without_the_key(proxied: tuple[FaultProxy, str], tmp_path: Path) -> None:
    proxy, token = proxied
    client = chunking_client(proxy, token)
    dataset = client.create_dataset({"title": "Lieux", "description": "Des lieux.", "organization": "insee"})
    proxy.answer(502, method="POST", path=UPLOAD_PATH)

    with pytest.raises(CatalogError) as failure:
        client.upload_resource(dataset["id"], big_csv(tmp_path))
    assert failure.value.status == 502 and token not in str(failure.value)
    assert len(uploads(proxy)) == client.part_attempts
    assert client.get_dataset(dataset["id"])["resources"] == []


def test_a_small_file_goes_as_one_streamed_upload(proxied: tuple[FaultProxy, str], tmp_path: Path) -> None:
    proxy, token = proxied
    client = chunking_client(proxy, token)
    csv = tmp_path / "petit fichier é.csv"
    csv.write_bytes(b"id_lieu,insee\n76217-C-001,76217\n")
    dataset = client.create_dataset({"title": "Lieux", "description": "Des lieux.", "organization": "insee"})

    resource = client.upload_resource(dataset["id"], csv)
    assert resource["title"] == csv.name and resource["checksum"]["value"] == hashlib.sha1(csv.read_bytes()).hexdigest()
    assert uploads(proxy) == [("forwarded", 201)]


def test_the_next_files_parts_go_out_while_the_first_one_is_sent(proxied: tuple[FaultProxy, str], tmp_path: Path) -> None:
    proxy, token = proxied
    csv = big_csv(tmp_path)
    table = tmp_path / "lieux_covoiturage.parquet"
    table.write_bytes(os.urandom(6 * CHUNK + 123))
    client = chunking_client(proxy, token)
    # The first two upload requests pass only together: a part of each file in flight at once.
    together = proxy.gate(2, method="POST", path=UPLOAD_PATH, timeout=5)

    result = publish(client, SPEC, {"csv": csv, "parquet": table})
    assert not together.gate.broken
    for role, path in (("csv", csv), ("parquet", table)):
        resource, content = published_file(client, result.dataset_id, result.resource_ids[role])
        assert content == path.read_bytes() and resource["title"] == path.name
        assert resource["checksum"]["value"] == hashlib.sha1(content).hexdigest()
    parts = {path: -(-path.stat().st_size // CHUNK) for path in (csv, table)}
    assert len(uploads(proxy)) == parts[csv] + parts[table] + 2

    # Published again with only the CSV changed: the table's parts are not sent ahead for nothing.
    csv.write_bytes(csv.read_bytes() + b"999999-C-001,00001\n")
    before = len(uploads(proxy))
    again = publish(client, SPEC, {"csv": csv, "parquet": table})
    assert again.resource_ids == result.resource_ids
    assert len(uploads(proxy)) - before == -(-csv.stat().st_size // CHUNK) + 1
    assert published_file(client, result.dataset_id, result.resource_ids["csv"])[1] == csv.read_bytes()


def test_parts_sent_ahead_that_fail_are_sent_again_by_the_upload(proxied: tuple[FaultProxy, str], tmp_path: Path) -> None:
    proxy, token = proxied
    csv = big_csv(tmp_path)
    client = chunking_client(proxy, token)
    client.part_attempts = 1
    dataset = client.create_dataset({"title": "Lieux", "description": "Des lieux.", "organization": "insee"})
    proxy.answer(503, method="POST", path=UPLOAD_PATH, times=1)  # the first part sent ahead, then not again

    client.send_parts_ahead(dataset["id"], csv)
    resource = client.upload_resource(dataset["id"], csv)
    assert published_file(client, dataset["id"], resource["id"])[1] == csv.read_bytes()
    assert uploads(proxy)[0] == ("answered 503", 503)
    assert uploads(proxy)[-1] == ("forwarded", 201)
