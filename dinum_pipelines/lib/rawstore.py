"""The raw store: every version ever downloaded, immutable, addressed by its sha256.

Keeping the administration's bytes exactly as served lets us explain any published file (which
download it came from, with which headers), rebuild after a cleaning fix without hitting the
source again, and tell "unchanged" from "changed" by content, not by the server's word.
Layout: `<root>/<slug>/<sha256>` plus `<root>/<slug>/manifest.jsonl`, one JSON line per version.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from dinum_pipelines.lib.http import Download, Validators


@dataclass(frozen=True)
class RawVersion:
    slug: str
    sha256: str
    size: int
    url: str
    fetched_at: str
    headers: dict[str, str]
    path: str

    @property
    def validators(self) -> Validators:
        return Validators(self.headers.get("etag"), self.headers.get("last-modified"))


class RawStore:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    def staging_dir(self, slug: str) -> Path:
        """Where downloads in progress are written: same filesystem, so the final move is atomic."""
        return self.root / slug / ".staging"

    def _manifest(self, slug: str) -> Path:
        return self.root / slug / "manifest.jsonl"

    def versions(self, slug: str) -> list[RawVersion]:
        manifest = self._manifest(slug)
        if not manifest.exists():
            return []
        with manifest.open(encoding="utf-8") as lines:
            return [RawVersion(**json.loads(line)) for line in lines if line.strip()]

    def latest(self, slug: str) -> RawVersion | None:
        versions = self.versions(slug)
        return versions[-1] if versions else None

    def add(self, slug: str, download: Download) -> RawVersion:
        """Move a completed download into the store and record it (idempotent on content)."""
        if download.path is None or download.sha256 is None or download.size is None:
            raise ValueError("only a completed download (status 200) can be stored")
        target = self.root / slug / download.sha256
        if target.exists():
            download.path.unlink(missing_ok=True)
        else:
            os.chmod(download.path, 0o444)
            os.replace(download.path, target)
        version = RawVersion(
            slug=slug,
            sha256=download.sha256,
            size=download.size,
            url=download.url,
            fetched_at=download.fetched_at.isoformat(),
            headers=download.headers,
            path=str(target),
        )
        with self._manifest(slug).open("a", encoding="utf-8") as manifest:
            manifest.write(json.dumps(asdict(version), ensure_ascii=False) + "\n")
            manifest.flush()
            os.fsync(manifest.fileno())
        return version
