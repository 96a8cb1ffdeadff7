"""The catalog benchmark's code paths at a tiny size (100 datasets, a 2 MB file, 1 s of load),
so that `make bench` cannot rot. Figures are printed, never asserted: the machine is shared."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

from dinum_pipelines.catalog import CatalogSettings, CatalogStore, serve_in_thread
from dinum_pipelines.catalog.listing import DatasetQuery

pytestmark = pytest.mark.slow


@pytest.fixture
def bench(bench_script) -> ModuleType:
    return bench_script("bench_catalog")


def test_loaded_datasets_are_what_the_api_filters_on(bench: ModuleType, tmp_path: Path) -> None:
    with CatalogStore(CatalogSettings.in_directory(tmp_path)) as store:
        ids = bench.load_datasets(store, 120)
        assert len(set(ids)) == 120
        assert store.datasets.search(DatasetQuery(page_size=1))[1] == 120
        licenses = Counter(store.datasets.require(dataset_id)["license"] for dataset_id in ids)
        assert sum(store.datasets.search(DatasetQuery(license=name))[1] for name in bench.LICENSES) == 120
        assert store.datasets.search(DatasetQuery(license="lov2"))[1] == licenses["lov2"]
        assert all(len(store.datasets.require(dataset_id)["resources"]) == 2 for dataset_id in ids[:5])


@pytest.mark.parametrize("client", ["wrk", "threads", "asyncio"])
def test_load_clients_count_requests_and_errors(bench: ModuleType, tmp_path: Path, client: str) -> None:
    with serve_in_thread(CatalogSettings.in_directory(tmp_path)) as catalog:
        ids = bench.load_datasets(catalog.store, 30)
        good = bench.LOAD_CLIENTS[client](catalog.url, [f"/api/1/datasets/{i}/" for i in ids], concurrency=4, duration=1)
        assert good.requests > 0 and good.errors == 0 and 0 < good.p50_ms <= good.p99_ms
        searches = bench.LOAD_CLIENTS[client](catalog.url, bench.search_paths(20), concurrency=2, duration=1)
        assert searches.requests > 0 and searches.errors == 0
        missing = bench.LOAD_CLIENTS[client](catalog.url, ["/api/1/datasets/nope/"], concurrency=2, duration=1)
        assert missing.errors == missing.requests > 0


@pytest.mark.parametrize(("every", "slow_at_p99"), [(200, False), (40, True)])
def test_the_asyncio_client_counts_each_request_once(bench: ModuleType, every: int, slow_at_p99: bool) -> None:
    """Each connection's every `every`-th request is answered in a second, the others at once: the
    p99 of the requests is slow only when more than 1 % of them are (wrk's is slow either way)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        answered = 0  # on this connection (one handler per connection)

        def do_GET(self) -> None:
            self.answered += 1
            if self.answered % every == 0:
                time.sleep(1)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = bench.run_asyncio(f"http://127.0.0.1:{server.server_address[1]}", ["/"], concurrency=4, duration=3)
    finally:
        server.shutdown()
    assert result.errors == 0 and result.p50_ms < 500
    assert (result.p99_ms >= 1000) == slow_at_p99, result


def test_the_benchmark_runs_end_to_end(bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--datasets", "100", "--duration", "1", "--concurrency", "4", "--file-mb", "2", "--rounds", "1",
            "--client", "wrk", "--out", str(tmp_path)]
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    for label in ("GET /api/1/datasets/{id}/", "GET /api/1/datasets/?filters"):
        at = next(index for index, line in enumerate(lines) if line.startswith(label))
        passes = lines[at + 1 : at + 3]  # the cold-cache pass, then the warm one
        assert [line.split("(")[0].strip() for line in passes] == ["cold cache", "warm cache"], passes
        for line in passes:
            requests_count, errors = (int(n) for n in re.findall(r"\s(\d+)\s+(\d+)\s+p99", line)[0])
            assert requests_count > 0 and errors == 0, line
    assert re.search(r"catalog\s+\d+ MB/s", printed) and re.search(r"nginx \(sendfile\)\s+\d+ MB/s", printed)
    assert re.search(r"X-Accel-Redirect\s+\d+ MB/s", printed)
    assert "peak (VmHWM)" in printed
