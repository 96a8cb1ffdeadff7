"""Downloads over real loopback HTTP: retries, conditional GET, and bodies that are not the data."""

from __future__ import annotations

import gzip
import hashlib
import os
import resource
import signal

import pytest

from dinum_pipelines.lib.ingest.http import FetchError, Validators, fetch_to_file, make_session
from dinum_pipelines_tests.httpserver import Reply, ScriptedServer

DATA = "code;montant\n01053;1 234,50\n".encode("cp1252")


@pytest.fixture
def server():
    with ScriptedServer() as running:
        yield running


def test_download_streams_hashes_and_keeps_headers(server, tmp_path):
    server.plan(Reply(200, DATA, {"ETag": '"v1"', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT", "Content-Type": "text/csv"}))
    download = fetch_to_file(make_session(), f"{server.url}/a.csv", tmp_path)
    assert download.path.read_bytes() == DATA
    assert download.sha256 == hashlib.sha256(DATA).hexdigest() and download.size == len(DATA)
    assert download.validators == Validators('"v1"', "Mon, 01 Jan 2024 00:00:00 GMT")


def test_conditional_get_304(server, tmp_path):
    server.plan(Reply(304))
    download = fetch_to_file(make_session(), f"{server.url}/a.csv", tmp_path, previous=Validators('"v1"', "Mon, 01 Jan 2024 00:00:00 GMT"))
    assert download.not_modified and download.path is None
    assert server.requests[0]["if-none-match"] == '"v1"'
    assert server.requests[0]["if-modified-since"] == "Mon, 01 Jan 2024 00:00:00 GMT"


def test_retries_503_then_succeeds(server, tmp_path):
    server.plan(Reply(503, b"busy"), Reply(503, b"busy"), Reply(200, DATA))
    download = fetch_to_file(make_session(retries=3, backoff_factor=0.01), f"{server.url}/a.csv", tmp_path)
    assert download.path.read_bytes() == DATA
    assert len(server.requests) == 3


def test_html_page_with_status_200_is_an_error(server, tmp_path):
    server.plan(Reply(200, b"<!DOCTYPE html><html><body>Maintenance</body></html>", {"Content-Type": "text/html"}))
    with pytest.raises(FetchError, match="answered an HTML page instead of the data"):
        fetch_to_file(make_session(), f"{server.url}/a.csv", tmp_path)
    assert list(tmp_path.iterdir()) == []  # no half file left behind


def test_truncated_body_is_an_error(server, tmp_path):
    server.plan(Reply(200, DATA, declared_length=len(DATA) + 100))
    with pytest.raises(FetchError, match="(truncated body|interrupted)"):
        fetch_to_file(make_session(retries=0), f"{server.url}/a.csv", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_size_limit(server, tmp_path):
    server.plan(Reply(200, DATA))
    with pytest.raises(FetchError, match="over the 10-byte limit"):
        fetch_to_file(make_session(), f"{server.url}/a.csv", tmp_path, max_bytes=10)


def test_404_is_an_error(server, tmp_path):
    server.plan(Reply(404, b"not found"))
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_to_file(make_session(), f"{server.url}/a.csv", tmp_path)


def test_429_waits_for_retry_after(server, tmp_path):
    server.plan(Reply(429, b"slow down", {"Retry-After": "1"}), Reply(200, DATA))
    # A tiny backoff factor: any wait of a second or more comes from Retry-After.
    download = fetch_to_file(make_session(retries=2, backoff_factor=0.01), f"{server.url}/a.csv", tmp_path)
    assert download.path.read_bytes() == DATA
    first, second = server.requests
    assert second["received_at"] - first["received_at"] >= 0.95


def test_read_timeout_is_retried(server, tmp_path):
    server.plan(Reply(200, DATA, delay=1.0), Reply(200, DATA))
    download = fetch_to_file(
        make_session(retries=2, backoff_factor=0.01), f"{server.url}/a.csv", tmp_path, timeout=(2.0, 0.3)
    )
    assert download.path.read_bytes() == DATA
    assert len(server.requests) == 2


def test_read_timeout_every_time_is_an_error_naming_the_url(server, tmp_path):
    server.plan(*[Reply(200, DATA, delay=1.0)] * 2)
    with pytest.raises(FetchError, match=rf"{server.url}/a.csv: request failed: .*[Rr]ead timed out"):
        fetch_to_file(make_session(retries=1, backoff_factor=0.01), f"{server.url}/a.csv", tmp_path, timeout=(2.0, 0.3))
    assert list(tmp_path.iterdir()) == []


GZIP_HEADERS = {"Content-Encoding": "gzip", "Content-Type": "text/csv"}
BIG = b"".join(b"%05d;%d,50\n" % (i, i) for i in range(20_000))


def test_gzip_body_is_decompressed_and_hashed_as_the_data(server, tmp_path):
    server.plan(Reply(200, gzip.compress(BIG), GZIP_HEADERS))
    download = fetch_to_file(make_session(), f"{server.url}/a.csv", tmp_path)
    assert download.path.read_bytes() == BIG
    assert download.sha256 == hashlib.sha256(BIG).hexdigest()


def test_concatenated_gzip_members_are_all_kept(server, tmp_path):
    server.plan(Reply(200, gzip.compress(BIG[:1000]) + gzip.compress(BIG[1000:]), GZIP_HEADERS))
    download = fetch_to_file(make_session(), f"{server.url}/a.csv", tmp_path)
    assert download.path.read_bytes() == BIG


def test_gzip_cut_short_is_an_error_even_with_a_matching_content_length(server, tmp_path):
    # The server itself holds a truncated .gz (a half-written cache): Content-Length matches what
    # is sent, so only the missing end-of-stream marker tells.
    compressed = gzip.compress(BIG)
    server.plan(Reply(200, compressed[: len(compressed) // 2], GZIP_HEADERS))
    with pytest.raises(FetchError, match="truncated compressed body"):
        fetch_to_file(make_session(retries=0), f"{server.url}/a.csv", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_gzip_shorter_than_its_content_length_is_an_error(server, tmp_path):
    compressed = gzip.compress(BIG)
    server.plan(Reply(200, compressed[:-10], GZIP_HEADERS, declared_length=len(compressed)))
    with pytest.raises(FetchError, match="(truncated|interrupted)"):
        fetch_to_file(make_session(retries=0), f"{server.url}/a.csv", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_gzip_is_an_error(server, tmp_path):
    compressed = bytearray(gzip.compress(BIG))
    compressed[40:60] = b"\xff" * 20
    server.plan(Reply(200, bytes(compressed), GZIP_HEADERS))
    with pytest.raises(FetchError, match="corrupt compressed body"):
        fetch_to_file(make_session(retries=0), f"{server.url}/a.csv", tmp_path)


# Many blocks: received, hashed and written by three threads (fetch_to_file), in order.
MANY_BLOCKS = os.urandom(9 * (1 << 20) + 12_345)


def test_a_body_of_many_blocks_is_written_and_hashed_in_order(server, tmp_path):
    server.plan(Reply(200, MANY_BLOCKS))
    download = fetch_to_file(make_session(), f"{server.url}/a.csv", tmp_path)
    assert download.path.read_bytes() == MANY_BLOCKS
    assert download.sha256 == hashlib.sha256(MANY_BLOCKS).hexdigest() and download.size == len(MANY_BLOCKS)


@pytest.fixture
def files_limited_to_two_mib():
    """Files this process writes stop at 2 MiB (the kernel's EFBIG, as a full disk stops them)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 20, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_a_write_that_fails_stops_the_download_with_an_error_naming_the_url(server, tmp_path, files_limited_to_two_mib):
    server.plan(Reply(200, MANY_BLOCKS))
    with pytest.raises(FetchError, match=r"/a\.csv: download interrupted after \d+ bytes: .*File too large"):
        fetch_to_file(make_session(retries=0), f"{server.url}/a.csv", tmp_path)
    assert list(tmp_path.iterdir()) == []
