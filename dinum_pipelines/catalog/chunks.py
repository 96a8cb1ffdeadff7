"""udata's chunked upload protocol: a file of any size sent as parts small enough to retry one by one.

The fields are udata's (udata/core/storages/api.py): `uuid`, `filename`, `partindex`,
`partbyteoffset`, `totalparts`, `chunksize`, on the same endpoints as a whole upload. A request
with a `file` and `totalparts` > 1 is one part: its size must equal `chunksize` (else udata's 400
`{"success": false, "error": "Chunk size mismatch"}`), it is stored and answered
`{"success": true}`. A request with the fields and no `file` ends the upload: the parts are
checked and moved into the file store, and the resource is created or replaced exactly as by a
whole upload.

Parts are written in place, at their offset (past the page cache: lib/uncached.py), into one file per
upload, `{files}/.chunks/{dataset}/{uuid}/data`, never in memory nor in the database, so an upload survives
a restart and any catalog node sharing the files folder can take the next part. A part becomes
visible once all its bytes are in, by an empty marker file beside the data,
`{partindex}-{partbyteoffset}-{size}-{crc32}`: a retried part rewrites its bytes and replaces the
marker, a cut one leaves no marker and is never seen; parts may arrive in any order. Nothing is
fsynced while parts arrive, and assembly neither copies nor deletes gigabytes: it reads the file
once for its sha1 and each part's CRC-32 while a thread fsyncs it, then renames it into the file
store. A part a host crash lost, shortened or left as zeros (its marker made it to the disk, its
bytes did not) no longer matches its marker's size or CRC: it is asked for again, never assembled.
(Parts used to be files of their own, copied into a new file at assembly: at 10M rows, 1.8 GB
written twice and a final request of 7 s, of which the copy 2.5 s and deleting the parts 0.9 s.)
When this process received every part, in order, it hashed them as they came (`_RunningSha1s`):
assembly then reads nothing back, since the bytes it wrote cannot have been lost without this
process dying with its memory; parts received by several nodes, out of order or before a
restart are read back as above.
Assembly first renames the folder away, so two concurrent final requests cannot both assemble; on
failure (a missing part...) it is renamed back and the client may send what is missing, then
the final request again. Folders untouched for a day are swept.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import threading
import time
import uuid
import weakref
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from dinum_pipelines.catalog.api_schemas import BOOLEAN, STRING, Json, obj
from dinum_pipelines.catalog.errors import CatalogError, field_error
from dinum_pipelines.catalog.files import SNIFF_BYTES, AtomicWriter, FileStore, StoredFile, write_hashed
from dinum_pipelines.lib.uncached import UncachedWriter

CHUNKS_FOLDER = ".chunks"
# The file the parts of an upload are written into, beside their markers.
DATA_FILE = "data"
# Bounds that refuse nonsense early; a part is meant to be tens of MiB (the publisher sends 32).
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
CHUNK_FIELD_REQUIRED = "This field is required in a chunked upload."
_NUMBERS = tuple(name for name, schema in CHUNK_FIELD_SCHEMAS.items() if schema["type"] == "integer")
PART_BEYOND_TOTAL = "A part beyond the upload's last one"
PART_BEYOND_LIMIT = "A part ending beyond the largest upload accepted"
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
    `totalparts`, or 1, as udata). A wrong field is a 400 naming it, whole upload or not: a
    number sent is within the bounds the OpenAPI document gives it (CHUNK_FIELD_SCHEMAS)."""
    numbers = {name: _integer(form, name) for name in _NUMBERS if name in form}
    upload_id = _upload_id(form) if "uuid" in form else None
    totalparts = numbers.get("totalparts", 1)
    if totalparts == 1:
        return None
    if upload_id is None:
        upload_id = _upload_id(form)
    filename = form.get("filename", "").strip()
    if not filename:
        raise field_error("filename", CHUNK_FIELD_REQUIRED)
    if not has_file:
        return ChunkFields(upload_id, filename, totalparts)
    missing = next((name for name in ("partindex", "chunksize", "partbyteoffset") if name not in numbers), None)
    if missing is not None:
        raise field_error(missing, CHUNK_FIELD_REQUIRED)
    partindex, chunksize, partbyteoffset = numbers["partindex"], numbers["chunksize"], numbers["partbyteoffset"]
    # What ties the fields together, which the document's bounds of each cannot say.
    if partindex >= totalparts:
        raise field_error("partindex", f"{PART_BEYOND_TOTAL}: {partindex} (of {totalparts}).")
    if partbyteoffset + chunksize > MAX_UPLOAD_BYTES:
        raise field_error("partbyteoffset", f"{PART_BEYOND_LIMIT} ({MAX_UPLOAD_BYTES} bytes).")
    return ChunkFields(upload_id, filename, totalparts, partindex, partbyteoffset, chunksize)


def _upload_id(form: Mapping[str, str]) -> str:
    try:
        return str(uuid.UUID(form.get("uuid", "")))
    except ValueError:
        raise field_error("uuid", "A UUID is required to tie the parts of a chunked upload together.") from None


def _integer(form: Mapping[str, str], name: str) -> int:
    """A numeric chunk field, within the bounds CHUNK_FIELD_SCHEMAS gives it."""
    raw = form[name]
    try:
        value = int(raw.strip())
    except ValueError:
        raise field_error(name, f"Expected an integer, got {raw[:40]!r}.") from None
    low, high = CHUNK_FIELD_SCHEMAS[name]["minimum"], CHUNK_FIELD_SCHEMAS[name]["maximum"]
    if not low <= value <= high:
        raise field_error(name, f"Must be between {low} and {high}, got {value}.")
    return value


def parts_folder(files: FileStore, dataset_id: str, upload_id: str) -> Path:
    # Under the dataset: only its editors (checked by the endpoint) can add to or end an upload.
    return files.root / CHUNKS_FOLDER / dataset_id / upload_id


@dataclass
class _RunningSha1:
    sha1: Any  # hashlib's sha1 of the parts' bytes so far
    end: int  # the offset the next part must start at to continue it
    markers: tuple[str, ...]  # the parts hashed, as their markers name them


class _RunningSha1s:
    """The sha1 of each upload whose parts this process received from the first, one after the
    other, kept until its assembly (at most `capacity` uploads: the oldest, likely abandoned, go).

    A part starting where the previous one ended continues a copy of the hash, which becomes the
    upload's when the part is stored; a part sent again, or out of order, leaves the hash as it
    was, and assembly uses it only if the markers on disk are exactly the parts it hashed."""

    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        self._uploads: OrderedDict[str, _RunningSha1] = OrderedDict()
        self._lock = threading.Lock()

    def continued(self, folder: Path, offset: int) -> Any | None:
        """A hash to continue with a part starting at `offset`, or None if it does not follow."""
        if offset == 0:
            return hashlib.sha1()
        with self._lock:
            running = self._uploads.get(str(folder))
            return running.sha1.copy() if running is not None and running.end == offset else None

    def stored(self, folder: Path, offset: int, size: int, sha1: Any, marker: str) -> None:
        key = str(folder)
        with self._lock:
            running = self._uploads.get(key)
            if offset == 0:
                self._uploads[key] = _RunningSha1(sha1, size, (marker,))
            elif running is not None and running.end == offset:
                self._uploads[key] = _RunningSha1(sha1, offset + size, (*running.markers, marker))
            else:
                return
            self._uploads.move_to_end(key)
            while len(self._uploads) > self._capacity:
                self._uploads.popitem(last=False)

    def take(self, folder: Path, parts: list[_Part], size: int) -> str | None:
        """The sha1 of the upload if this process hashed exactly its `parts`, in order; forgotten either way."""
        with self._lock:
            running = self._uploads.pop(str(folder), None)
        if running is None or running.end != size or running.markers != tuple(part.marker for part in parts):
            return None
        return running.sha1.hexdigest()


# Per file store, that is per catalog instance (a test may run several in one process, as nodes).
_RUNNING_SHA1S: weakref.WeakKeyDictionary[FileStore, _RunningSha1s] = weakref.WeakKeyDictionary()
_RUNNING_SHA1S_LOCK = threading.Lock()


def _running_sha1s(files: FileStore) -> _RunningSha1s:
    with _RUNNING_SHA1S_LOCK:
        running = _RUNNING_SHA1S.get(files)
        if running is None:
            running = _RUNNING_SHA1S[files] = _RunningSha1s()
        return running


class PartWriter:
    """A part received straight into its upload's data file, at its offset, with its CRC-32
    (the marker records it: assembly reads it back to find a part a crash lost) and, when it
    follows the parts this process received before it, the upload's running sha1. Offers what
    receive_upload uses of an AtomicWriter."""

    def __init__(self, folder: Path, fields: ChunkFields, running: _RunningSha1s) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.fields = fields
        assert fields.partbyteoffset is not None
        data = folder / DATA_FILE
        self._file = UncachedWriter(data, os.open(data, os.O_WRONLY | os.O_CREAT, 0o644), fields.partbyteoffset)
        self._size = 0
        self._crc = 0
        self._running = running
        self._sha1 = running.continued(folder, fields.partbyteoffset)

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> None:
        write_hashed(self._file.write, data, self._hash_block)
        self._size += len(data)

    def _hash_block(self, view: memoryview) -> None:
        self._crc = zlib.crc32(view, self._crc)
        if self._sha1 is not None:
            self._sha1.update(view)

    def close(self) -> None:
        """The part's bytes all written (none held by this writer), its descriptors closed."""
        try:
            self._file.flush()
        finally:
            self._file.close()

    def marker(self) -> str:
        return f"{self.fields.partindex}-{self.fields.partbyteoffset}-{self._size}-{self._crc:08x}"

    def stored(self) -> None:
        """The part is visible under its marker: its bytes continue the upload's running sha1."""
        if self._sha1 is not None:
            assert self.fields.partbyteoffset is not None
            self._running.stored(self.folder, self.fields.partbyteoffset, self._size, self._sha1, self.marker())

    def abort(self) -> None:
        """The part is dropped: its bytes stay in the data file, unseen without a marker; the
        file itself goes when no part of the upload has been received."""
        self._file.close()  # what the writer still holds is dropped with the part
        _remove_if_no_part(self.folder)


def part_writer(files: FileStore, dataset_id: str, fields: ChunkFields) -> PartWriter:
    return PartWriter(parts_folder(files, dataset_id, fields.upload_id), fields, _running_sha1s(files))


def _remove_if_no_part(folder: Path) -> None:
    try:
        if any(name != DATA_FILE for name in os.listdir(folder)):
            return
        (folder / DATA_FILE).unlink(missing_ok=True)
        folder.rmdir()
        folder.parent.rmdir()  # the dataset's folder, when no other upload is in flight
    except OSError:  # gone, or another part arrived meanwhile (it sees its bytes missing at assembly)
        pass


def store_part(files: FileStore, dataset_id: str, fields: ChunkFields, writer: PartWriter | AtomicWriter) -> None:
    """Make a received part visible in its upload's folder, replacing an earlier copy of it. A part
    whose fields came after its bytes was received as a file of its own: it is copied in place."""
    if writer.size != fields.chunksize:
        writer.abort()
        raise UploadStatusError("Chunk size mismatch")
    folder = parts_folder(files, dataset_id, fields.upload_id)
    if isinstance(writer, PartWriter) and writer.fields == fields:
        writer.close()
        name = writer.marker()
    else:
        name = _copy_in(folder, fields, writer)
    # A retry sent with another offset (or other bytes) leaves its first marker under another name.
    for earlier in folder.glob(f"{fields.partindex}-*"):
        if earlier.name != name:
            earlier.unlink(missing_ok=True)
    (folder / name).touch()
    if isinstance(writer, PartWriter):
        writer.stored()


def _copy_in(folder: Path, fields: ChunkFields, writer: PartWriter | AtomicWriter) -> str:
    """A part received elsewhere (its fields followed its bytes) copied into the data file; its marker's name."""
    if isinstance(writer, PartWriter):  # written in place for other fields than the final ones
        writer.abort()
        raise field_error("partbyteoffset", "The chunk fields changed between the part's headers and its end.")
    folder.mkdir(parents=True, exist_ok=True)
    received = folder / f".received-{secrets.token_hex(4)}"
    writer.commit_to(received, received.name, durable=False)
    try:
        crc = 0
        with received.open("rb") as source:
            while block := source.read(_COPY_BLOCK):
                crc = zlib.crc32(block, crc)
            target = os.open(folder / DATA_FILE, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                _copy_range_to(source.fileno(), target, 0, fields.partbyteoffset, fields.chunksize)
            finally:
                os.close(target)
    finally:
        received.unlink(missing_ok=True)
    return f"{fields.partindex}-{fields.partbyteoffset}-{fields.chunksize}-{crc:08x}"


def assemble(
    files: FileStore, dataset_id: str, fields: ChunkFields, check_head: Callable[[bytes], None]
) -> StoredFile:
    """Check the upload's data file against its parts' markers, hash it, make it durable and move
    it into the store; `check_head` sees its first bytes (the HTML refusal)."""
    folder = parts_folder(files, dataset_id, fields.upload_id)
    claimed = folder.with_name(f"{folder.name}.assembling-{secrets.token_hex(4)}")
    try:
        folder.rename(claimed)
    except FileNotFoundError:
        raise UploadStatusError(f"No part received for upload {fields.upload_id}: send the parts, then this request.") from None
    try:
        parts = _parts_in_order(claimed, fields.totalparts)
        data = claimed / DATA_FILE
        size = sum(part.size for part in parts)
        with data.open("r+b") as handle:
            if os.fstat(handle.fileno()).st_size < size:
                lost = next(part for part in parts if part.offset + part.size > os.fstat(handle.fileno()).st_size)
                raise UploadStatusError(f"Part {lost.index} was lost by the catalog (a restart?): send it again, then this request.")
            handle.truncate(size)  # bytes beyond: a part first sent with a larger offset
            head = handle.read(SNIFF_BYTES)
            check_head(head)
            sha1 = _running_sha1s(files).take(folder, parts, size)
            if sha1 is not None:  # hashed as it came, by this process: nothing can be missing
                os.fsync(handle.fileno())
            else:
                # The fsync (the disk's time) runs while the file is read back (the CPU's).
                durable = threading.Thread(target=os.fsync, args=(handle.fileno(),), name="assembly-fsync")
                durable.start()
                try:
                    sha1 = _checked_sha1(handle, parts)
                finally:
                    durable.join()
                os.fsync(handle.fileno())  # returns at once: only for its error, which the thread's would hide
        key = files.new_key(dataset_id, fields.filename)
        files.adopt(data, key)
    except BaseException:
        _put_back(claimed, folder)
        raise
    shutil.rmtree(claimed, ignore_errors=True)  # the markers
    return StoredFile(key, sha1, size, head)


def _checked_sha1(handle: BinaryIO, parts: list[_Part]) -> str:
    """The file's sha1, reading each part's bytes once and checking them against its marker's CRC."""
    digest = hashlib.sha1()
    handle.seek(0)
    for part in parts:
        crc, left = 0, part.size
        while left:
            block = handle.read(min(left, _COPY_BLOCK))
            if not block:
                break
            digest.update(block)
            crc = zlib.crc32(block, crc)
            left -= len(block)
        if left or crc != part.crc:
            raise UploadStatusError(f"Part {part.index} was lost by the catalog (a restart?): send it again, then this request.")
    return digest.hexdigest()


@dataclass(frozen=True)
class _Part:
    index: int
    offset: int
    size: int
    crc: int
    marker: str


def _markers(folder: Path) -> list[_Part]:
    found = []
    for name in os.listdir(folder):
        fields = name.split("-")
        if len(fields) != 4 or not fields[0].isdigit():
            continue  # the data file, a part being copied in
        index, offset, size = map(int, fields[:3])
        found.append(_Part(index, offset, size, int(fields[3], 16), name))
    return found


def _parts_in_order(folder: Path, totalparts: int) -> list[_Part]:
    """The parts 0..totalparts-1, checked to follow each other byte for byte."""
    found: dict[int, _Part] = {}
    for part in _markers(folder):
        if part.index in found:  # two retries with different offsets raced: only a resend settles it
            raise UploadStatusError(f"Part {part.index} was received twice with different offsets or bytes: send it again.")
        found[part.index] = part
    missing = [index for index in range(totalparts) if index not in found]
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (", ..." if len(missing) > 20 else "")
        raise UploadStatusError(f"Missing parts {shown} (of {totalparts}): send them, then this request again.")
    beyond = sorted(index for index in found if index >= totalparts)
    if beyond:
        raise UploadStatusError(f"Parts {beyond[:20]} are beyond totalparts ({totalparts}).")
    ordered: list[_Part] = []
    expected_offset = 0
    for index in range(totalparts):
        part = found[index]
        if part.offset != expected_offset:
            raise UploadStatusError(f"Part {index} starts at byte {part.offset}, but the parts before it end at byte {expected_offset}.")
        expected_offset += part.size
        ordered.append(part)
    return ordered


def _put_back(claimed: Path, folder: Path) -> None:
    """Return the parts of a failed assembly to their folder, merging with parts sent meanwhile
    (copied into the new data file, which the parts sent meanwhile are in)."""
    try:
        claimed.rename(folder)
        return
    except OSError:  # the folder was created again by a part that arrived during the assembly
        pass
    present = {part.index for part in _markers(folder)}
    target = os.open(folder / DATA_FILE, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with (claimed / DATA_FILE).open("rb") as source:
            for part in _markers(claimed):
                if part.index in present:
                    continue
                _copy_range(source.fileno(), target, part.offset, part.size)
                (folder / part.marker).touch()
    except OSError:  # the claimed data is unreadable: those parts are asked for again
        pass
    finally:
        os.close(target)
    shutil.rmtree(claimed, ignore_errors=True)


def _copy_range(source: int, target: int, offset: int, size: int) -> None:
    """Bytes [offset, offset + size) of one file to the same place in another."""
    _copy_range_to(source, target, offset, offset, size)


def _copy_range_to(source: int, target: int, source_offset: int, target_offset: int, size: int) -> None:
    """`size` bytes from `source_offset` of one file to `target_offset` of another (the kernel's copy)."""
    done = 0
    while done < size:
        try:
            count = os.copy_file_range(source, target, size - done, source_offset + done, target_offset + done)
        except OSError:  # no kernel copy between these files: through Python
            block = os.pread(source, min(size - done, _COPY_BLOCK), source_offset + done)
            count = os.pwrite(target, block, target_offset + done) if block else 0
        if count == 0:
            raise OSError(f"copy of {size} bytes from byte {source_offset} cut short")
        done += count


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
