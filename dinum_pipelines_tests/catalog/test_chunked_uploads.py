"""udata's chunked upload protocol on the catalog: parts in any order, retried, checked, assembled
atomically into a resource with the file's checksum, over real HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from dinum_pipelines.catalog import RunningCatalog, chunks
from dinum_pipelines.catalog.chunks import CHUNKS_FOLDER, DATA_FILE, sweep_abandoned_parts
from dinum_pipelines.catalog.files import FileStore
from dinum_pipelines.catalog.server import serve_in_thread
from dinum_pipelines_tests.catalog.conftest import Api

CONTENT = b"code_commune;population\n" + b"".join(f"{n:05d};{n * 7}\n".encode() for n in range(3000))
FILENAME = "population.csv"


def split(content: bytes, parts: int) -> list[tuple[int, bytes]]:
    """(offset, bytes) of each part, the last one shorter."""
    size = -(-len(content) // parts)
    return [(offset, content[offset:offset + size]) for offset in range(0, len(content), size)]


class ChunkedUpload:
    """One upload's requests, as a udata client (or the publisher) sends them."""

    def __init__(self, api: Api, dataset_id: str, total: int, resource_id: str | None = None) -> None:
        self.api = api
        self.path = f"/datasets/{dataset_id}/" + (f"resources/{resource_id}/upload/" if resource_id else "upload/")
        self.fields = {"uuid": str(uuid.uuid4()), "filename": FILENAME, "totalparts": str(total)}

    def part(self, index: int, offset: int, data: bytes, **overrides: Any) -> requests.Response:
        fields = {**self.fields, "partindex": index, "partbyteoffset": offset, "chunksize": len(data), **overrides}
        return self.api.post(self.path, data=fields, files={"file": (FILENAME, data)})

    def finish(self) -> requests.Response:
        # The final request carries no file; `files` with a field only makes requests send multipart.
        return self.api.post(self.path, files={name: (None, value) for name, value in self.fields.items()})


def part_files(catalog: RunningCatalog) -> list[Path]:
    """The markers of the parts received (their bytes are in their upload's data file)."""
    return sorted(path for path in (catalog.settings.files_dir / CHUNKS_FOLDER).rglob("*") if path.is_file() and path.name != DATA_FILE)


def data_file(catalog: RunningCatalog) -> Path:
    (found,) = (catalog.settings.files_dir / CHUNKS_FOLDER).rglob(DATA_FILE)
    return found


def resources(api: Api, dataset_id: str) -> list[dict[str, Any]]:
    return api.get(f"/datasets/{dataset_id}/").json()["resources"]


def assert_part_received(response: requests.Response) -> None:
    assert (response.status_code, response.json()) == (200, {"success": True}), response.text


def test_a_parts_fields_may_come_before_and_after_its_file(api: Api, dataset: dict[str, Any]) -> None:
    """A client sending some of a part's fields after its file (schemathesis did): the part is
    received whole, then placed; its fields were read as a chunked upload missing one (a 400)."""
    parts = split(CONTENT, 2)
    upload = ChunkedUpload(api, dataset["id"], len(parts))
    for index, (offset, data) in enumerate(parts):
        before = {**upload.fields, "partindex": str(index), "chunksize": str(len(data))}
        body = [*((name, (None, value)) for name, value in before.items()), ("file", (FILENAME, data)), ("partbyteoffset", (None, str(offset)))]
        assert_part_received(api.post(upload.path, files=body))
    response = upload.finish()
    assert response.status_code == 201, response.text
    assert response.json()["checksum"]["value"] == hashlib.sha1(CONTENT).hexdigest()


def test_parts_in_order_make_one_resource_with_the_files_checksum(
    api: Api, anonymous: Api, catalog: RunningCatalog, dataset: dict[str, Any]
) -> None:
    parts = split(CONTENT, 3)
    upload = ChunkedUpload(api, dataset["id"], len(parts))
    for index, (offset, data) in enumerate(parts):
        assert_part_received(upload.part(index, offset, data))
        assert resources(api, dataset["id"]) == []  # a half-received upload is never visible
    assert len(part_files(catalog)) == 3

    response = upload.finish()
    assert response.status_code == 201, response.text
    resource = response.json()
    assert resource["success"] is True and resource["title"] == FILENAME
    assert resource["checksum"] == {"type": "sha1", "value": hashlib.sha1(CONTENT).hexdigest()}
    assert (resource["filesize"], resource["format"], resource["filetype"]) == (len(CONTENT), "csv", "file")
    assert anonymous.get(resource["latest"]).content == CONTENT
    assert [item["id"] for item in resources(api, dataset["id"])] == [resource["id"]]
    assert part_files(catalog) == []


def test_parts_out_of_order_and_a_retried_part(api: Api, anonymous: Api, dataset: dict[str, Any]) -> None:
    parts = split(CONTENT, 4)
    upload = ChunkedUpload(api, dataset["id"], len(parts))
    offset, data = parts[1]
    # A first copy of part 1 arrived damaged (the client saw no answer and sends it again).
    assert_part_received(upload.part(1, offset, bytes(len(data))))
    for index in (3, 1, 0, 2):
        assert_part_received(upload.part(index, *parts[index]))

    resource = upload.finish().json()
    assert resource["checksum"]["value"] == hashlib.sha1(CONTENT).hexdigest()
    assert anonymous.get(resource["latest"]).content == CONTENT


def test_a_part_of_the_wrong_size_is_refused_as_udata(api: Api, catalog: RunningCatalog, dataset: dict[str, Any]) -> None:
    upload = ChunkedUpload(api, dataset["id"], 2)
    for announced in (10, 14):  # more bytes than announced, then fewer
        response = upload.part(0, 0, b"x" * 12, chunksize=announced)
        assert (response.status_code, response.json()) == (400, {"success": False, "error": "Chunk size mismatch"})
    assert part_files(catalog) == []
    assert sorted(path for path in catalog.settings.files_dir.rglob("*") if path.is_file()) == []


def test_missing_parts_are_named_then_the_upload_resumes(api: Api, catalog: RunningCatalog, dataset: dict[str, Any]) -> None:
    parts = split(CONTENT, 3)
    upload = ChunkedUpload(api, dataset["id"], len(parts))
    assert_part_received(upload.part(0, *parts[0]))
    assert_part_received(upload.part(2, *parts[2]))

    response = upload.finish()
    assert response.status_code == 400 and response.json()["success"] is False
    assert "Missing parts 1 (of 3)" in response.json()["error"]
    assert resources(api, dataset["id"]) == [] and len(part_files(catalog)) == 2  # kept for the resume

    assert_part_received(upload.part(1, *parts[1]))
    assert upload.finish().status_code == 201
    never_sent = ChunkedUpload(api, dataset["id"], 2).finish()
    assert never_sent.status_code == 400 and "No part received" in never_sent.json()["error"]


def test_a_part_a_crash_shortened_or_zeroed_is_asked_for_again(api: Api, catalog: RunningCatalog, dataset: dict[str, Any]) -> None:
    """Parts are not fsynced: after a host crash the data file may be shorter than its markers say,
    or hold zeros where a part's bytes never reached the disk (its marker did). The crash took
    the catalog's memory too: the upload ends on a catalog started again."""
    parts = split(CONTENT, 3)
    upload = ChunkedUpload(api, dataset["id"], len(parts))
    for index, (offset, data) in enumerate(parts):
        assert_part_received(upload.part(index, offset, data))
    damaged = data_file(catalog)
    content = damaged.read_bytes()
    damaged.write_bytes(content[:parts[2][0] + 10])
    with serve_in_thread(catalog.settings) as restarted:
        api.catalog = restarted

        response = upload.finish()
        assert response.status_code == 400 and "Part 2 was lost" in response.json()["error"]
        assert_part_received(upload.part(2, *parts[2]))
        offset, data = parts[1]
        with damaged.open("r+b") as handle:
            handle.seek(offset)
            handle.write(bytes(len(data)))

        response = upload.finish()
        assert response.status_code == 400 and "Part 1 was lost" in response.json()["error"]
        assert resources(api, dataset["id"]) == []
        assert_part_received(upload.part(1, *parts[1]))
        assert upload.finish().json()["checksum"]["value"] == hashlib.sha1(CONTENT).hexdigest()


def test_parts_one_catalog_received_in_order_are_not_read_back_and_others_are(
    api: Api, catalog: RunningCatalog, dataset: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalog hashes the parts it receives one after the other as they come: their assembly
    reads nothing back. Parts that went through two nodes (or came out of order) are read back."""
    read_back: list[int] = []
    checked_sha1 = chunks._checked_sha1
    monkeypatch.setattr(chunks, "_checked_sha1", lambda handle, parts: read_back.append(len(parts)) or checked_sha1(handle, parts))
    parts = split(CONTENT, 4)

    one_node = ChunkedUpload(api, dataset["id"], len(parts))
    for index, (offset, data) in enumerate(parts):
        assert_part_received(one_node.part(index, offset, data))
    assert one_node.finish().json()["checksum"]["value"] == hashlib.sha1(CONTENT).hexdigest()
    assert read_back == []

    with serve_in_thread(catalog.settings) as other_node:
        two_nodes = ChunkedUpload(api, dataset["id"], len(parts))
        for index, (offset, data) in enumerate(parts):
            api.catalog = other_node if index == 2 else catalog
            assert_part_received(two_nodes.part(index, offset, data))
        assert two_nodes.finish().json()["checksum"]["value"] == hashlib.sha1(CONTENT).hexdigest()
    assert read_back == [len(parts)]

    # A part sent again with other bytes after the parts that follow it: the hash cannot hold.
    resent = ChunkedUpload(api, dataset["id"], len(parts))
    for index, (offset, data) in enumerate(parts):
        assert_part_received(resent.part(index, offset, data))
    offset, data = parts[1]
    assert_part_received(resent.part(1, offset, data[::-1]))
    changed = CONTENT[:offset] + data[::-1] + CONTENT[offset + len(data):]
    assert resent.finish().json()["checksum"]["value"] == hashlib.sha1(changed).hexdigest()
    assert read_back == [len(parts), len(parts)]


def test_parts_that_do_not_follow_each_other_are_refused(api: Api, dataset: dict[str, Any]) -> None:
    upload = ChunkedUpload(api, dataset["id"], 2)
    assert_part_received(upload.part(0, 0, b"a;b\n"))
    assert_part_received(upload.part(1, 5, b"1;2\n"))  # a one-byte gap
    response = upload.finish()
    assert response.status_code == 400 and "starts at byte 5" in response.json()["error"]


def test_every_chunk_field_is_checked(api: Api, dataset: dict[str, Any]) -> None:
    upload = ChunkedUpload(api, dataset["id"], 3)
    cases = {
        "uuid": {"uuid": "not-a-uuid"},
        "partindex": {"partindex": 3},  # totalparts is 3
        "partbyteoffset": {"partbyteoffset": -1},
        "chunksize": {"chunksize": 0},
        "totalparts": {"totalparts": 10**9},
        "filename": {"filename": ""},
    }
    for field, override in cases.items():
        response = upload.part(0, 0, b"a;b\n", **override)
        assert response.status_code == 400, (field, response.text)
        assert field in response.json()["errors"], (field, response.text)
    response = upload.part(0, 0, b"a;b\n", partindex="first")
    assert response.json()["errors"]["partindex"] == ["Expected an integer, got 'first'."]
    assert resources(api, dataset["id"]) == []


def test_a_chunked_replacement_keeps_the_resource_id(
    api: Api, anonymous: Api, catalog: RunningCatalog, dataset: dict[str, Any]
) -> None:
    first = api.upload(dataset["id"], FILENAME, b"a;b\n1;2\n").json()
    parts = split(CONTENT, 2)
    upload = ChunkedUpload(api, dataset["id"], len(parts), resource_id=first["id"])
    for index, (offset, data) in enumerate(parts):
        assert_part_received(upload.part(index, offset, data))
    assert anonymous.get(first["latest"]).content == b"a;b\n1;2\n"  # the old file until the end

    response = upload.finish()
    assert response.status_code == 200, response.text
    replaced = response.json()
    assert replaced["id"] == first["id"]
    assert replaced["checksum"]["value"] == hashlib.sha1(CONTENT).hexdigest() != first["checksum"]["value"]
    assert anonymous.get(replaced["latest"]).content == CONTENT
    visible = [path for path in catalog.settings.files_dir.rglob("*") if path.is_file()]
    assert [path.name for path in visible] == [FILENAME] * 2  # the old file stays, version 1 (versions.py)


def test_an_html_page_sent_in_parts_is_refused(api: Api, dataset: dict[str, Any]) -> None:
    page = b"<!DOCTYPE html><html><body>" + b"erreur " * 200 + b"</body></html>"
    parts = split(page, 2)
    upload = ChunkedUpload(api, dataset["id"], len(parts))
    for index, (offset, data) in enumerate(parts):
        assert_part_received(upload.part(index, offset, data))
    assert upload.finish().status_code == 415
    assert resources(api, dataset["id"]) == []


def test_abandoned_parts_are_swept_after_a_day(tmp_path: Path) -> None:
    files = FileStore(tmp_path)
    abandoned, in_flight = (files.root / CHUNKS_FOLDER / "d" / name for name in ("old", "new"))
    for folder in (abandoned, in_flight):
        folder.mkdir(parents=True)
        (folder / "0-0").write_bytes(b"a;b\n")
    two_days_ago = time.time() - 2 * 24 * 3600
    for path in (abandoned / "0-0", abandoned):
        os.utime(path, (two_days_ago, two_days_ago))

    assert sweep_abandoned_parts(files) == 1
    assert not abandoned.exists() and (in_flight / "0-0").exists()


def test_a_part_whose_fields_follow_its_bytes_is_copied_in_place(api: Api, anonymous: Api, dataset: dict[str, Any]) -> None:
    """The protocol does not order a part's fields and its file: one whose fields come after its
    bytes is received as a file of its own, then copied into the upload's data file."""
    parts = split(CONTENT, 3)
    upload = ChunkedUpload(api, dataset["id"], len(parts))
    for index, (offset, data) in enumerate(parts):
        fields = {**upload.fields, "partindex": index, "partbyteoffset": offset, "chunksize": len(data)}
        ordered = [("file", (FILENAME, data)), *((name, (None, str(value))) for name, value in fields.items())]
        if index == 1:  # the usual order for one part: both kinds meet in one file
            ordered = ordered[1:] + ordered[:1]
        assert_part_received(api.post(upload.path, files=ordered))
    resource = upload.finish().json()
    assert resource["checksum"]["value"] == hashlib.sha1(CONTENT).hexdigest()
    assert anonymous.get(resource["latest"]).content == CONTENT
