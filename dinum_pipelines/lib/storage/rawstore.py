"""The raw store: every version ever downloaded, immutable, addressed by its sha256.

Keeping the administration's bytes exactly as served lets us explain any published file (which
download it came from, with which headers), rebuild after a cleaning fix without hitting the
source again, and tell "unchanged" from "changed" by content, not by the server's word.

Layout under the root: `<slug>/<sha256>` plus `<slug>/manifest.jsonl`, one JSON line per
version. The root is a local folder by default or any fsspec URL (`s3://bucket/raw`, ...) in
production; downloads are staged on local disk first, so a half download is never stored.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import fsspec

from dinum_pipelines.lib.ingest.http import Download, Validators


@dataclass(frozen=True)
class RawVersion:
    slug: str
    sha256: str
    size: int
    url: str
    fetched_at: str
    headers: dict[str, str]
    # Where the bytes are, in the store's own terms (a local path or an fsspec URL).
    path: str

    @property
    def validators(self) -> Validators:
        return Validators(self.headers.get("etag"), self.headers.get("last-modified"))


class RawStore:
    def __init__(self, root: Path | str, *, keep_versions: int | None = None, local_cache: Path | None = None):
        """`keep_versions`: how many versions to keep per dataset (None keeps them all)."""
        if keep_versions is not None and keep_versions < 1:
            raise ValueError("keep_versions must be at least 1 (the latest version is always kept)")
        self.root = str(root)
        self.fs, self._base = fsspec.core.url_to_fs(self.root)
        self.is_local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))
        self.keep_versions = keep_versions
        self._cache = local_cache or Path(tempfile.gettempdir()) / "dinum_raw_cache"

    def _path(self, *parts: str) -> str:
        return "/".join([self._base.rstrip("/"), *parts])

    def staging_dir(self, slug: str) -> Path:
        """Local folder for downloads in progress (on the store's filesystem when it is local,
        so that the final move is an atomic rename)."""
        if self.is_local:
            return Path(self._path(slug, ".staging"))
        return self._cache / slug / ".staging"

    def versions(self, slug: str) -> list[RawVersion]:
        manifest = self._path(slug, "manifest.jsonl")
        if not self.fs.exists(manifest):
            return []
        with self.fs.open(manifest, "r", encoding="utf-8") as lines:
            return [RawVersion(**json.loads(line)) for line in lines if line.strip()]

    def latest(self, slug: str) -> RawVersion | None:
        versions = self.versions(slug)
        return versions[-1] if versions else None

    def local_path(self, version: RawVersion) -> Path:
        """A local file holding the version's bytes (downloaded once into the cache if remote)."""
        if self.is_local:
            return Path(version.path)
        cached = self._cache / version.slug / version.sha256
        if not cached.exists():
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(".part")
            self.fs.get(version.path, str(partial))
            os.replace(partial, cached)
        return cached

    def add(self, slug: str, download: Download) -> RawVersion:
        """Move a completed download into the store and record it (content already held is not copied again)."""
        if download.path is None or download.sha256 is None or download.size is None:
            raise ValueError("only a completed download (status 200) can be stored")
        target = self._path(slug, download.sha256)
        if self.fs.exists(target):
            download.path.unlink(missing_ok=True)
        elif self.is_local:
            os.chmod(download.path, 0o444)
            os.replace(download.path, target)
        else:
            self.fs.put_file(str(download.path), target)
            download.path.unlink(missing_ok=True)
        version = RawVersion(
            slug=slug,
            sha256=download.sha256,
            size=download.size,
            url=download.url,
            fetched_at=download.fetched_at.isoformat(),
            headers=download.headers,
            path=target if self.is_local else self.fs.unstrip_protocol(target),
        )
        versions = self.versions(slug) + [version]
        if self.keep_versions is not None:
            versions = self._prune(slug, versions)
        self._write_manifest(slug, versions)
        return version

    def _prune(self, slug: str, versions: list[RawVersion]) -> list[RawVersion]:
        kept = versions[-self.keep_versions :]
        still_used = {v.sha256 for v in kept}
        for old in versions[: -self.keep_versions]:
            path = self._path(slug, old.sha256)
            if old.sha256 not in still_used and self.fs.exists(path):
                self.fs.rm_file(path)
        return kept

    def _write_manifest(self, slug: str, versions: list[RawVersion]) -> None:
        text = "".join(json.dumps(asdict(v), ensure_ascii=False) + "\n" for v in versions)
        manifest = self._path(slug, "manifest.jsonl")
        if self.is_local:
            # Write beside and rename: a crash never leaves a truncated manifest.
            tmp = Path(self._path(slug, ".manifest.jsonl.tmp"))
            with tmp.open("w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, manifest)
        else:
            self.fs.pipe_file(manifest, text.encode("utf-8"))
