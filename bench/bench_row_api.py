"""The row API under load: a 10,000,000-row table published, filtered pages at 50 concurrent
clients, against the same queries answered by the catalog's query code in this process (the
floor) and by that code on the Parquet alone, without the table's row index (the reference: the
row API before table_index.py), in the same run; then the CSV export of every row, with the
catalog's memory sampled while it streams.

Issue 14's targets: filtered pages p95 < 100 ms at 50 concurrent clients on loopback, and the
10M-row export streaming with the catalog's memory flat. The table is written here (DVF-like
columns, deterministic), published through the catalog's API as the pipeline publishes (udata's
chunked upload), and served by `dinum-catalog serve` in its own process, which builds the table's
row index in the background once it is published (the bench waits for it and says how long it took).
The floor runs the very code the catalog runs for a page (`tabular.rows`) in threads of this
process, without HTTP. Cold pages are measured twice: anonymous first answers (each URL new to the
worker, but a URL may come back to the same worker in the pass and then be a cache answer), and
the same URLs with a publisher's key, which the response cache never answers: every page computed.

    python bench/bench_row_api.py                      # 10M rows, 50 clients, 10 s per pass
    python bench/bench_row_api.py --rows 20000 --duration 1 --concurrency 4 --client threads  # smoke
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import requests
from bench_catalog import (
    LOAD_CLIENTS,
    OUT_DIR,
    LoadResult,
    catalog_process,
    closed_loop,
    upload_file,
    verdict,
)
from bench_uploads import sampled_rss

from dinum_pipelines.catalog import API_KEY_HEADER, table_index, tabular

P95_TARGET_MS = 100
WARM_PATHS = 60
CHUNK_ROWS = 500_000
ROW_GROUP_ROWS = 131_072
NATURES = np.array(["Vente", "Vente en l'état futur d'achèvement", "Echange", "Adjudication", "Expropriation", "Vente terrain à bâtir"])
DEPARTMENTS = np.array([f"{n:02d}" for n in range(1, 96) if n != 20] + ["2A", "2B", "971", "972", "973", "974"])


def write_table(path: Path, rows: int, seed: int = 14) -> Path:
    """A DVF-like Parquet of `rows` rows, written chunk by chunk (reused when already there)."""
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return path
    rng = np.random.default_rng(seed)
    schema = pa.schema([
        ("id_mutation", pa.string()), ("date_mutation", pa.date32()), ("nature_mutation", pa.string()),
        ("valeur_fonciere", pa.float64()), ("code_departement", pa.string()), ("code_commune", pa.string()),
        ("surface_reelle_bati", pa.int32()), ("nombre_pieces_principales", pa.int8()),
    ])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, CHUNK_ROWS):
            n = min(CHUNK_ROWS, rows - start)
            departments = DEPARTMENTS[rng.integers(0, len(DEPARTMENTS), n)]
            communes = np.char.add(departments.astype("U3"), np.char.zfill(rng.integers(1, 400, n).astype("U3"), 3))
            surface = rng.integers(9, 400, n).astype("int32")
            writer.write_table(pa.table({
                "id_mutation": pa.array(np.char.add("2024-", np.arange(start, start + n).astype("U10"))),
                "date_mutation": pa.array((19358 + rng.integers(0, 1826, n)).astype("int32")).cast(pa.date32()),
                "nature_mutation": pa.array(NATURES[rng.choice(len(NATURES), n, p=[.8, .08, .04, .03, .01, .04])]),
                "valeur_fonciere": pa.array(np.round(rng.lognormal(12, 1, n), 2)),
                "code_departement": pa.array(departments),
                "code_commune": pa.array(communes),
                "surface_reelle_bati": pa.array(surface, mask=rng.random(n) < .3),
                "nombre_pieces_principales": pa.array(rng.integers(0, 9, n).astype("int8")),
            }, schema=schema), row_group_size=ROW_GROUP_ROWS)
    return path


def query_mix(count: int, seed: int = 3) -> list[list[tuple[str, str]]]:
    """Reusers' filtered pages: one commune's sales, a department's by nature, a price band in a
    department, a month, the priciest of a commune (sorted), a department's third page."""
    rng = random.Random(seed)
    queries = []
    for index in range(count):
        department = rng.choice(list(DEPARTMENTS))
        commune = f"{department}{rng.randint(1, 399):03d}"
        low = rng.randint(50, 500) * 1000
        month = f"{rng.randint(2023, 2027)}-{rng.randint(1, 12):02d}"
        queries.append([
            [("code_commune__exact", commune)],
            [("code_departement__exact", department), ("nature_mutation__exact", "Vente")],
            [("code_departement__exact", department), ("valeur_fonciere__greater", str(low)),
             ("valeur_fonciere__strictly_less", str(low + 50_000))],
            [("date_mutation__greater", f"{month}-01"), ("date_mutation__less", f"{month}-28")],
            [("code_commune__exact", commune), ("valeur_fonciere__sort", "desc")],
            [("code_departement__exact", department), ("page", "3")],
        ][index % 6] + [("page_size", "50")])
    return queries


def floor(path: Path, queries: Sequence[list[tuple[str, str]]], *, concurrency: int, duration: float) -> LoadResult:
    """The same pages computed by the catalog's own query code in this process, no HTTP."""

    def make_client():
        return lambda index: tabular.rows(path, queries[index % len(queries)]) is None

    return closed_loop(make_client, concurrency=concurrency, duration=duration)


def parquet_only(path: Path, queries: Sequence[list[tuple[str, str]]], *, concurrency: int, duration: float) -> LoadResult:
    """The floor's pages read from the Parquet alone: a link to the file in a folder of its own,
    which has no index beside it and gets none (the threshold is lifted for the pass)."""
    with tempfile.TemporaryDirectory(prefix="parquet-only-", dir=path.parent) as folder:
        alone = Path(folder) / path.name
        os.link(path, alone)
        threshold, table_index.MIN_ROWS = table_index.MIN_ROWS, sys.maxsize
        try:
            return floor(alone, queries, concurrency=concurrency, duration=duration)
        finally:
            table_index.MIN_ROWS = threshold


def print_load(label: str, result: LoadResult) -> None:
    print(f"{label:<44} {result.p50_ms:>8.1f} {result.p95_ms:>8.1f} {result.p99_ms:>8.1f} {result.requests_per_s:>8.0f} "
          f"{result.requests:>9} {result.errors:>7}")


def main(argv: Sequence[str] | None = None) -> int:
    from dinum_pipelines.catalog import (
        CatalogSettings,
        CatalogStore,
        bootstrap_publisher,
    )

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10, help="seconds of load per pass")
    parser.add_argument("--client", choices=sorted(LOAD_CLIENTS), default="wrk")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="catalog processes for the pages")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    table = write_table(args.out / f"row_api_{args.rows}.parquet", args.rows)
    print(f"table: {args.rows:,} rows, {table.stat().st_size / 2**20:,.0f} MiB Parquet "
          f"({pq.ParquetFile(table).metadata.num_row_groups} row groups), ready in {time.perf_counter() - started:.1f} s")

    with tempfile.TemporaryDirectory(prefix="bench-row-api-", dir=args.out) as home:
        settings = CatalogSettings.in_directory(home)
        with CatalogStore(settings) as store:
            publisher = bootstrap_publisher(store, org_slug="bench", org_name="Bench", email="bench@example.org", name="Bench Bot")
        queries = query_mix(1200)
        with catalog_process(settings.database_url, settings.files_dir, workers=args.workers) as catalog:
            started = time.perf_counter()
            resource = upload_file(catalog.url, publisher.token, publisher.organization_id, table)
            print(f"published through the API in {time.perf_counter() - started:.1f} s: resource {resource['id']}")
            served = CatalogStore(settings).files.path(resource["url"].split("/resources/", 1)[1])
            index = table_index.index_path(served)
            while args.rows >= table_index.MIN_ROWS and not index.exists() and time.perf_counter() - started < 1800:
                time.sleep(0.1)  # built by the catalog in the background (table_index.py)
            if index.exists():
                arrays = table_index.arrays_path(served)
                size = index.stat().st_size + (arrays.stat().st_size if arrays.exists() else 0)
                print(f"row index ready {time.perf_counter() - started:.1f} s after the upload started: {size / 2**20:,.0f} MiB "
                      f"({size / table.stat().st_size:.1f}x the Parquet; its arrays {arrays.stat().st_size / 2**20:,.0f} MiB)")
            else:
                print(f"no row index (a table under {table_index.MIN_ROWS:,} rows is read from its Parquet)")
            base = f"/api/resources/{resource['id']}/data/"
            paths = [base + "?" + "&".join(f"{key}={value}" for key, value in query) for query in queries]
            first = requests.get(catalog.url + paths[0], timeout=60).json()
            assert first["data"] == tabular.rows(served, queries[0])[1], "the API and the floor disagree"
            load = LOAD_CLIENTS[args.client]
            load(catalog.url, paths[-12:], concurrency=min(args.concurrency, 4), duration=1)  # imports, file cache
            # Repeats are answered from each worker's response cache (response_cache.py): the
            # warm pass asks WARM_PATHS pages every worker has answered before; the cold pass, run
            # after it (its unfinished queries would still load the server), only pages nobody
            # asked before, so each is computed by DuckDB.
            warm_paths, cold_paths = paths[:WARM_PATHS], paths[WARM_PATHS:-12]
            for _ in range(args.workers * 6):  # each worker gets each warm page, but with odds of 2**-12 per page
                for path in warm_paths:
                    requests.get(catalog.url + path, timeout=60).raise_for_status()
            print(f"\nfiltered pages of 50 rows, 6 query shapes, {args.concurrency} concurrent clients ({args.client}), "
                  f"{args.duration:g} s per pass, {args.workers} catalog worker(s), {os.cpu_count()} cores")
            print(f"{'':<44} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8} {'requests':>9} {'errors':>7}")
            warm = load(catalog.url, warm_paths, concurrency=args.concurrency, duration=args.duration)
            print_load(f"row API, warm: repeats ({len(warm_paths)} URLs)", warm)
            cold = load(catalog.url, cold_paths, concurrency=args.concurrency, duration=args.duration)
            print_load(f"row API, cold: first answers ({len(cold_paths)} URLs)", cold)
            computed = load(catalog.url, cold_paths, concurrency=args.concurrency, duration=args.duration,
                            headers={API_KEY_HEADER: publisher.token})
            print_load("row API, every answer computed (key)", computed)
            direct = floor(served, queries, concurrency=args.concurrency, duration=args.duration)
            print_load("same code in process (floor)", direct)
            reference = parquet_only(served, queries, concurrency=args.concurrency, duration=args.duration)
            print_load("same code, the Parquet alone (reference)", reference)
            for label, result in (("warm", warm), ("cold", cold), ("computed", computed)):
                print(f"  {label}: p95 / floor p95 {result.p95_ms / direct.p95_ms:.2f}, / reference p95 "
                      f"{result.p95_ms / reference.p95_ms:.4f}; "
                      f"p95 < {P95_TARGET_MS} ms: {verdict(result.p95_ms < P95_TARGET_MS and result.errors == 0)}")

        with catalog_process(settings.database_url, settings.files_dir, workers=1) as single:
            url = f"{single.url}/api/resources/{resource['id']}/data/csv/"
            lines = size = 0
            started = time.perf_counter()
            with sampled_rss({"catalog": single.pid}) as memory, requests.get(url, stream=True, timeout=600) as response:
                response.raise_for_status()
                for chunk in response.iter_content(1 << 20):
                    size += len(chunk)
                    lines += chunk.count(b"\n")
            elapsed = time.perf_counter() - started
            rss = memory["catalog"]
            print(f"\nCSV export of every row: {lines - 1:,} rows, {size / 2**20:,.0f} MiB in {elapsed:.1f} s "
                  f"({size / 2**20 / elapsed:.0f} MiB/s); catalog RSS {rss.start_mib:.0f} MiB at the start, "
                  f"peak {rss.peak_mib:.0f} MiB ({rss.samples} samples)")
            print(f"  every row exported: {verdict(lines - 1 == args.rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
