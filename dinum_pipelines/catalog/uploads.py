"""Streaming `multipart/form-data` uploads straight into the file store.

Starlette's `request.form()` spools each file to a temporary file before the handler sees it; we
parse the stream ourselves instead, so a 200 MB upload goes to its final folder once, hashed as it
arrives, and never sits in memory. The same body may be one part of udata's chunked upload
protocol, or its final request (chunks.py): the small form fields beside the file say which.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from dinum_pipelines.catalog.api_schemas import Json, obj
from dinum_pipelines.catalog.chunks import (
    CHUNK_FIELD_SCHEMAS, ChunkFields, PartWriter, UploadStatusError, assemble, chunk_fields, part_writer, store_part,
    sweep_abandoned_parts,
)
from dinum_pipelines.catalog.errors import UnsupportedMediaType, field_error
from dinum_pipelines.catalog.files import AtomicWriter, FileStore, StoredFile, file_format, guess_mime
from dinum_pipelines.catalog.validation import CONTROL_CHARACTERS
# One rule for "this is an HTML page, not data", shared with the downloader.
from dinum_pipelines.lib.ingest.http import looks_like_html

FILE_FIELD = "file"
_FIELD_BYTES = 1024  # a chunk field is a number, a UUID or a file name
# The body receive_upload reads, for the OpenAPI document (other parts are accepted and dropped):
# a whole file, or udata's chunked protocol: parts (`file` + every field), then the final request
# (`uuid`, `filename`, `totalparts`, no `file`), whose answer is the resource.
_NAMED: Json = {"pattern": r"\S"}  # a file name with something besides blanks
UPLOAD_BODY: Json = {
    **obj({FILE_FIELD: {"type": "string", "format": "binary"}, **CHUNK_FIELD_SCHEMAS}, optional=[FILE_FIELD, *CHUNK_FIELD_SCHEMAS], closed=False),
    # A whole file, or a part of a chunked upload (totalparts 2 or more) with every field
    # (chunks.chunk_fields). The final request, without a file, is said in the description only:
    # its schema needs `not` ("no file"), on which schemathesis 4.32 fails with multipart bodies.
    "anyOf": [
        {"required": [FILE_FIELD], "properties": {"totalparts": {"maximum": 1}}},
        {"required": [FILE_FIELD, *CHUNK_FIELD_SCHEMAS], "properties": {"totalparts": {"minimum": 2}, "filename": _NAMED}},
    ],
    "description": "A whole file in `file`; or udata's chunked upload: each part sends `file` with every other field "
    "(answered `{\"success\": true}`), then a final request without `file` assembles them and answers the resource.",
}
# What the event loop gathers before a worker thread writes it (see _WriteBehind): at least
# WRITE_MIN_BYTES (fewer hand-offs), at most WRITE_BLOCK_BYTES while the previous block is written.
WRITE_BLOCK_BYTES = 1 << 20
WRITE_MIN_BYTES = 256 << 10
# Writes of every upload in flight; each upload has at most one at a time, so its bytes stay in order.
_WRITES = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="upload-write")
HTML_REFUSED = "HTML files are not accepted: the upload looks like a web page (often an error page saved by mistake)."


@dataclass(frozen=True)
class ReceivedFile:
    stored: StoredFile
    filename: str  # the client's file name, without folders

    def resource_fields(self) -> dict[str, object]:
        """What the server sets on a resource from an uploaded file (udata's upload fields)."""
        return {
            "filetype": "file",
            "url": None,
            "checksum": {"type": "sha1", "value": self.stored.sha1},
            "filesize": self.stored.size,
            "mime": guess_mime(self.filename),
            "format": file_format(self.filename),
        }


class _WriteBehind:
    """A writer's bytes accepted by the event loop and written by a worker thread a block behind.

    Copying a block into the page cache is a system call of milliseconds (several per MiB on a
    VM that backs new pages on demand), plus the part's CRC-32 or the file's sha1: done on the
    event loop, they kept it from receiving the next bytes, and an upload went at one core's
    pace. Here the loop hands what it received (WRITE_MIN_BYTES at least) to a thread and goes on
    receiving while it is written; while a block is being written, the next one gathers, up to
    WRITE_BLOCK_BYTES, then the loop waits for the first (so at most two blocks are held). `drain` before the writer is committed or stored; `settle`
    before it is aborted (no thread may write into a closed descriptor)."""

    def __init__(self, writer: AtomicWriter | PartWriter) -> None:
        self.writer = writer
        self.size = writer.size  # bytes accepted, written or not
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._writing: concurrent.futures.Future | None = None

    def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_bytes += len(data)
        self.size += len(data)

    async def flush(self, *, whole: bool = False) -> None:
        """Hand the gathered bytes to a thread once there are WRITE_MIN_BYTES; while it still
        writes the previous block, once there are WRITE_BLOCK_BYTES (`whole`: whatever is left)."""
        if not self._pending or (self._pending_bytes < WRITE_MIN_BYTES and not whole):
            return
        if self._writing is not None:
            if not self._writing.done() and self._pending_bytes < WRITE_BLOCK_BYTES and not whole:
                return
            await asyncio.wrap_future(self._writing)  # raises the previous block's error
        block = b"".join(self._pending)
        self._pending, self._pending_bytes = [], 0
        self._writing = _WRITES.submit(self.writer.write, block)

    async def drain(self) -> None:
        await self.flush(whole=True)
        if self._writing is not None:
            writing, self._writing = self._writing, None
            await asyncio.wrap_future(writing)

    def settle(self) -> None:
        """Wait for the block being written, whatever its outcome (a failing upload is being aborted)."""
        if self._writing is not None:
            concurrent.futures.wait([self._writing])
            self._writing = None
        self._pending.clear()


@dataclass
class _PartState:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    header_name: bytes = b""
    header_value: bytes = b""
    writer: _WriteBehind | None = None  # set while the current part is the file being stored
    field_name: str | None = None  # set while the current part is one of the chunk fields
    field_value: bytearray = field(default_factory=bytearray)


async def receive_upload(request: Request, files: FileStore, dataset_id: str) -> ReceivedFile | None:
    """Store the file of the request body: the whole file, or one part of a chunked upload (then
    None), or on a chunked upload's final request the file its parts make. 400 without a file or
    for a wrong chunk field, 415 for an HTML page."""
    content_type, params = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise field_error(FILE_FIELD, "Expected a multipart/form-data body with a 'file' field.")

    part = _PartState()
    writer: AtomicWriter | PartWriter | None = None
    behind: _WriteBehind | None = None  # the writer's bytes, written by a thread
    filename = ""
    complete = False
    form: dict[str, str] = {}
    part_limit: int | None = None  # a part's announced size, once known: no byte beyond it is stored

    def on_part_begin() -> None:
        nonlocal part
        part = _PartState()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        part.header_name += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        part.header_value += data[start:end]

    def on_header_end() -> None:
        part.headers[part.header_name.lower()] = part.header_value
        part.header_name, part.header_value = b"", b""

    def on_headers_finished() -> None:
        nonlocal writer, behind, filename, part_limit
        _, options = parse_options_header(part.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        sent_name = options.get(b"filename")
        if name == FILE_FIELD and sent_name is not None and writer is None:
            filename = client_filename(sent_name.decode("utf-8", "replace"))
            # A part whose fields all came first is written in place into its upload's file; one
            # with fields after it is received like a whole file, then copied in (chunks.store_part).
            announced = chunk_fields(form, has_file=True) if form.keys() >= CHUNK_FIELD_SCHEMAS.keys() else None
            part_limit = announced.chunksize if announced is not None else None
            if announced is not None:
                writer = part_writer(files, dataset_id, announced)
            else:
                writer = files.writer(files.new_key(dataset_id, filename))
            behind = part.writer = _WriteBehind(writer)
        elif name in CHUNK_FIELD_SCHEMAS and sent_name is None:
            part.field_name = name

    def on_part_data(data: bytes, start: int, end: int) -> None:
        # Parts other than the file and the chunk fields are dropped.
        if part.writer is not None:
            if part_limit is not None and part.writer.size + end - start > part_limit:
                raise UploadStatusError("Chunk size mismatch")  # no need to store the rest
            # Gathered here, written by a thread (_WriteBehind); the slow fsync runs in a worker
            # thread at commit: the event loop is not held.
            part.writer.write(data[start:end])
        elif part.field_name is not None:
            part.field_value += data[start:end]
            if len(part.field_value) > _FIELD_BYTES:
                raise field_error(part.field_name, f"Longer than {_FIELD_BYTES} bytes.")

    def on_part_end() -> None:
        nonlocal complete
        complete = complete or part.writer is not None
        if part.field_name is not None:
            try:
                form[part.field_name] = CONTROL_CHARACTERS.sub("", part.field_value.decode("utf-8"))
            except UnicodeDecodeError:
                raise field_error(part.field_name, "Not UTF-8 text.") from None

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if behind is not None:
                await behind.flush()
            if writer is not None and part_limit is None and writer.head_complete:
                _refuse_html(writer)  # as soon as we can tell: no need to store 200 MB of it
        parser.finalize()
        if behind is not None:
            await behind.drain()
        if writer is not None and not complete:
            raise field_error(FILE_FIELD, "This field is required.")
        chunked = chunk_fields(form, has_file=writer is not None)
        if chunked is not None:
            return await _chunked(files, dataset_id, chunked, writer)
        if isinstance(writer, PartWriter):  # announced as a part, ended as a whole upload
            raise field_error("totalparts", "The chunk fields changed between the part's headers and its end.")
        if writer is None:
            raise field_error(FILE_FIELD, "This field is required.")
        _refuse_html(writer)
        stored = await run_in_threadpool(writer.commit)
    except FormParserError as exc:
        if behind is not None:
            behind.settle()
            behind.writer.abort()
        raise field_error(FILE_FIELD, f"Invalid multipart body: {exc}") from exc
    except BaseException:
        if behind is not None:
            behind.settle()
            behind.writer.abort()
        raise
    return ReceivedFile(stored, filename)


async def _chunked(
    files: FileStore, dataset_id: str, fields: ChunkFields, writer: AtomicWriter | PartWriter | None
) -> ReceivedFile | None:
    if writer is not None:
        await run_in_threadpool(store_part, files, dataset_id, fields, writer)
        return None
    # Gigabytes are read back and fsynced: in a worker thread, the event loop serves other requests meanwhile.
    stored = await run_in_threadpool(assemble, files, dataset_id, fields, _refuse_html_head)
    await run_in_threadpool(sweep_abandoned_parts, files)
    return ReceivedFile(stored, client_filename(fields.filename))


def client_filename(sent: str) -> str:
    """The name a client gave its file, without folders nor control characters."""
    return CONTROL_CHARACTERS.sub("", sent).replace("\\", "/").rsplit("/", 1)[-1] or "file"


def _refuse_html(writer: AtomicWriter) -> None:
    _refuse_html_head(writer.head)


def _refuse_html_head(head: bytes) -> None:
    if looks_like_html(head):
        raise UnsupportedMediaType(HTML_REFUSED)
