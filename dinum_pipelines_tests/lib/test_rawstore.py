"""The raw store keeps every version immutable, by content, locally or on any fsspec filesystem."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dinum_pipelines.lib.ingest.http import Download
from dinum_pipelines.lib.storage.rawstore import RawStore


def staged(store: RawStore, slug: str, content: bytes) -> Download:
    folder = store.staging_dir(slug)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"dl-{uuid.uuid4().hex}"
    path.write_bytes(content)
    return Download(
        url="http://127.0.0.1:9/a.csv", status_code=200, fetched_at=datetime.now(UTC),
        headers={"etag": '"x"'}, path=path, sha256=hashlib.sha256(content).hexdigest(), size=len(content),
    )


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path):
    if request.param == "local":
        return RawStore(tmp_path / "raw", local_cache=tmp_path / "cache")
    return RawStore(f"memory://raw-{uuid.uuid4().hex}", local_cache=tmp_path / "cache")


def test_versions_are_content_addressed_and_recorded(store):
    first = store.add("ds", staged(store, "ds", b"v1"))
    second = store.add("ds", staged(store, "ds", b"v2"))
    assert [v.sha256 for v in store.versions("ds")] == [first.sha256, second.sha256]
    assert store.latest("ds") == second
    assert store.local_path(first).read_bytes() == b"v1"
    assert store.local_path(second).read_bytes() == b"v2"
    assert second.validators.etag == '"x"'
    assert not any(store.staging_dir("ds").iterdir())


def test_stored_files_are_read_only_locally(tmp_path):
    store = RawStore(tmp_path / "raw")
    version = store.add("ds", staged(store, "ds", b"v1"))
    assert Path(version.path).stat().st_mode & 0o222 == 0  # no write bit (root could still write)


def test_retention_keeps_the_latest_versions(store):
    versions = [store.add("ds", staged(store, "ds", f"v{i}".encode())) for i in range(4)]
    pruned = RawStore(store.root, keep_versions=2, local_cache=store._cache)
    pruned.add("ds", staged(pruned, "ds", b"v4"))
    kept = pruned.versions("ds")
    assert [v.sha256 for v in kept] == [versions[3].sha256, hashlib.sha256(b"v4").hexdigest()]
    assert not store.fs.exists(store._path("ds", versions[0].sha256))


def test_unknown_dataset_has_no_versions(store):
    assert store.versions("nothing") == [] and store.latest("nothing") is None
