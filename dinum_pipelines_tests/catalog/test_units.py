"""The pure pieces under the API: ids and slugs, atomic file writes, masks, extras merging."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from dinum_pipelines.catalog.errors import CatalogError, ValidationError
from dinum_pipelines.catalog.files import FileStore, file_format, safe_filename
from dinum_pipelines.lib.ingest.http import looks_like_html
from dinum_pipelines.catalog.ids import fold, hash_api_token, new_api_token, new_object_id, slugify
from dinum_pipelines.catalog.masks import apply_mask, parse_mask
from dinum_pipelines.catalog.validation import merge_extras, temporal_coverage


def test_ids_and_slugs() -> None:
    assert len(new_object_id()) == 24 and int(new_object_id(), 16) >= 0
    assert slugify("  Élections — 1er tour (2024) ") == "elections-1er-tour-2024"
    assert slugify("Œuvres d'État") == "oeuvres-d-etat"
    assert fold("ÉCOLE Maternelle") == "ecole maternelle"
    token = new_api_token()
    assert token.startswith("udata_") and hash_api_token(token) != token


def test_file_helpers() -> None:
    assert [file_format(name) for name in ("a.CSV", "a.csv.gz", "a.tar.gz", "README", "x.parquet")] == [
        "csv", "csv.gz", "tar.gz", "", "parquet",
    ]
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\Users\\Données 2024.csv") == "Donnees-2024.csv"
    assert safe_filename("...") == "file"
    assert looks_like_html(b"  <!doctype HTML>") and not looks_like_html(b"a,b\n<html>,1\n")


def test_atomic_writer_commit_and_abort(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    writer = store.writer("d1/x/data.csv")
    writer.write(b"a,b\n")
    assert not store.path("d1/x/data.csv").exists()  # invisible until committed
    writer.write(b"1,2\n")
    stored = writer.commit()
    assert store.path(stored.key).read_bytes() == b"a,b\n1,2\n"
    assert stored.sha1 == hashlib.sha1(b"a,b\n1,2\n").hexdigest() and stored.size == 8

    aborted = store.writer("d1/y/data.csv")
    aborted.write(b"half")
    aborted.abort()
    assert sorted(path.name for path in tmp_path.rglob("*") if path.is_file()) == ["data.csv"]

    store.delete(stored.key)
    assert list(tmp_path.iterdir()) == []  # empty folders go too


def test_file_keys_cannot_escape_the_root(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    for key in ("../outside", "/etc/passwd", "a/../../b", ""):
        with pytest.raises(ValueError):
            store.path(key)


def test_sweep_removes_only_old_partials(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    old, fresh = store.writer("d/a/old.csv"), store.writer("d/a/fresh.csv")
    old_partial = next(tmp_path.rglob(".old.csv.*.part"))
    stale = time.time() - 2 * 24 * 3600
    os.utime(old_partial, (stale, stale))
    assert store.sweep_partials() == 1
    assert [path.name.startswith(".fresh.csv.") for path in tmp_path.rglob("*.part")] == [True]
    fresh.abort()
    old.abort()


def test_masks() -> None:
    mask = parse_mask("data{id,resources{url}},total")
    document = {"data": [{"id": 1, "title": "t", "resources": [{"url": "u", "id": 2}]}], "total": 1, "page": 1}
    assert apply_mask(document, mask) == {"data": [{"id": 1, "resources": [{"url": "u"}]}], "total": 1}
    assert apply_mask({"a": 1, "b": {"c": 1, "d": 2}}, parse_mask("*,b{c}")) == {"a": 1, "b": {"c": 1}}
    with pytest.raises(CatalogError):
        parse_mask("data{id")


def test_extras_merge_and_temporal_coverage() -> None:
    assert merge_extras({"a": 1, "b": 2}, {"b": None, "c": 3, "zz": None}) == {"a": 1, "c": 3}
    with pytest.raises(ValidationError):
        merge_extras({}, ["not", "a", "dict"])
    assert temporal_coverage({"start": "2024-01-01T00:00:00.000000Z", "end": None}) == {"start": "2024-01-01", "end": None}
    assert temporal_coverage("2020-01-01 - 2020-06-30") == {"start": "2020-01-01", "end": "2020-06-30"}
