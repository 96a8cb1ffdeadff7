"""Datasets and their ordered resources, as stored by the catalog.

Records are plain dicts: the indexed columns merged with the JSON document holding the other udata
fields, plus the dataset's `resources`, `organization` and `owner` rows. Every read-modify-write
happens inside one write transaction, so concurrent publishers cannot lose each other's changes.
Two clocks, as in udata: `last_modified` moves when the dataset's metadata changes, `last_update`
when its resources (the data) change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from dinum_pipelines.catalog.db import (
    Database,
    before_commit,
    dataset_documents,
    dataset_tags,
    datasets,
    organizations,
    resources,
    unique_slug,
    users,
    utcnow,
)
from dinum_pipelines.catalog.documents import holds, stored_document
from dinum_pipelines.catalog.errors import NotFound, ValidationError
from dinum_pipelines.catalog.ids import new_object_id, new_resource_id, slugify
from dinum_pipelines.catalog.listing import DatasetQuery, read_page
from dinum_pipelines.catalog.search import index_dataset, is_listed, normal_format, set_filters
from dinum_pipelines.catalog.versions import (
    delete_versions,
    record_extras,
    record_replacement,
    record_upload,
    without_previous_summary,
)

DATASET_NOT_FOUND = "Dataset not found"
RESOURCE_NOT_FOUND = "Resource not found"
# Fields kept in real columns; everything else a dataset carries goes to its JSON `doc`.
_DATASET_COLUMNS = ("title", "description", "private", "license")
_SLUG_ATTEMPTS = 5

Record = dict[str, Any]
# A publication's hook (notifications.py): called inside the transaction that makes the change,
# with the ids of its dataset and resource (None for a dataset's own change), so that the change
# and its notification are committed together or not at all.
Notify = Callable[[Connection, str, str | None], None]


class Datasets:
    def __init__(self, db: Database) -> None:
        self._db = db

    # Datasets

    def create(
        self, fields: Mapping[str, Any], *, owner_id: str | None, organization_id: str | None, notify: Notify | None = None
    ) -> Record:
        """Store a new dataset from cleaned `fields`; its slug comes from the title, made unique."""
        now = utcnow()
        columns, doc = _split(fields)
        dataset_id = new_object_id()
        for attempt in range(_SLUG_ATTEMPTS):
            try:
                with self._db.write() as conn:
                    slug = unique_slug(conn, datasets.c.slug, slugify(fields["title"]) or "dataset")
                    conn.execute(
                        insert(datasets).values(
                            id=dataset_id, slug=slug, organization_id=organization_id, owner_id=owner_id,
                            created_at=now, last_modified=now, last_update=now, **dataset_doc(doc), **columns,
                        )
                    )
                    index_dataset(conn, dataset_id, columns["title"], columns["description"], listed=is_listed(columns.get("private", False), None))
                    _write_tags(conn, dataset_id, fields.get("tags") or [])
                    dataset_changed(conn, dataset_id)
                    if notify:
                        notify(conn, dataset_id, None)
                break
            except IntegrityError:
                # Another writer took the slug between our check and our insert: on PostgreSQL,
                # one whose title's slug is this one plus a suffix ("a-1" for "a"; unique_slug
                # serializes equal bases only). Pick the next one.
                if attempt == _SLUG_ATTEMPTS - 1:
                    raise
        return self.require(dataset_id)

    def get(self, id_or_slug: str) -> Record | None:
        """The dataset, deleted or private ones included (callers decide who may see them); an id
        wins over a slug, as in udata. Two queries: the dataset with its organization and owner,
        then its resources (outside a transaction: resources written in between show the newer
        list, which a reader that came a moment later would have seen anyway)."""
        with self._db.read(snapshot=False) as conn:
            row = conn.execute(_DATASET_BY_ID, {"key": id_or_slug}).mappings().first()
            if row is None:
                row = conn.execute(_DATASET_BY_SLUG, {"key": id_or_slug}).mappings().first()
            if row is None:
                return None
            record = _dataset_record(row)
            record["resources"] = _resources_of(conn, record["id"])
            return record

    def require(self, id_or_slug: str) -> Record:
        record = self.get(id_or_slug)
        if record is None:
            raise NotFound(DATASET_NOT_FOUND)
        return record

    def update(
        self, dataset_id: str, changes: Mapping[str, Any], *, restore: bool = False, notify: Notify | None = None
    ) -> tuple[Record, bool]:
        """Apply cleaned `changes` (and undo a soft delete if `restore`); `last_modified` moves
        only if a value actually changed."""
        with self._db.write() as conn:
            row = _dataset_row(conn, dataset_id)
            current = _dataset_record(row)
            actual = {name: value for name, value in changes.items() if current.get(name) != value}
            restored = restore and row["deleted_at"] is not None
            if restored:
                conn.execute(update(datasets).where(datasets.c.id == dataset_id).values(deleted_at=None, last_modified=utcnow()))
            if actual:
                columns, doc_changes = _split(actual)
                conn.execute(
                    update(datasets)
                    .where(datasets.c.id == dataset_id)
                    .values(**columns, **dataset_doc({**row["doc"], **doc_changes}), last_modified=utcnow())
                )
                if "tags" in actual:
                    _write_tags(conn, dataset_id, actual["tags"])
            listed = is_listed(actual.get("private", row["private"]), None if restored else row["deleted_at"])
            if {"title", "description"} & actual.keys():
                index_dataset(
                    conn, dataset_id, actual.get("title", row["title"]), actual.get("description", row["description"]), listed=listed,
                )
            if actual or restored:
                dataset_changed(conn, dataset_id)
            if notify and (actual or restored):
                notify(conn, dataset_id, None)
        return self.require(dataset_id), bool(actual) or restored

    def transform_doc_field(self, dataset_id: str, field: str, transform: Callable[[Any], Any]) -> Any:
        """Replace `doc[field]` by `transform(doc[field])` atomically; no clock moves (extras, metrics)."""
        with self._db.write() as conn:
            row = _dataset_row(conn, dataset_id)
            value = transform(row["doc"].get(field))
            conn.execute(update(datasets).where(datasets.c.id == dataset_id).values(**dataset_doc({**row["doc"], field: value})))
            dataset_changed(conn, dataset_id)
        return value

    def soft_delete(self, dataset_id: str, *, notify: Notify | None = None) -> None:
        now = utcnow()
        with self._db.write() as conn:
            conn.execute(update(datasets).where(datasets.c.id == dataset_id).values(deleted_at=now, last_modified=now))
            dataset_changed(conn, dataset_id)
            if notify:
                notify(conn, dataset_id, None)

    def search(self, query: DatasetQuery) -> tuple[list[Record], int]:
        """One page of the live (or deleted) datasets matching `query`, and the total number of matches."""
        with self._db.read() as conn:
            rows, total = read_page(conn, query, documents=False)
            return _records(conn, [row.id for row in rows]), total

    def search_documents(self, query: DatasetQuery) -> tuple[list[str | Record], int]:
        """`search`, each dataset as its stored document (documents.py) where it has one that holds
        now, as its record otherwise."""
        # Not one snapshot (PostgreSQL: no BEGIN and ROLLBACK): a document written between the
        # two reads is the dataset's newer state, which a reader a moment later would see anyway.
        with self._db.read(snapshot=False) as conn:
            rows, total = read_page(conn, query, documents=True)
            records = {record["id"]: record for record in _records(conn, [row.id for row in rows if row.document is None])}
            return [records[row.id] if row.document is None else row.document for row in rows], total

    def get_document(self, id_or_slug: str) -> tuple[Record, str] | None:
        """The dataset's visibility columns (id, private, deleted, organization_id, owner_id) and
        its stored document, if it has one that holds now (an id wins over a slug, as in `get`)."""
        row = self._db.plain_row(_DOCUMENT_BY_ID, {"key": id_or_slug}) or self._db.plain_row(_DOCUMENT_BY_SLUG, {"key": id_or_slug})
        if row is None or row["body"] is None or not holds(row["valid_until"]):
            return None
        visibility = {key: row[key] for key in ("id", "private", "organization_id", "owner_id")}
        return {**visibility, "deleted": row["deleted_at"]}, row["body"]

    def store_missing_documents(self, batch: int = 200, stopping: threading.Event | None = None) -> int:
        """Store the document of every dataset that has none (a catalog upgraded from revision
        0015, the datasets of a renamed organization, bulk loads), a batch per transaction; how
        many. Safe to run beside other writers: each batch reads what it renders in its own
        transaction."""
        stored, after = 0, ""
        while stopping is None or not stopping.is_set():
            with self._db.write(changes_data=False) as conn:
                missing = list(conn.scalars(
                    select(datasets.c.id).where(
                        datasets.c.id > after,
                        ~select(dataset_documents.c.dataset_id).where(dataset_documents.c.dataset_id == datasets.c.id).exists(),
                    ).order_by(datasets.c.id).limit(batch)
                ))
                for dataset_id in missing:
                    _store_document(conn, dataset_id)
            if not missing:
                return stored
            stored, after = stored + len(missing), missing[-1]
        return stored

    # Resources

    def add_resource(
        self, dataset_id: str, fields: Mapping[str, Any], *, file_key: str | None = None, notify: Notify | None = None
    ) -> Record:
        """Append a resource (cleaned `fields`) to the dataset; the dataset's `last_update` moves."""
        now = utcnow()
        resource_id = new_resource_id()
        with self._db.write() as conn:
            _dataset_row(conn, dataset_id)
            last = conn.scalar(select(func.max(resources.c.position)).where(resources.c.dataset_id == dataset_id))
            conn.execute(
                insert(resources).values(
                    id=resource_id, dataset_id=dataset_id, position=-1 if last is None else last + 1,
                    file_key=file_key, created_at=now, last_modified=now, **_resource_doc(dict(fields)),
                )
            )
            if file_key:
                record_upload(conn, resource_id, dataset_id, file_key, fields)
            _touch(conn, dataset_id, now)
            if notify:
                notify(conn, dataset_id, resource_id)
        return self._require_resource(resource_id)

    def resource(self, resource_id: str) -> Record | None:
        with self._db.read() as conn:
            row = conn.execute(select(resources).where(resources.c.id == resource_id)).mappings().first()
        return None if row is None else _resource_record(row)

    def resource_of(self, dataset_id: str, resource_id: str) -> Record:
        """The resource if it belongs to the dataset; `NotFound` otherwise."""
        found = self.resource(resource_id)
        if found is None or found["dataset_id"] != dataset_id:
            raise NotFound(RESOURCE_NOT_FOUND)
        return found

    def resource_by_file_key(self, file_key: str) -> Record | None:
        with self._db.read() as conn:
            row = conn.execute(select(resources).where(resources.c.file_key == file_key)).mappings().first()
        return None if row is None else _resource_record(row)

    def update_resource(
        self, resource_id: str, changes: Mapping[str, Any], *, notify: Notify | None = None
    ) -> tuple[Record, bool]:
        """Apply cleaned metadata `changes`; clocks move only if a value actually changed. A new URL
        (a remote resource's) is a publication: `notify` hears of it, not of other changes."""
        with self._db.write() as conn:
            row = _resource_row(conn, resource_id)
            actual = {name: value for name, value in changes.items() if row["doc"].get(name) != value}
            if actual:
                now = utcnow()
                conn.execute(
                    update(resources).where(resources.c.id == resource_id)
                    .values(**_resource_doc({**row["doc"], **actual}), last_modified=now)
                )
                _touch(conn, row["dataset_id"], now)
                if notify and "url" in actual:
                    notify(conn, row["dataset_id"], resource_id)
        return self._require_resource(resource_id), bool(actual)

    def replace_file(
        self, resource_id: str, file_key: str, file_fields: Mapping[str, Any], *, notify: Notify | None = None
    ) -> Record:
        """Point the resource at a new stored file, a new version; the replaced file stays (versions.py)."""
        now = utcnow()
        with self._db.write() as conn:
            row = _resource_row(conn, resource_id)
            doc = without_previous_summary({**row["doc"], **file_fields})
            conn.execute(
                update(resources).where(resources.c.id == resource_id)
                .values(file_key=file_key, **_resource_doc(doc), last_modified=now)
            )
            record_replacement(conn, row, file_key, doc)
            _touch(conn, row["dataset_id"], now)
            if notify:
                notify(conn, row["dataset_id"], resource_id)
        return self._require_resource(resource_id)

    def transform_resource_doc_field(self, resource_id: str, field: str, transform: Callable[[Any], Any]) -> Any:
        """Replace `doc[field]` by `transform(doc[field])` atomically; no clock moves (extras, metrics)."""
        with self._db.write() as conn:
            row = _resource_row(conn, resource_id)
            value = transform(row["doc"].get(field))
            conn.execute(update(resources).where(resources.c.id == resource_id).values(**_resource_doc({**row["doc"], field: value})))
            if field == "extras":
                record_extras(conn, row["file_key"], value)
            dataset_changed(conn, row["dataset_id"])
        return value

    def delete_resource(self, resource_id: str) -> set[str]:
        """Remove the resource and its versions; returns the keys of their stored files, for the caller to delete."""
        with self._db.write() as conn:
            row = _resource_row(conn, resource_id)
            keys = set(delete_versions(conn, resource_id))
            conn.execute(delete(resources).where(resources.c.id == resource_id))
            _touch(conn, row["dataset_id"], utcnow())
        return keys | ({row["file_key"]} if row["file_key"] else set())

    def reorder_resources(self, dataset_id: str, resource_ids: list[str]) -> list[Record]:
        """udata's reorder: the list must name every resource of the dataset exactly once."""
        with self._db.write() as conn:
            current = set(conn.scalars(select(resources.c.id).where(resources.c.dataset_id == dataset_id)))
            if len(resource_ids) != len(current) or set(resource_ids) != current:
                raise ValidationError(
                    {"resources": ["The list must contain every resource id of the dataset exactly once."]},
                    "Resources reordering failed",
                )
            for position, resource_id in enumerate(resource_ids):
                conn.execute(update(resources).where(resources.c.id == resource_id).values(position=position))
            dataset_changed(conn, dataset_id)
            return _resources_of(conn, dataset_id)

    def _require_resource(self, resource_id: str) -> Record:
        found = self.resource(resource_id)
        if found is None:
            raise NotFound(RESOURCE_NOT_FOUND)
        return found


def _split(fields: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    columns = {name: value for name, value in fields.items() if name in _DATASET_COLUMNS}
    doc = {name: value for name, value in fields.items() if name not in _DATASET_COLUMNS}
    return columns, doc


def dataset_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """Column values storing a dataset's document: the document and its indexed `views` copy."""
    return {"doc": doc, "views": int((doc.get("metrics") or {}).get("views") or 0)}


def _resource_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """Column values storing a resource's document: the document and its indexed `format` copy."""
    return {"doc": doc, "format": normal_format(doc.get("format"))}


# A dataset row comes with its organization's and owner's columns (left joins), labelled with
# these prefixes: reading a dataset is one query, not three.
_REFERENCES = {"organization": organizations, "owner": users}
def _select_with_refs() -> Select[Any]:
    columns = [column.label(f"{name}__{column.name}") for name, table in _REFERENCES.items() for column in table.c]
    return select(datasets, *columns).select_from(
        datasets.outerjoin(organizations, datasets.c.organization_id == organizations.c.id)
        .outerjoin(users, datasets.c.owner_id == users.c.id)
    )


# Built once: the GET of a dataset is the catalog's hottest path, and building a statement costs
# more CPU than SQLite takes to run it.
_DATASET_BY_ID = _select_with_refs().where(datasets.c.id == bindparam("key"))
_DATASET_BY_SLUG = _select_with_refs().where(datasets.c.slug == bindparam("key"))
_DOCUMENT_BY_ID, _DOCUMENT_BY_SLUG = (
    select(
        datasets.c.id, datasets.c.private, datasets.c.deleted_at, datasets.c.organization_id, datasets.c.owner_id,
        dataset_documents.c.body, dataset_documents.c.valid_until,
    )
    .select_from(datasets.outerjoin(dataset_documents, dataset_documents.c.dataset_id == datasets.c.id))
    .where(key == bindparam("key"))
    for key in (datasets.c.id, datasets.c.slug)
)
_RESOURCES_OF = select(resources).where(resources.c.dataset_id == bindparam("dataset_id")).order_by(resources.c.position)


def _dataset_record(row: RowMapping) -> Record:
    """The record of a row of `_select_with_refs()` (or of `datasets` alone: no references then)."""
    record = dict(row["doc"])
    for name in ("id", "slug", *_DATASET_COLUMNS, "organization_id", "owner_id", "created_at", "last_modified", "last_update"):
        record[name] = row[name]
    record["deleted"] = row["deleted_at"]
    for name, table in _REFERENCES.items():
        if f"{name}__id" in row:
            referenced = {column.name: row[f"{name}__{column.name}"] for column in table.c}
            record[name] = referenced if referenced["id"] is not None else None
    return record


def _resource_record(row: RowMapping) -> Record:
    record = dict(row["doc"])
    for name in ("id", "dataset_id", "position", "file_key", "created_at", "last_modified"):
        record[name] = row[name]
    return record


def records_in(conn: Connection, dataset_id: str, resource_id: str | None) -> tuple[Record, Record | None]:
    """The dataset (without its organization's and owner's rows) and one of its resources, as
    `conn`'s transaction sees them (a publication's hook)."""
    resource = _resource_record(_resource_row(conn, resource_id)) if resource_id else None
    return _dataset_record(_dataset_row(conn, dataset_id)), resource


def _dataset_row(conn: Connection, dataset_id: str) -> RowMapping:
    row = conn.execute(select(datasets).where(datasets.c.id == dataset_id)).mappings().first()
    if row is None:
        raise NotFound(DATASET_NOT_FOUND)
    return row


def _resource_row(conn: Connection, resource_id: str) -> RowMapping:
    row = conn.execute(select(resources).where(resources.c.id == resource_id)).mappings().first()
    if row is None:
        raise NotFound(RESOURCE_NOT_FOUND)
    return row


def _touch(conn: Connection, dataset_id: str, when: datetime) -> None:
    """The dataset's data changed: move its `last_update`."""
    conn.execute(update(datasets).where(datasets.c.id == dataset_id).values(last_update=when))
    dataset_changed(conn, dataset_id)


def _write_tags(conn: Connection, dataset_id: str, tags: list[str]) -> None:
    conn.execute(delete(dataset_tags).where(dataset_tags.c.dataset_id == dataset_id))
    if tags:
        conn.execute(insert(dataset_tags), [{"dataset_id": dataset_id, "tag": tag} for tag in tags])


def _resources_of(conn: Connection, dataset_id: str) -> list[Record]:
    """One dataset's resources, in their order (the prebuilt statement of the GET path)."""
    return [_resource_record(row) for row in conn.execute(_RESOURCES_OF, {"dataset_id": dataset_id}).mappings()]


def _resources_by_dataset(conn: Connection, dataset_ids: list[str]) -> dict[str, list[Record]]:
    grouped: dict[str, list[Record]] = {dataset_id: [] for dataset_id in dataset_ids}
    query = select(resources).where(resources.c.dataset_id.in_(dataset_ids)).order_by(resources.c.dataset_id, resources.c.position)
    for row in conn.execute(query).mappings():
        grouped[row["dataset_id"]].append(_resource_record(row))
    return grouped


def _records(conn: Connection, ids: list[str]) -> list[Record]:
    """The records of datasets `ids` (with their organization, owner and resources), in that order."""
    if not ids:
        return []
    by_id = {row["id"]: _dataset_record(row) for row in conn.execute(_select_with_refs().where(datasets.c.id.in_(ids))).mappings()}
    by_dataset = _resources_by_dataset(conn, ids)
    records = [by_id[dataset_id] for dataset_id in ids]
    for record in records:
        record["resources"] = by_dataset[record["id"]]
    return records


def dataset_changed(conn: Connection, dataset_id: str) -> None:
    """What is derived from the dataset must follow: its words' copy of its filters (search.py) and
    its document (documents.py), written once, when the transaction ends."""
    before_commit(conn, ("dataset changed", dataset_id), lambda: _derive(conn, dataset_id))


_DROPPED_PER_STATEMENT = 500


def drop_documents(conn: Connection, dataset_ids: Iterable[str]) -> None:
    """Remove the stored documents of datasets that a bulk write changes (a metrics push): they are
    rendered when read until `Datasets.store_missing_documents` stores them again."""
    ids = sorted(dataset_ids)
    for start in range(0, len(ids), _DROPPED_PER_STATEMENT):
        conn.execute(delete(dataset_documents).where(dataset_documents.c.dataset_id.in_(ids[start : start + _DROPPED_PER_STATEMENT])))


def _derive(conn: Connection, dataset_id: str) -> None:
    record = _store_document(conn, dataset_id)
    if record is not None:
        # The formats as the resources' `format` column holds them (_resource_doc), from the
        # resources the document was rendered from.
        formats = {normal_format(resource.get("format")) for resource in record["resources"]} - {None}
        set_filters(
            conn, dataset_id, listed=is_listed(record["private"], record["deleted"]), organization_id=record["organization_id"],
            license=record["license"], formats=formats,
        )


def _store_document(conn: Connection, dataset_id: str) -> Record | None:
    """Render the dataset as `conn`'s transaction sees it and store its document (documents.py);
    the dataset's record (with its organization, owner and resources), None if there is none."""
    # The dataset's row locked first (PostgreSQL; SQLite has one writer): two transactions storing
    # its document take turns, and the second renders what the first committed. NO KEY UPDATE, the
    # lock an UPDATE of the row takes: a stronger one would wait for the key-share locks of other
    # transactions inserting its resources, which wait for this one's UPDATE (a deadlock).
    conn.execute(select(datasets.c.id).where(datasets.c.id == dataset_id).with_for_update(key_share=True))
    row = conn.execute(_DATASET_BY_ID, {"key": dataset_id}).mappings().first()
    conn.execute(delete(dataset_documents).where(dataset_documents.c.dataset_id == dataset_id))
    if row is None:
        return None
    record = _dataset_record(row)
    record["resources"] = _resources_of(conn, dataset_id)
    stored = stored_document(record)
    if stored is not None:
        body, valid_until = stored
        conn.execute(insert(dataset_documents).values(dataset_id=dataset_id, body=body, valid_until=valid_until))
    return record
