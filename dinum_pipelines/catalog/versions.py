"""Every file a hosted resource has had: its versions, kept and downloadable (issue 14, part 3).

udata replaces a resource's file and forgets the old one; reusers asked to get back last month's
file, and to see what changed between two. So a replaced file stays stored: each upload is a row
of `resource_versions` (number, date, sha1 and size, mime and format, the stored file), written
in the transaction that points the resource at the file, and each version is served at a URL
that never changes, `/datasets/r/{rid}/versions/{n}`, while the stable link `/datasets/r/{rid}`
follows the latest. Deleting the resource deletes its versions and their files, as udata deletes
the file.

The publisher describes what changed (rows added, removed and modified by primary key, columns
added and removed: lib/publish/changes.py) in the resource's `dinum:changes` extra, and its sha256 in
`dinum:sha256`, which it sets just after the upload (a udata client sets extras that way, so
datagouv-client and the publisher need nothing else). Each extras update copies those two to the
version of the current file; a new file starts without a summary (the previous file's is dropped
from the extras), so a summary never describes another file than the one it is shown with.

Resources uploaded before versions existed have no row: they are listed as version 1 (their
current file), and that row is written when their file is first replaced. Reads never write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from dinum_pipelines.catalog.api_schemas import BOOLEAN, COUNT, DATE_TIME, STRING, URI, Json, array, nullable, obj
from dinum_pipelines.catalog.db import Database, resource_versions, utcnow
# The extras the publisher sets (one name for both sides).
from dinum_pipelines.lib.publish.publishing import CHANGES_EXTRA, SHA256_EXTRA

_COUNTS = ("rows_before", "rows_after", "rows_added", "rows_removed", "rows_modified")
_LISTS = ("key", "columns_added", "columns_removed")
_MAX_NAMES = 1000  # columns named in one summary: a table has far fewer

# What a version's `changes` holds (lib/publish/changes.py writes it): with a primary key, the rows
# added, removed and modified; without one, only the counts before and after.
CHANGES_SCHEMA: Json = obj({
    "key": {**array(STRING), "description": "The primary key the rows were matched on ([]: none)"},
    **{name: nullable(COUNT) for name in _COUNTS},
    "columns_added": array(STRING),
    "columns_removed": array(STRING),
})
VERSION_SCHEMA: Json = obj({
    "version": {"type": "integer", "minimum": 1},
    "created_at": DATE_TIME,
    "checksum": obj({"type": STRING, "value": STRING}),
    "sha256": nullable(STRING),
    "filesize": COUNT,
    "mime": nullable(STRING),
    "format": nullable(STRING),
    "url": {**URI, "description": "This version's file; the URL never changes"},
    "latest": {**BOOLEAN, "description": "The resource's current file (what its stable link serves)"},
    "changes": {**nullable(CHANGES_SCHEMA), "description": "What changed since the version before, as the publisher computed it"},
})


def clean_changes(value: Any) -> Json | None:
    """The publisher's summary as the catalog keeps it: the known keys with values of their type
    (counts, lists of column names); None for anything that is not such a summary."""
    if not isinstance(value, Mapping):
        return None
    cleaned: Json = {}
    for name in _COUNTS:
        count = value.get(name)
        valid = isinstance(count, int) and not isinstance(count, bool) and count >= 0
        cleaned[name] = count if valid else None
    for name in _LISTS:
        names = value.get(name)
        valid = isinstance(names, list) and all(isinstance(item, str) for item in names)
        cleaned[name] = list(names[:_MAX_NAMES]) if valid else []
    if cleaned["rows_after"] is None:
        return None
    return cleaned


def _counted(count: int, singular: str, plural: str) -> str:
    return f"{count} {singular if count <= 1 else plural}"


def french_summary(version: int, changes: Json | None) -> str:
    """"+12 lignes, −3 lignes, 5 modifiées ; colonnes ajoutées : x" for the dataset page."""
    if changes is None:
        return "Première version" if version == 1 else "Pas de résumé des changements"
    parts: list[str] = []
    if changes["key"] and changes["rows_added"] is not None:
        added, removed, modified = changes["rows_added"], changes["rows_removed"] or 0, changes["rows_modified"] or 0
        parts.append(f"+{_counted(added, 'ligne', 'lignes')}, −{_counted(removed, 'ligne', 'lignes')}, "
                     f"{modified} modifiée{'s' if modified > 1 else ''}")
    else:
        before, after = changes["rows_before"], changes["rows_after"]
        parts.append(f"{_counted(after, 'ligne', 'lignes')}" + ("" if before is None else f" (avant : {before})"))
    if changes["columns_added"]:
        parts.append("colonnes ajoutées : " + ", ".join(changes["columns_added"]))
    if changes["columns_removed"]:
        parts.append("colonnes retirées : " + ", ".join(changes["columns_removed"]))
    return " ; ".join(parts)


# Writes, inside the caller's transaction (datasets.py)


def _file_values(resource_id: str, dataset_id: str, file_key: str, doc: Mapping[str, Any]) -> Json:
    checksum = doc.get("checksum") or {}
    extras = doc.get("extras") or {}
    sha256 = extras.get(SHA256_EXTRA)
    return {
        "resource_id": resource_id, "dataset_id": dataset_id, "file_key": file_key,
        "sha1": str(checksum.get("value") or ""), "sha256": sha256 if isinstance(sha256, str) else None,
        "filesize": int(doc.get("filesize") or 0), "mime": doc.get("mime"), "format": doc.get("format"),
    }


def record_upload(conn: Connection, resource_id: str, dataset_id: str, file_key: str, doc: Mapping[str, Any]) -> None:
    """A new hosted resource: its file is version 1."""
    conn.execute(insert(resource_versions).values(version=1, created_at=utcnow(), **_file_values(resource_id, dataset_id, file_key, doc)))


def record_replacement(conn: Connection, previous: RowMapping, file_key: str, doc: Mapping[str, Any]) -> None:
    """The resource of row `previous` (before its update) now serves `file_key`, described by
    `doc`: a new version. A resource from before versions gets its version 1 (the replaced file)
    first, dated when that file was put in."""
    resource_id = previous["id"]
    last = conn.scalar(select(func.max(resource_versions.c.version)).where(resource_versions.c.resource_id == resource_id))
    if last is None and previous["file_key"]:
        conn.execute(insert(resource_versions).values(
            version=1, created_at=previous["last_modified"],
            **_file_values(resource_id, previous["dataset_id"], previous["file_key"], previous["doc"]),
        ))
        last = 1
    conn.execute(insert(resource_versions).values(
        version=(last or 0) + 1, created_at=utcnow(), **_file_values(resource_id, previous["dataset_id"], file_key, doc),
    ))


def without_previous_summary(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A replaced file's document: the summary in its extras described the file before."""
    extras = doc.get("extras") or {}
    if CHANGES_EXTRA not in extras:
        return dict(doc)
    return {**doc, "extras": {key: value for key, value in extras.items() if key != CHANGES_EXTRA}}


def record_extras(conn: Connection, file_key: str | None, extras: Mapping[str, Any]) -> None:
    """The resource's extras changed: its current version takes their sha256 and summary."""
    if not file_key:
        return
    sha256 = extras.get(SHA256_EXTRA)
    conn.execute(
        update(resource_versions).where(resource_versions.c.file_key == file_key)
        .values(sha256=sha256 if isinstance(sha256, str) else None, changes=clean_changes(extras.get(CHANGES_EXTRA)))
    )


def delete_versions(conn: Connection, resource_id: str) -> list[str]:
    """Forget the resource's versions; returns their files' keys, for the caller to delete."""
    keys = list(conn.scalars(select(resource_versions.c.file_key).where(resource_versions.c.resource_id == resource_id)))
    conn.execute(delete(resource_versions).where(resource_versions.c.resource_id == resource_id))
    return keys


# Reads


class ResourceVersions:
    def __init__(self, db: Database) -> None:
        self._db = db

    def of_resource(self, resource: Mapping[str, Any]) -> list[Json]:
        """The versions of a resource record (datasets.py), newest first; a hosted resource from
        before versions is its current file alone, version 1; a remote one has none."""
        return self.of_resources([resource])[resource["id"]]

    def of_resources(self, resources: list[Mapping[str, Any]]) -> dict[str, list[Json]]:
        """Resource id -> its versions, newest first, in one query."""
        ids = [resource["id"] for resource in resources]
        found: dict[str, list[Json]] = {resource_id: [] for resource_id in ids}
        if ids:
            query = (
                select(resource_versions).where(resource_versions.c.resource_id.in_(ids))
                .order_by(resource_versions.c.resource_id, resource_versions.c.version.desc())
            )
            with self._db.read() as conn:
                for row in conn.execute(query).mappings():
                    found[row["resource_id"]].append(dict(row))
        for resource in resources:
            if not found[resource["id"]] and resource.get("file_key"):
                found[resource["id"]] = [{
                    "version": 1, "created_at": resource["last_modified"],
                    **_file_values(resource["id"], resource["dataset_id"], resource["file_key"], resource), "changes": None,
                }]
        return found

    def version(self, resource: Mapping[str, Any], number: int) -> Json | None:
        return next((row for row in self.of_resource(resource) if row["version"] == number), None)

    def history(self, base_url: str, resources: list[Mapping[str, Any]]) -> list[Json]:
        """The dataset page's history (templates/_history.html): each hosted resource with its
        versions, newest first, as the API lists them plus their summary in French."""
        by_resource = self.of_resources(resources)
        return [
            {
                "resource_id": resource["id"], "title": resource.get("title") or resource["id"],
                "versions": [
                    {**render_version(base_url, resource, row), "summary": french_summary(row["version"], row["changes"])}
                    for row in by_resource[resource["id"]]
                ],
            }
            for resource in resources if by_resource[resource["id"]]
        ]


def version_url(base_url: str, resource_id: str, number: int) -> str:
    return f"{base_url}/datasets/r/{resource_id}/versions/{number}"


def render_version(base_url: str, resource: Mapping[str, Any], row: Mapping[str, Any]) -> Json:
    """A version as the API lists it (VERSION_SCHEMA)."""
    return {
        "version": row["version"],
        "created_at": row["created_at"].isoformat(),
        "checksum": {"type": "sha1", "value": row["sha1"]},
        "sha256": row["sha256"],
        "filesize": row["filesize"],
        "mime": row["mime"],
        "format": row["format"],
        "url": version_url(base_url, resource["id"], row["version"]),
        "latest": row["file_key"] == resource.get("file_key"),
        "changes": row["changes"],
    }
