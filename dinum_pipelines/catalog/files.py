"""Hosted files on local disk, written so that no reader ever sees half a file.

A file is streamed into a hidden temporary file in its final folder (past the page cache where
the filesystem allows: lib/uncached.py), hashed while it is written (write_hashed), fsynced, then
renamed into place with `os.replace` (atomic on one filesystem). A crash mid-upload leaves only
a `.part` file, which nothing serves and `sweep_partials` removes later.

Files go out either from the catalog itself, or, behind nginx, through `X-Accel-Redirect`: the
catalog checks the request and counts the download, nginx sends the bytes (sendfile, no Python in
the data path; see bench/README.md for the figures and the nginx configuration).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import mimetypes
import os
import secrets
import tempfile
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from starlette.responses import FileResponse, Response

from dinum_pipelines.lib.uncached import UncachedWriter

_PARTIAL_SUFFIX = ".part"
_log = logging.getLogger("dinum_pipelines.catalog")
SNIFF_BYTES = 512  # the first bytes kept for content sniffing
# A block at least this large is hashed by another thread while it is written (write_hashed).
HASHED_BESIDE_BYTES = 256 << 10
_HASHING = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="upload-hash")
# Compression suffixes that keep the inner format in udata's `format` ("csv.gz").
_COMPRESSIONS = frozenset({"gz", "bz2", "xz", "zst"})
# Types Python's mimetypes table lacks or gets wrong for open data files.
_MIME_TYPES = {
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "geojson": "application/geo+json",
    "jsonl": "application/jsonl",
    "ndjson": "application/x-ndjson",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
}


def file_format(filename: str) -> str:
    """udata's `format`: the lower-case extension, keeping the inner one for compressed files."""
    parts = filename.lower().rsplit(".", 2)
    if len(parts) == 1:
        return ""
    if parts[-1] in _COMPRESSIONS and len(parts) == 3:
        return f"{parts[-2]}.{parts[-1]}"
    return parts[-1]


def guess_mime(filename: str) -> str:
    extension = filename.lower().rsplit(".", 1)[-1] if "." in filename else ""
    return _MIME_TYPES.get(extension) or mimetypes.guess_type(filename)[0] or "application/octet-stream"


def safe_filename(name: str) -> str:
    """The file's basename reduced to [A-Za-z0-9._-], accents stripped, never empty or hidden."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    ascii_name = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in ascii_name).strip(".-")
    return cleaned[:200] or "file"


def write_hashed(write: Callable[[memoryview], None], data: bytes, hash_block: Callable[[memoryview], None] | None) -> None:
    """`write(data)` and `hash_block(data)`, the hashing in another thread while this one writes
    a large block. A write is the kernel's or the disk's time (a copy into the page cache, or an
    O_DIRECT write waiting for the device): done one after the other, an upload went at the pace
    of their sum on one core, with the other idle (3 GB: 6.1-7.0 s, against 5.2-6.0 s beside).
    Both finish before this returns, so the next block is hashed after this one; the write's
    error is raised after the hashing ended."""
    view = memoryview(data)
    if hash_block is None or len(view) < HASHED_BESIDE_BYTES:
        write(view)
        if hash_block is not None:
            hash_block(view)
        return
    hashing = _HASHING.submit(hash_block, view)
    try:
        write(view)
    finally:
        hashing.result()


@dataclass(frozen=True)
class StoredFile:
    key: str
    sha1: str
    size: int
    head: bytes  # the first bytes, for content sniffing


class AtomicWriter:
    """Receives a file's bytes, hashing them; `commit` makes the file visible, `abort` drops it."""

    def __init__(self, final_path: Path, key: str, root: Path, *, hashed: bool = True) -> None:
        final_path.parent.mkdir(parents=True, exist_ok=True)
        self._final_path = final_path
        self._key = key
        self._root = root
        handle, temp_name = tempfile.mkstemp(dir=final_path.parent, prefix=f".{final_path.name}.", suffix=_PARTIAL_SUFFIX)
        self._temp_path = Path(temp_name)
        self._file = UncachedWriter(self._temp_path, handle, 0)
        # A part of a chunked upload needs no hash of its own: the assembled file gets one.
        self._sha1 = hashlib.sha1() if hashed else None
        self._size = 0
        self._head = bytearray()

    @property
    def head(self) -> bytes:
        return bytes(self._head)

    @property
    def head_complete(self) -> bool:
        """Enough bytes received to sniff the content."""
        return len(self._head) >= SNIFF_BYTES

    def write(self, data: bytes) -> None:
        write_hashed(self._file.write, data, self._sha1.update if self._sha1 is not None else None)
        self._size += len(data)
        if len(self._head) < SNIFF_BYTES:
            self._head.extend(data[: SNIFF_BYTES - len(self._head)])

    @property
    def size(self) -> int:
        return self._size

    def commit(self) -> StoredFile:
        return self.commit_to(self._final_path, self._key)

    def commit_to(self, final_path: Path, key: str, *, durable: bool = True) -> StoredFile:
        """Make the bytes visible at `final_path` instead of the path given at creation (a part of
        a chunked upload, known only once the whole request is read); same filesystem, so still a
        rename. Not `durable`: no fsync, the file may come back shorter or missing after a crash
        (for a part, which its reader checks and can ask again, so that it need not reach the
        disk before it is read back and deleted)."""
        assert self._file.fd is not None
        self._file.flush()
        if durable:
            os.fsync(self._file.fd)
        self._file.close()
        final_path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._temp_path, final_path)
        if durable:
            _fsync_dir(final_path.parent)
        if final_path.parent != self._temp_path.parent:
            _remove_empty_parents(self._temp_path, self._root)
        return StoredFile(key, self._sha1.hexdigest() if self._sha1 is not None else "", self._size, self.head)

    def abort(self) -> None:
        self._file.close()
        self._temp_path.unlink(missing_ok=True)
        _remove_empty_parents(self._temp_path, self._root)


def _remove_empty_parents(path: Path, root: Path) -> None:
    """Remove the folders above `path` that are now empty, up to (not including) `root`."""
    for folder in path.parents:
        if folder == root or root not in folder.parents:
            return
        try:
            folder.rmdir()
        except OSError:  # not empty, or gone
            return


def _fsync_dir(path: Path) -> None:
    """Persist a rename: the directory entry must reach the disk too (a no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LargeChunkFileResponse(FileResponse):
    """Starlette's FileResponse reads 64 KiB per worker-thread hop; 1 MiB reads need 16x fewer hops
    for the same constant memory (one chunk in flight)."""

    chunk_size = 1 << 20


class FileStore:
    """Files under `root`, addressed by keys `{dataset_id}/{YYYYMMDD-HHMMSS}-{random}/{name}`.

    Each upload gets a fresh folder (udata does the same), so a replaced file never overwrites the
    one a client may be downloading, and the URL changes when the content does.
    """

    def __init__(self, root: Path, *, accel_redirect_prefix: str | None = None) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.accel_redirect_prefix = accel_redirect_prefix

    def response(self, key: str, media_type: str | None) -> Response:
        """The download of `key`: the file itself, or the X-Accel-Redirect that has nginx send it."""
        path = self.path(key)
        if self.accel_redirect_prefix is None:
            return LargeChunkFileResponse(path, media_type=media_type, filename=path.name)
        # nginx keeps these headers of ours and adds the body, its length and ranges.
        return Response(
            headers={
                "X-Accel-Redirect": self.accel_redirect_prefix + quote(key),
                "Content-Disposition": f'attachment; filename="{path.name}"',
            },
            media_type=media_type or "application/octet-stream",
        )

    def new_key(self, dataset_id: str, filename: str) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        return f"{dataset_id}/{stamp}-{secrets.token_hex(3)}/{safe_filename(filename)}"

    def path(self, key: str) -> Path:
        """The file of `key`; refuses keys that would escape `root`."""
        relative = PurePosixPath(key)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise ValueError(f"invalid file key {key!r}")
        return self.root.joinpath(*relative.parts)

    def writer(self, key: str, *, hashed: bool = True) -> AtomicWriter:
        return AtomicWriter(self.path(key), key, self.root, hashed=hashed)

    def adopt(self, source: Path, key: str) -> None:
        """Move a whole, already fsynced file of the same filesystem (an assembled chunked upload)
        to `key`: a rename, persisted, so it appears whole or not at all, like a writer's commit."""
        final_path = self.path(key)
        final_path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, final_path)
        _fsync_dir(final_path.parent)

    def delete(self, key: str) -> None:
        """Remove a file and the folders it leaves empty (up to `root`)."""
        path = self.path(key)
        path.unlink(missing_ok=True)
        _remove_empty_parents(path, self.root)

    def sweep_partials(self, older_than_seconds: float = 24 * 3600) -> int:
        """Delete temporary files left by crashed uploads; returns how many were removed."""
        cutoff = time.time() - older_than_seconds
        removed = kept = 0
        for partial in self.root.rglob(f".*{_PARTIAL_SUFFIX}"):
            try:
                if partial.stat().st_mtime < cutoff:
                    partial.unlink()
                    removed += 1
                else:
                    kept += 1
            except FileNotFoundError:
                continue
        if removed or kept:
            # Younger ones may be uploads in flight in another process sharing the folder.
            _log.warning(
                "files: %d partial file(s) of interrupted uploads removed, %d younger than %d h kept for now",
                removed, kept, older_than_seconds // 3600,
            )
        return removed
