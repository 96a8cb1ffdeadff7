"""A multi-GB upload from the publisher's client to the catalog, with both processes' memory
sampled while it runs, against a hashed copy of the same file on the same disk.

Issue 13, part 2: uploads of any size in bounded memory, on both ends. The catalog runs as
`dinum-catalog serve` in its own process; this process is the publisher (`UdataClient`). A
sampler thread reads both processes' VmRSS from /proc every few milliseconds during each upload:
flat memory means the peak stays within a few MiB of the start whatever the file's size. Two
uploads of the same file are measured: udata's chunked protocol (what the publisher does above
its threshold) and one streamed multipart request (below it, forced here for the comparison).

    python bench/bench_uploads.py                          # a 2,000 MB file, 8 MiB parts
    python bench/bench_uploads.py --size-mb 5000 --database-url postgresql+psycopg://postgres@127.0.0.1/bench
    python bench/bench_uploads.py --size-mb 20 --chunk-mib 1   # a smoke run
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench_catalog import MB, OUT_DIR, big_file, catalog_process, status_kib

MIB = 1 << 20
FLAT_MARGIN_MIB = 64  # peak over start that still counts as flat: a few parts' buffers
SAMPLE_SECONDS = 0.02


@dataclass
class Memory:
    start_mib: float
    peak_mib: float
    samples: int

    @property
    def growth_mib(self) -> float:
        return self.peak_mib - self.start_mib


@contextmanager
def sampled_rss(pids: dict[str, int]) -> Iterator[dict[str, Memory]]:
    """VmRSS of each process, read every SAMPLE_SECONDS while the block runs; filled in at exit."""
    found = {name: Memory(status_kib(pid, "VmRSS") / 1024, 0.0, 0) for name, pid in pids.items()}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for name, pid in pids.items():
                memory = found[name]
                memory.peak_mib = max(memory.peak_mib, status_kib(pid, "VmRSS") / 1024)
                memory.samples += 1
            stop.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    sampler.start()
    try:
        yield found
    finally:
        stop.set()
        sampler.join()


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def hashed_copy(source: Path, target: Path) -> str:
    """What any server storing the file must at least do: read it, hash it, write it, fsync it.
    Returns the sha1."""
    digest = hashlib.sha1()
    with source.open("rb") as reader, target.open("wb") as writer:
        while block := reader.read(MIB):
            digest.update(block)
            writer.write(block)
        writer.flush()
        os.fsync(writer.fileno())
    return digest.hexdigest()


def former_client_class() -> type:
    from dinum_pipelines.lib.publish.catalog_client import UdataClient

    class FormerClient(UdataClient):
        """The publisher's upload before issue 13: requests builds the multipart body in memory."""

        def _upload(self, path_in_api: str, path: Path) -> dict:
            with path.open("rb") as handle:
                return self._call("POST", path_in_api, files={"file": (path.name, handle, "text/csv")})

    return FormerClient


def main(argv: Sequence[str] | None = None) -> int:
    from dinum_pipelines.catalog import CatalogSettings, CatalogStore, bootstrap_publisher
    from dinum_pipelines.lib.publish.catalog_client import UdataClient

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=2000, help="the file's size in MB (10^6 bytes)")
    parser.add_argument("--chunk-mib", type=int, default=32, help="the parts' size (the publisher's default: 32)")
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder for the file and the catalog")
    parser.add_argument("--with-before", action="store_true",
                        help="also the publisher's former upload (requests' files=, the body built in memory: twice the file's size)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    FormerClient = former_client_class()  # noqa: N806 (a class)

    source = big_file(args.out / f"upload_{args.size_mb}mb.csv", args.size_mb)
    size = source.stat().st_size
    with tempfile.TemporaryDirectory(prefix="bench-uploads-", dir=args.out) as home:
        settings = CatalogSettings.in_directory(home)
        if args.database_url:
            settings = CatalogSettings(args.database_url, settings.files_dir)
        with CatalogStore(settings) as store:
            publisher = bootstrap_publisher(store, org_slug="bench", org_name="Bench", email="bench@example.org", name="Bench Bot")

        # The reference: the same bytes hashed and copied on the same disk, made durable as the catalog does.
        copy = Path(home) / "copy.csv"
        hashed_copy(source, copy)  # a first pass brings the file into the page cache, as for the uploads after it
        copy.unlink()
        sha1s: list[str] = []
        copy_seconds = timed(lambda: sha1s.append(hashed_copy(source, copy)))
        expected_sha1 = sha1s[0]
        copy.unlink()
        print(f"file: {source} ({size / MB:,.0f} MB); catalog on {settings.database_url.split(':')[0]}")
        print(f"reference: the file hashed (sha1) and copied in 1 MiB blocks, then fsynced, {copy_seconds:.1f} s, {size / MB / copy_seconds:,.0f} MB/s\n")
        print(f"{'':<30} {'s':>7} {'MB/s':>7} {'× copy':>7}   {'client RSS MiB start → peak':>28}   "
              f"{'catalog RSS MiB start → peak':>29}   samples")

        ok = True
        with catalog_process(settings.database_url, settings.files_dir) as catalog:
            client_of = {
                f"chunked ({args.chunk_mib} MiB parts)": UdataClient(catalog.url, publisher.token, chunk_size=args.chunk_mib * MIB, chunked_above=0),
                "whole (one streamed request)": UdataClient(catalog.url, publisher.token, chunked_above=size),
            }
            if args.with_before:
                client_of["before: requests' files="] = FormerClient(catalog.url, publisher.token)
            for label, client in client_of.items():
                dataset = client.create_dataset({"title": "Gros fichier", "description": "Banc d'envoi.", "organization": publisher.organization_id})
                uploaded: list[dict] = []
                with sampled_rss({"client": os.getpid(), "catalog": catalog.pid}) as memory:
                    seconds = timed(lambda: uploaded.append(client.upload_resource(dataset["id"], source)))
                checksum = uploaded[0]["checksum"]["value"]
                flat = all(used.growth_mib <= FLAT_MARGIN_MIB for used in memory.values())
                if not isinstance(client, FormerClient):  # shown for comparison, expected not flat
                    ok = ok and flat and checksum == expected_sha1
                print(f"{label:<30} {seconds:>7.1f} {size / MB / seconds:>7,.0f} {seconds / copy_seconds:>7.2f}   "
                      f"{memory['client'].start_mib:>13.0f} → {memory['client'].peak_mib:>6.0f} (+{memory['client'].growth_mib:.0f})   "
                      f"{memory['catalog'].start_mib:>14.0f} → {memory['catalog'].peak_mib:>6.0f} (+{memory['catalog'].growth_mib:.0f})"
                      f"   {memory['client'].samples:>7}")
                print(f"{'':<30} checksum {'equals' if checksum == expected_sha1 else 'DIFFERS from'} the file's sha1; "
                      f"memory {'flat' if flat else 'NOT flat'} (peak within {FLAT_MARGIN_MIB} MiB of the start on both ends)")
                client.delete_resource(dataset["id"], uploaded[0]["id"])  # the disk holds one copy at a time
            print(f"\ncatalog peak over the whole run (VmHWM): {catalog.peak_mib():.0f} MiB; "
                  f"client: {status_kib(os.getpid(), 'VmHWM') / 1024:.0f} MiB")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
