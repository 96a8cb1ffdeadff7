"""udata's chunked upload protocol: a file of any size sent as parts small enough to retry one by one.

The fields are udata's (udata/core/storages/api.py): `uuid`, `filename`, `partindex`,
`partbyteoffset`, `totalparts`, `chunksize`, on the same endpoints as a whole upload. A request
with a `file` and `totalparts` > 1 is one part: its size must equal `chunksize` (else udata's 400
`{"success": false, "error": "Chunk size mismatch"}`), it is stored and answered
`{"success": true}`. A request with the fields and no `file` ends the upload: the parts are
streamed in order into the file store, hashed while written, and the resource is created or
replaced exactly as by a whole upload.

Parts live on disk in `{files}/.chunks/{dataset}/{uuid}/{partindex}-{partbyteoffset}-{size}`,
never in memory nor in the database, so an upload survives a restart and any catalog node sharing
the files folder can take the next part. A part becomes visible by a rename, so a retried part
replaces its earlier copy whole and a cut one is never seen; parts may arrive in any order. Parts
are not fsynced (the assembled file is): most are read back and deleted before they reach the
disk, which halves a chunked upload's time; a part a host crash lost or shortened is found by its
size at assembly and asked for again, never assembled.
Assembly first renames the folder away, so two concurrent final requests cannot both assemble; on
failure (a missing part...) it is renamed back and the client may send what is missing, then
the final request again. Folders untouched for a day are swept.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dinum_pipelines.catalog.api_schemas import BOOLEAN, STRING, Json, obj
from dinum_pipelines.catalog.errors import CatalogError, field_error
from dinum_pipelines.catalog.files import AtomicWriter, FileStore, StoredFile

CHUNKS_FOLDER = ".chunks"
# Bounds that refuse nonsense early; a part is meant to be a few MiB (the publisher sends 8).
MAX_PARTS = 100_000
MAX_CHUNK_BYTES = 1 << 30
MAX_UPLOAD_BYTES = 1 << 40
ABANDONED_AFTER_SECONDS = 24 * 3600
_COPY_BLOCK = 1 << 20
# The fields, as the OpenAPI document shows them (chunk_fields checks the same bounds).
CHUNK_FIELD_SCHEMAS: Json = {
    "uuid": {"type": "string", "format": "uuid", "description": "Chunked upload: the same on every part and the final request"},
    "filename": {"type": "string", "description": "Chunked upload: the file's name (its resource's title)"},
    "partindex": {"type": "integer", "minimum": 0, "maximum": MAX_PARTS - 1, "description": "Chunked upload: this part's rank, from 0"},
    "partbyteoffset": {"type": "integer", "minimum": 0, "maximum": MAX_UPLOAD_BYTES, "description": "Chunked upload: where this part starts in the file"},
    "totalparts": {"type": "integer", "minimum": 1, "maximum": MAX_PARTS, "description": "Chunked upload: how many parts (1: a whole upload)"},
    "chunksize": {"type": "integer", "minimum": 1, "maximum": MAX_CHUNK_BYTES, "description": "Chunked upload: this part's size in bytes"},
}
_log = logging.getLogger("dinum_pipelines.catalog")

PART_RECEIVED: Json = {"success": True}
# udata's UploadStatus model: a part's answer, and the 400 of a protocol error.
UPLOAD_STATUS_BODY: Json = obj({"success": BOOLEAN, "error": STRING}, optional=["error"])


class UploadStatusError(CatalogError):
    """A chunked upload that cannot go on as sent, answered with udata's body for it."""

    def body(self) -> dict[str, Any]:
        return {"success": False, "error": self.message}


@dataclass(frozen=True)
class ChunkFields:
    upload_id: str  # the client's uuid, normalized
    filename: str
    totalparts: int
    # A part's own fields; None on the final request, which carries no file.
    partindex: int | None = None
    partbyteoffset: int | None = None
    chunksize: int | None = None

    @property
    def is_part(self) -> bool:
        return self.partindex is not None


def chunk_fields(form: Mapping[str, str], *, has_file: bool) -> ChunkFields | None:
    """The chunked-upload fields of a request, validated; None for a whole upload (no
    `totalparts`, or 1, as udata). A wrong field is a 400 naming it."""
    if "totalparts" not in form:
        return None
    totalparts = _integer(form, "totalparts", 1, MAX_PARTS)
    if totalparts == 1:
        return None
    try:
        upload_id = str(uuid.UUID(form.get("uuid", "")))
    except ValueError:
        raise field_error("uuid", "A UUID is required to tie the parts of a chunked upload together.") from None
    filename = form.get("filename", "").strip()
    if not filename:
        raise field_error("filename", "This field is required in a chunked upload.")
    if not has_file:
        return ChunkFields(upload_id, filename, totalparts)
    partindex = _integer(form, "partindex", 0, totalparts - 1)
    chunksize = _integer(form, "chunksize", 1, MAX_CHUNK_BYTES)
    partbyteoffset = _integer(form, "partbyteoffset", 0, MAX_UPLOAD_BYTES - chunksize)
    return ChunkFields(upload_id, filename, totalparts, partindex, partbyteoffset, chunksize)


def _integer(form: Mapping[str, str], name: str, low: int, high: int) -> int:
    raw = form.get(name)
    if raw is None:
        raise field_error(name, "This field is required in a chunked upload.")
    try:
        value = int(raw.strip())
    except ValueError:
        raise field_error(name, f"Expected an integer, got {raw[:40]!r}.") from None
    if not low <= value <= high:
        raise field_error(name, f"Must be between {low} and {high}, got {value}.")
    return value


def parts_folder(files: FileStore, dataset_id: str, upload_id: str) -> Path:
    # Under the dataset: only its editors (checked by the endpoint) can add to or end an upload.
    return files.root / CHUNKS_FOLDER / dataset_id / upload_id


def store_part(files: FileStore, dataset_id: str, fields: ChunkFields, writer: AtomicWriter) -> None:
    """Make a received part visible in its upload's folder, replacing an earlier copy of it."""
    if writer.size != fields.chunksize:
        writer.abort()
        raise UploadStatusError("Chunk size mismatch")
    folder = parts_folder(files, dataset_id, fields.upload_id)
    name = f"{fields.partindex}-{fields.partbyteoffset}-{fields.chunksize}"
    writer.commit_to(folder / name, name, durable=False)
    # A retry sent with another offset leaves its first copy under another name.
    for earlier in folder.glob(f"{fields.partindex}-*"):
        if earlier.name != name:
            earlier.unlink(missing_ok=True)


def assemble(
    files: FileStore, dataset_id: str, fields: ChunkFields, check_head: Callable[[AtomicWriter], None]
) -> StoredFile:
    """Stream every part, in order, into a new file of the store (hashed as written) and drop the
    parts; `check_head` sees the writer once its first bytes are in (the HTML refusal)."""
    folder = parts_folder(files, dataset_id, fields.upload_id)
    claimed = folder.with_name(f"{folder.name}.assembling-{secrets.token_hex(4)}")
    try:
        folder.rename(claimed)
    except FileNotFoundError:
        raise UploadStatusError(f"No part received for upload {fields.upload_id}: send the parts, then this request.") from None
    writer: AtomicWriter | None = None
    try:
        parts = _parts_in_order(claimed, fields.totalparts)
        writer = files.writer(files.new_key(dataset_id, fields.filename))
        for part in parts:
            with part.open("rb") as source:
                while block := source.read(_COPY_BLOCK):
                    writer.write(block)
                    if writer.head_complete:
                        check_head(writer)
        check_head(writer)
        stored = writer.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        _put_back(claimed, folder)
        raise
    shutil.rmtree(claimed, ignore_errors=True)
    return stored


def _parts_in_order(folder: Path, totalparts: int) -> list[Path]:
    """The parts 0..totalparts-1, checked to follow each other byte for byte."""
    found: dict[int, tuple[int, int, Path]] = {}
    for path in folder.iterdir():
        index, offset, size = map(int, path.name.split("-"))
        if index in found:  # two retries with different offsets raced: only a resend settles it
            raise UploadStatusError(f"Part {index} was received twice with different offsets: send it again.")
        found[index] = (offset, size, path)
    missing = [index for index in range(totalparts) if index not in found]
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (", ..." if len(missing) > 20 else "")
        raise UploadStatusError(f"Missing parts {shown} (of {totalparts}): send them, then this request again.")
    beyond = sorted(index for index in found if index >= totalparts)
    if beyond:
        raise UploadStatusError(f"Parts {beyond[:20]} are beyond totalparts ({totalparts}).")
    ordered: list[Path] = []
    expected_offset = 0
    for index in range(totalparts):
        offset, size, path = found[index]
        if offset != expected_offset:
            raise UploadStatusError(f"Part {index} starts at byte {offset}, but the parts before it end at byte {expected_offset}.")
        if path.stat().st_size != size:
            raise UploadStatusError(f"Part {index} was lost by the catalog (a restart?): send it again, then this request.")
        expected_offset += size
        ordered.append(path)
    return ordered


def _put_back(claimed: Path, folder: Path) -> None:
    """Return the parts of a failed assembly to their folder, merging with parts sent meanwhile."""
    try:
        claimed.rename(folder)
        return
    except OSError:  # the folder was created again by a part that arrived during the assembly
        pass
    for path in claimed.iterdir():
        index = path.name.partition("-")[0]
        if not any(folder.glob(f"{index}-*")):
            os.replace(path, folder / path.name)
    shutil.rmtree(claimed, ignore_errors=True)


def sweep_abandoned_parts(files: FileStore, older_than_seconds: float = ABANDONED_AFTER_SECONDS) -> int:
    """Delete the parts of uploads nobody has added to for `older_than_seconds`; returns how many
    uploads were dropped."""
    cutoff = time.time() - older_than_seconds
    removed = 0
    for folder in (files.root / CHUNKS_FOLDER).glob("*/*"):
        try:
            last_touched = max([folder.stat().st_mtime, *(path.stat().st_mtime for path in folder.iterdir())])
        except FileNotFoundError:  # assembled or swept meanwhile
            continue
        if last_touched < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
            try:
                folder.parent.rmdir()
            except OSError:  # other uploads of the dataset in flight
                pass
    if removed:
        _log.warning("files: the parts of %d abandoned chunked upload(s) removed", removed)
    return removed
