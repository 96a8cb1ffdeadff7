"""Two catalog nodes behind nginx on one PostgreSQL database (issue 13, part 4).

The nodes are separate `dinum-catalog serve` processes started by `run_catalog_nodes`, the
deployment's own launcher, on a throwaway database and one files folder. A publisher writes
through node A directly and through nginx; reusers read through node B directly and through
nginx, whose anonymous answers each process caches (response_cache.py): a write made in the
other process must reach them within the data version's poll. Downloads go through both nodes and
through nginx, where the node counts the download and nginx sends the file (X-Accel-Redirect);
the usage log must then hold exactly one download per request, none twice, none lost when a node
stops cleanly. Last, a node killed with SIGKILL: nginx keeps answering from the other one.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from dinum_pipelines.catalog import CatalogSettings, CatalogStore, bootstrap_publisher
from dinum_pipelines.catalog.db import DATA_VERSION_MAX_AGE_SECONDS
from dinum_pipelines.catalog.events import DATASET_VIEW, RESOURCE_DOWNLOAD
from dinum_pipelines.catalog.nodes import ACCEL_PREFIX, CatalogNode, CatalogNodes, free_port, run_catalog_nodes
from dinum_pipelines.lib.publish.catalog_client import UdataClient
from dinum_pipelines_tests.catalog.conftest import Api, create_postgres_database, drop_postgres_database

pytestmark = pytest.mark.slow

# How long an anonymous reader of one node may be shown the state before another node's write:
# the documented bound (DATA_VERSION_MAX_AGE_SECONDS) and room for a loaded machine.
STALE_READ_LIMIT_SECONDS = DATA_VERSION_MAX_AGE_SECONDS + 0.75
DOWNLOADS_PER_ROUTE = 3  # per resource and per route (a node directly, nginx): nginx spreads its share on both nodes


@dataclass
class Cluster:
    nodes: CatalogNodes  # nodes.url: the public URL, http://localhost:{nginx's port}
    balancer_url: str  # where the test reaches nginx, http://127.0.0.1:{port}: a URL built from the Host shows
    publisher_token: str
    organization_id: str
    sysadmin_token: str

    @property
    def node_a(self) -> CatalogNode:
        return self.nodes.nodes[0]

    @property
    def node_b(self) -> CatalogNode:
        return self.nodes.nodes[1]

    def on(self, base_url: str, url: str) -> str:
        """`url`, which the catalog renders under nginx's address, sent to `base_url` instead."""
        assert url.startswith(self.nodes.url + "/"), f"{url} is not under the public URL {self.nodes.url}"
        return base_url + url.removeprefix(self.nodes.url)


@dataclass
class Tally:
    """What the test asked for, to compare with the usage log."""

    views: Counter[str] = field(default_factory=Counter)  # dataset id -> 200 answers to GET /datasets/{id}/
    downloads: Counter[str] = field(default_factory=Counter)  # resource id -> files received


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    server_url, database_url = create_postgres_database("dinum_catalog_nodes")
    home = tmp_path_factory.mktemp("catalog-nodes")
    try:
        with CatalogStore(CatalogSettings(database_url, home / "files")) as store:
            publisher = bootstrap_publisher(store, org_slug="insee", org_name="Insee", email="bot@insee.fr", name="Insee Bot")
            sysadmin = bootstrap_publisher(store, org_slug="etalab", org_name="Etalab", email="metrics@etalab.fr", name="Metrics")
            store.accounts.grant_sysadmin(sysadmin.user_id)
        port = free_port()
        with run_catalog_nodes(
            database_url, home / "files", nodes=2, port=port, public_url=f"http://localhost:{port}", run_dir=home / "run",
        ) as nodes:
            yield Cluster(nodes, f"http://127.0.0.1:{port}", publisher.token, publisher.organization_id, sysadmin.token)
    finally:
        drop_postgres_database(server_url, database_url)


@pytest.fixture
def running_cluster(cluster: Cluster) -> Cluster:
    """Both nodes up, whatever an earlier test stopped."""
    for node in cluster.nodes.nodes:
        if node.process is None or node.process.poll() is not None:
            cluster.nodes.restart(node)
    return cluster


def as_api(base_url: str, token: str | None = None) -> Api:
    return Api(_Base(base_url), token)  # type: ignore[arg-type]  # Api needs only `.url`


@dataclass
class _Base:
    url: str


def read_until(api: Api, path: str, shows: Any, tally: Tally, dataset_id: str) -> tuple[dict[str, Any], float]:
    """GET `path` until `shows(answer)`; the answer and how long it took. Fails past the stale-read limit."""
    started = time.monotonic()
    while True:
        response = api.get(path)
        assert response.status_code == 200, response.text
        tally.views[dataset_id] += 1
        waited = time.monotonic() - started
        if shows(response.json()):
            return response.json(), waited
        assert waited < STALE_READ_LIMIT_SECONDS, f"{api.url(path)} still shows the state before the write after {waited:.2f} s"
        time.sleep(0.005)


def publish_and_read(cluster: Cluster, writer_url: str, tally: Tally, staleness: list[float]) -> dict[str, Any]:
    """Create a dataset, upload a file, replace it, update the metadata, all through `writer_url`;
    after each write, node B and nginx show it to the publisher at once and to anonymous readers
    within the poll of the data version. Returns the final dataset."""
    writer = as_api(writer_url, cluster.publisher_token)
    readers = [as_api(url) for url in (cluster.node_b.url, cluster.balancer_url)]
    publisher_readers = [as_api(url, cluster.publisher_token) for url in (cluster.node_b.url, cluster.balancer_url)]

    def check_everywhere(dataset_id: str, shows: Any) -> dict[str, Any]:
        for publisher_reader in publisher_readers:  # a key is never served from a cache
            response = publisher_reader.get(f"/datasets/{dataset_id}/")
            tally.views[dataset_id] += 1
            assert response.status_code == 200 and shows(response.json()), response.text
        answer: dict[str, Any] = {}
        for reader in readers:
            answer, waited = read_until(reader, f"/datasets/{dataset_id}/", shows, tally, dataset_id)
            staleness.append(waited)
        return answer

    dataset = writer.create_dataset(organization=cluster.organization_id, title=f"Communes via {writer_url}")
    check_everywhere(dataset["id"], lambda d: d["resources"] == [])

    first = writer.upload(dataset["id"], "communes.csv", b"code,nom\n75056,Paris\n")
    assert first.status_code == 201, first.text
    resource = first.json()
    shown = check_everywhere(dataset["id"], lambda d: [r["checksum"]["value"] for r in d["resources"]] == [resource["checksum"]["value"]])
    assert shown["resources"][0]["url"] == resource["url"]

    replaced = writer.upload(dataset["id"], "communes.csv", REPLACED_CONTENT, resource_id=resource["id"])
    assert replaced.status_code == 200, replaced.text
    resource = replaced.json()
    check_everywhere(dataset["id"], lambda d: d["resources"][0]["checksum"]["value"] == resource["checksum"]["value"])

    updated = writer.put(f"/datasets/{dataset['id']}/", json={"description": "Mise à jour via un autre nœud."})
    assert updated.status_code == 200, updated.text
    final = check_everywhere(dataset["id"], lambda d: d["description"] == "Mise à jour via un autre nœud.")

    # Every URL a node hands out is the balancer's, never the node's own address.
    for url in (final["page"], final["uri"], final["resources"][0]["url"], final["resources"][0]["latest"]):
        assert url.startswith(cluster.nodes.url + "/"), url
    page = requests.get(cluster.on(cluster.balancer_url, final["page"]), timeout=10)
    assert page.status_code == 200 and cluster.balancer_url not in page.text, page.text[:2000]
    tally.views[final["id"]] += 1  # a page view is a view too (on the web channel)
    # Starlette's redirect adding the trailing slash is built from the request: the public URL's too.
    unslashed = requests.get(cluster.on(cluster.balancer_url, final["page"]).rstrip("/"), allow_redirects=False, timeout=10)
    assert unslashed.headers["Location"] == final["page"]
    # The anonymous listing (cached too) shows the last write through both routes.
    for reader in readers:
        listing = reader.get("/datasets/", params={"organization": cluster.organization_id, "page_size": 50}).json()
        assert final["id"] in {d["id"] for d in listing["data"]}
    return final


REPLACED_CONTENT = b"code,nom\n75056,Paris\n13055,Marseille\n69123,Lyon\n"


def download_everywhere(cluster: Cluster, resource: dict[str, Any], tally: Tally) -> None:
    """The file through nginx (its URL and the stable link) and through each node directly."""
    stable_link = f"{cluster.nodes.api_url}/datasets/r/{resource['id']}"
    for _ in range(DOWNLOADS_PER_ROUTE):
        for url in (resource["url"], stable_link):
            response = requests.get(cluster.on(cluster.balancer_url, url), timeout=10)  # the bytes, sent by nginx itself
            assert response.status_code == 200 and response.content == REPLACED_CONTENT, (url, response.status_code)
            tally.downloads[resource["id"]] += 1
        for node in (cluster.node_a, cluster.node_b):
            # A node reached directly counts the download and names the file for nginx to send.
            response = requests.get(cluster.on(node.url, resource["url"]), timeout=10)
            assert response.status_code == 200 and response.content == b"", response.text
            assert response.headers["X-Accel-Redirect"].startswith(ACCEL_PREFIX)
            tally.downloads[resource["id"]] += 1
            # Its stable link redirects to the file under nginx's address: counted there, once.
            redirect = requests.get(cluster.on(node.url, stable_link), allow_redirects=False, timeout=10)
            assert redirect.status_code == 302 and redirect.headers["Location"].startswith(resource["url"])
            assert requests.get(cluster.on(cluster.balancer_url, redirect.headers["Location"]), timeout=10).content == REPLACED_CONTENT
            tally.downloads[resource["id"]] += 1


def exported_events(base_url: str, token: str, since: datetime) -> list[dict[str, str]]:
    until = datetime.now(UTC) + timedelta(minutes=1)
    response = requests.get(
        f"{base_url}/api/1/events/", params={"since": since.isoformat(), "until": until.isoformat()},
        headers={"X-API-KEY": token}, timeout=30,
    )
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def counted(rows: list[dict[str, str]], kind: str, key: str) -> Counter[str]:
    return Counter(row[key] for row in rows if row["kind"] == kind)


def test_writes_through_one_node_are_read_and_downloads_counted_once_through_all(running_cluster: Cluster) -> None:
    cluster = running_cluster
    since = datetime.now(UTC) - timedelta(seconds=5)
    tally, staleness = Tally(), []
    datasets = [publish_and_read(cluster, writer_url, tally, staleness) for writer_url in (cluster.node_a.url, cluster.nodes.url)]
    for dataset in datasets:
        download_everywhere(cluster, dataset["resources"][0], tally)
    print(f"\nanonymous reads after a write elsewhere: {len(staleness)}, longest wait {max(staleness) * 1000:.0f} ms")

    # A clean stop of node A writes its queued events; the export (through nginx, hence node B)
    # then holds every view and every download exactly once.
    cluster.node_a.stop()
    rows = exported_events(cluster.balancer_url, cluster.sysadmin_token, since)
    assert counted(rows, RESOURCE_DOWNLOAD, "resource_id") == tally.downloads
    assert counted(rows, DATASET_VIEW, "dataset_id") == tally.views
    assert sum(tally.downloads.values()) == 2 * DOWNLOADS_PER_ROUTE * 6
    # nginx's share went to both nodes.
    file_downloads = {node for request, node in cluster.nodes.upstreams() if request.startswith("GET /resources/")}
    assert file_downloads == {cluster.node_a.address, cluster.node_b.address}


def test_a_killed_node_leaves_the_catalog_answering_through_the_other(running_cluster: Cluster) -> None:
    cluster = running_cluster
    publisher = as_api(cluster.balancer_url, cluster.publisher_token)
    dataset = publisher.create_dataset(organization=cluster.organization_id, title="Avant la panne")
    resource = publisher.upload(dataset["id"], "communes.csv", REPLACED_CONTENT).json()
    since = datetime.now(UTC) - timedelta(seconds=5)
    file_url = cluster.on(cluster.balancer_url, resource["url"])
    for _ in range(4):  # round robin: both nodes count some
        assert requests.get(file_url, timeout=10).content == REPLACED_CONTENT
    # An export served by a node first writes that node's queued events: node B's are in the
    # database before it dies, so the counts below can be exact.
    exported_events(cluster.node_b.url, cluster.sysadmin_token, since)

    logged_before_kill = len(cluster.nodes.upstreams())
    cluster.node_b.kill()
    statuses: Counter[int] = Counter()
    for _ in range(10):
        statuses[publisher.get(f"/datasets/{dataset['id']}/").status_code] += 1
        statuses[requests.get(file_url, timeout=10).status_code] += 1
    after = publisher.create_dataset(organization=cluster.organization_id, title="Pendant la panne")
    uploaded = publisher.upload(after["id"], "apres.csv", b"code\n1\n")
    assert statuses == {200: 20}
    assert uploaded.status_code == 201, uploaded.text
    # The dead node cost a retry on the live one, then nginx left it alone: every answer is node A's.
    after_kill = [node for _, node in cluster.nodes.upstreams()[logged_before_kill:]]
    assert f"{cluster.node_b.address}, {cluster.node_a.address}" in after_kill
    assert {node.rsplit(", ", 1)[-1] for node in after_kill} == {cluster.node_a.address}

    rows = exported_events(cluster.balancer_url, cluster.sysadmin_token, since)
    assert counted(rows, RESOURCE_DOWNLOAD, "resource_id")[resource["id"]] == 4 + 10

    cluster.nodes.restart(cluster.node_b)  # back in nginx's pool once its fail_timeout has passed
    logged_before_restart = len(cluster.nodes.upstreams())
    assert {publisher.get(f"/datasets/{after['id']}/").status_code for _ in range(6)} == {200}
    assert cluster.node_b.address in {node for _, node in cluster.nodes.upstreams()[logged_before_restart:]}


def test_a_chunked_upload_through_nginx_is_assembled_from_parts_both_nodes_received(running_cluster: Cluster, tmp_path: Path) -> None:
    """The publisher's own client, in parts: round robin sends them to both nodes, which keep them
    in the shared files folder; whichever node gets the final request assembles the file."""
    cluster = running_cluster
    source = tmp_path / "grand-fichier.csv"
    source.write_bytes(b"".join(b"%08d,ligne\n" % line for line in range(60_000)))  # 1.08 MB
    part_bytes = 64 * 1024
    client = UdataClient(cluster.balancer_url, cluster.publisher_token, chunked_above=part_bytes, chunk_size=part_bytes)
    dataset = client.create_dataset({"title": "Fichier en parties", "description": "x", "organization": cluster.organization_id})
    resource = client.upload_resource(dataset["id"], source)

    assert resource["checksum"]["value"] == hashlib.sha1(source.read_bytes()).hexdigest()
    assert resource["filesize"] == source.stat().st_size
    downloaded = requests.get(cluster.on(cluster.balancer_url, resource["url"]), timeout=30)
    assert downloaded.content == source.read_bytes()
    part_requests = [node for request, node in cluster.nodes.upstreams() if request == f"POST /api/1/datasets/{dataset['id']}/upload/"]
    assert len(part_requests) == -(-source.stat().st_size // part_bytes) + 1  # the parts, then the final request
    assert set(part_requests) == {cluster.node_a.address, cluster.node_b.address}
