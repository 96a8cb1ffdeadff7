"""Streaming `multipart/form-data` uploads straight into the file store.

Starlette's `request.form()` spools each file to a temporary file before the handler sees it; we
parse the stream ourselves instead, so a 200 MB upload goes to its final folder once, hashed as it
arrives, and never sits in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from dinum_pipelines.catalog.api_schemas import Json, obj
from dinum_pipelines.catalog.errors import UnsupportedMediaType, field_error
from dinum_pipelines.catalog.files import AtomicWriter, FileStore, StoredFile, file_format, guess_mime
from dinum_pipelines.catalog.validation import CONTROL_CHARACTERS
# One rule for "this is an HTML page, not data", shared with the downloader.
from dinum_pipelines.lib.http import looks_like_html

FILE_FIELD = "file"
# The body receive_file reads, for the OpenAPI document (other parts are accepted and dropped).
UPLOAD_BODY: Json = obj({FILE_FIELD: {"type": "string", "format": "binary"}}, closed=False)
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


@dataclass
class _PartState:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    header_name: bytes = b""
    header_value: bytes = b""
    writer: AtomicWriter | None = None  # set while the current part is the file being stored


async def receive_file(request: Request, files: FileStore, dataset_id: str) -> ReceivedFile:
    """Store the `file` part of the request body; 400 without one, 415 for an HTML page."""
    content_type, params = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise field_error(FILE_FIELD, "Expected a multipart/form-data body with a 'file' field.")

    part = _PartState()
    writer: AtomicWriter | None = None
    filename = ""
    complete = False

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
        nonlocal writer, filename
        _, options = parse_options_header(part.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        sent_name = options.get(b"filename")
        if name == FILE_FIELD and sent_name is not None and writer is None:
            sent = CONTROL_CHARACTERS.sub("", sent_name.decode("utf-8", "replace"))
            filename = sent.replace("\\", "/").rsplit("/", 1)[-1] or "file"
            writer = part.writer = files.writer(files.new_key(dataset_id, filename))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        # Other parts (udata's chunked-upload fields) are small and not needed: dropped.
        if part.writer is not None:
            # A plain write lands in the page cache in microseconds; the slow fsync runs in a
            # worker thread at commit, so the event loop is not held.
            part.writer.write(data[start:end])

    def on_part_end() -> None:
        nonlocal complete
        complete = complete or part.writer is not None

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
            if writer is not None and writer.head_complete:
                _refuse_html(writer)  # as soon as we can tell: no need to store 200 MB of it
        parser.finalize()
        if writer is None or not complete:
            raise field_error(FILE_FIELD, "This field is required.")
        _refuse_html(writer)
        stored = await run_in_threadpool(writer.commit)
    except FormParserError as exc:
        if writer is not None:
            writer.abort()
        raise field_error(FILE_FIELD, f"Invalid multipart body: {exc}") from exc
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return ReceivedFile(stored, filename)


def _refuse_html(writer: AtomicWriter) -> None:
    if looks_like_html(writer.head):
        raise UnsupportedMediaType(HTML_REFUSED)
