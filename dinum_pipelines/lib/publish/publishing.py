"""Publishing a dataset's clean files and metadata to a udata catalog, idempotently.

The catalog is the source of truth for what is published: the dataset is found by the
`dinum:slug` extra it was created with, and each file by its `dinum:role` extra, so no local
state can drift from it. A file is uploaded only when its sha1 differs from the checksum the
catalog holds, and metadata is sent only when it differs, so an unchanged source creates no
new version. Replacing a file keeps the resource id, so reusers' stable links keep working.

A publication stopped half-way (the catalog down or killed, the run killed) leaves the earlier
files served and is finished by the next one, which adopts a file uploaded without its role and
puts a stale sha256 right; two publications racing (outside Dagster's pool) end with one dataset
and one resource per role (dinum_pipelines_tests/e2e/test_fault_matrix.py tries each case).
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from dinum_pipelines.lib.publish.catalog_client import CatalogError, UdataClient
from dinum_pipelines.lib.declare.registry import OrganizationSpec, SchemaReference, SpatialCoverage, TemporalCoverage
from dinum_pipelines.lib.publish.validation_report import report_changed

SLUG_EXTRA = "dinum:slug"
ROLE_EXTRA = "dinum:role"
SHA256_EXTRA = "dinum:sha256"
# What changed in the table since the file published before (lib/publish/changes.py); the catalog keeps
# it with the new file's version (catalog/versions.py), udata keeps it as any extra.
CHANGES_EXTRA = "dinum:changes"
# The file a publication's change summary compares with the one the catalog serves.
TABLE_ROLE = "parquet"
# Who downloads the served table to compare it: the publisher itself, not a reuser, so the usage
# metrics must not count it ("bot" is in lib/metrics/bots.yaml, as data.gouv.fr's udata-hydra is).
COMPARISON_USER_AGENT = "dinum-pipelines change-summary bot (reads the file it is about to replace)"
# (the previous published table, the new one) -> the `dinum:changes` extra.
CompareTables = Callable[[Path, Path], dict[str, Any]]
# The data files' extras, or what computes them when first needed (after the first upload, so
# that a costly profile is computed while the file goes out: lib/pipeline.py).
Extras = Mapping[str, Any] | Callable[[], Mapping[str, Any] | None]


class CatalogDataset(Protocol):
    """What publishing reads of a dataset: a registry entry (DatasetSpec) or one the pipeline
    produces itself (`ProducedDataset`: the quality report, the usage metrics)."""

    slug: str
    title: str
    description: str
    license: str
    frequency: str
    tags: list[str]
    organization: OrganizationSpec
    temporal_coverage: TemporalCoverage
    spatial: SpatialCoverage
    table_schema: SchemaReference | None


@dataclass(frozen=True)
class ProducedDataset:
    """A dataset the pipeline computes (no administration source), published like the others."""

    slug: str
    title: str
    description: str
    organization: OrganizationSpec
    license: str = "lov2"
    frequency: str = "daily"
    tags: list[str] = field(default_factory=list)
    temporal_coverage: TemporalCoverage = TemporalCoverage()
    spatial: SpatialCoverage = SpatialCoverage()
    table_schema: SchemaReference | None = None


@dataclass
class PublicationResult:
    dataset_id: str
    dataset_url: str | None
    resource_ids: dict[str, str]
    actions: list[str] = field(default_factory=list)
    # What changed in the table since the published one; None when its file did not change.
    changes: dict[str, Any] | None = None

    @property
    def changed(self) -> bool:
        return any(not a.startswith("unchanged") for a in self.actions)


# What a publication needs of a file: its sha1 (udata's checksum, to compare with the one the
# catalog serves) and its sha256 (our extra).
DIGESTS = ("sha1", "sha256")
_KNOWN_DIGESTS_KEPT = 64


def _read_digests(path: str, algorithms: tuple[str, ...]) -> dict[str, str]:
    digests = {algorithm: hashlib.new(algorithm) for algorithm in algorithms}
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            for digest in digests.values():
                digest.update(chunk)
    return {algorithm: digest.hexdigest() for algorithm, digest in digests.items()}


# Digests known per file version (path, inode, size, modification time), the latest last. A
# caller asking for a file being hashed by another thread (digests_ahead) waits for that reading
# instead of starting its own: one lock per file version, striped to bound their number.
_KNOWN_DIGESTS: OrderedDict[tuple[str, int, int, int], dict[str, str]] = OrderedDict()
_KNOWN_LOCK = threading.Lock()
_DIGEST_LOCKS = tuple(threading.Lock() for _ in range(64))


def file_digests(path: Path, algorithms: tuple[str, ...] = DIGESTS, *, reading: tuple[str, ...] | None = None) -> dict[str, str]:
    """The file's sha1 and/or sha256, kept while the file's size and modification time stay the
    same: a multi-GB clean file is read once for its digests, not once per digest and per caller
    (a file written again is a new inode: read again). When one of `algorithms` is not known
    yet, the file is read for all of `reading` not known yet (default: `algorithms`)."""
    reading = reading or algorithms
    unknown = [algorithm for algorithm in (*algorithms, *reading) if algorithm not in DIGESTS]
    if unknown:
        raise ValueError(f"{unknown[0]}: only {DIGESTS} are computed")
    status = path.stat()
    version = (str(path.resolve()), status.st_ino, status.st_size, status.st_mtime_ns)
    with _DIGEST_LOCKS[hash(version) % len(_DIGEST_LOCKS)]:
        with _KNOWN_LOCK:
            known = dict(_KNOWN_DIGESTS.get(version, {}))
        if any(algorithm not in known for algorithm in algorithms):
            known.update(_read_digests(version[0], tuple(a for a in dict.fromkeys((*algorithms, *reading)) if a not in known)))
            with _KNOWN_LOCK:
                _KNOWN_DIGESTS[version] = known
                _KNOWN_DIGESTS.move_to_end(version)
                while len(_KNOWN_DIGESTS) > _KNOWN_DIGESTS_KEPT:
                    _KNOWN_DIGESTS.popitem(last=False)
    return {algorithm: known[algorithm] for algorithm in algorithms}


def file_digest(path: Path, algorithm: str) -> str:
    """The file's sha1 or sha256. A file not hashed yet is read for both: whoever asks for one
    (a comparison with the catalog's sha1, the sha256 extra) asks for the other soon after."""
    return file_digests(path, (algorithm,), reading=DIGESTS)[algorithm]


def digests_ahead(needed: dict[Path, tuple[str, ...]]) -> ThreadPoolExecutor:
    """Hash the files one after the other in a thread, while the caller uploads them: a new file
    needs its digests only after its upload (its sha256 extra), and the next file's are ready
    when its turn comes (hashlib and file reads release the GIL). Each file gets the digests
    `needed` says (a new file's sha1 is the catalog's to compute: nothing compares it here).
    Shut the executor down when done."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digests")
    for path, algorithms in needed.items():
        executor.submit(file_digests, path, algorithms)
    return executor


def dataset_payload(spec: CatalogDataset, temporal_coverage: tuple[date, date] | None) -> dict[str, Any]:
    """The dataset metadata as udata's DatasetForm expects it."""
    payload: dict[str, Any] = {
        "title": spec.title,
        "description": spec.description.strip(),
        "license": spec.license,
        "frequency": spec.frequency,
        "tags": list(spec.tags),
    }
    start, end = temporal_coverage or (spec.temporal_coverage.start, spec.temporal_coverage.end)
    if start:
        payload["temporal_coverage"] = {"start": start.isoformat(), "end": end.isoformat() if end else None}
    if spec.spatial.zones or spec.spatial.granularity:
        payload["spatial"] = {"zones": list(spec.spatial.zones), "granularity": spec.spatial.granularity}
    return payload


def _differs(current: Any, wanted: Any) -> bool:
    if isinstance(wanted, dict):
        current = current or {}
        return any(_differs(current.get(key), value) for key, value in wanted.items())
    if isinstance(wanted, str) and isinstance(current, str) and len(wanted) == 10 and len(current) > 10:
        return not current.startswith(wanted)  # a date sent as YYYY-MM-DD comes back as a datetime
    return current != wanted


# Roles of files that document the data rather than hold it (udata's resource types).
DOCUMENTATION_ROLES = frozenset({"conformance"})


def resource_payload(spec: CatalogDataset, path: Path, description: str, role: str = "") -> dict[str, Any]:
    """A published file's metadata; `schema` says which Table Schema the file follows, if any.
    A report about the data (the conformance report) is documentation and follows no schema."""
    schema = spec.table_schema
    if role in DOCUMENTATION_ROLES:
        return {"title": path.name, "description": description, "type": "documentation", "schema": None}
    return {
        "title": path.name,
        "description": description,
        "type": "main",
        "schema": {"name": schema.name, "version": schema.version} if schema else None,
    }


def find_datasets(client: UdataClient, spec: CatalogDataset) -> list[dict]:
    """Every live dataset of the organization carrying the slug, oldest first: one, except just
    after two publishers created it at the same moment."""
    found = [
        dataset for dataset in client.iter_organization_datasets(spec.organization.slug)
        if (dataset.get("extras") or {}).get(SLUG_EXTRA) == spec.slug and not dataset.get("deleted")
    ]
    return sorted(found, key=lambda dataset: (dataset.get("created_at") or "", dataset["id"]))


def _delete(remove: Callable[..., None], *ids: str) -> None:
    """Delete something another publisher may have deleted first (404 or 410: already gone)."""
    try:
        remove(*ids)
    except CatalogError as exc:
        if exc.status not in (404, 410):
            raise


def _dataset(client: UdataClient, spec: CatalogDataset, payload: dict[str, Any], actions: list[str]) -> tuple[dict, bool]:
    """The dataset to publish into, created when missing; True when this call created it.

    Two publishers that both find nothing both create one (Dagster's pool keeps two runs of a
    dataset apart, but a script or another deployment is outside it). So after creating, look
    again: every publisher keeps the oldest and deletes the others, and all converge on one.
    Creation dates can disagree with the order the catalog committed them in, so a publisher may
    find the copy it filled deleted by the other: `publish` looks once more at the end.
    """
    found = find_datasets(client, spec)
    created = None
    if not found:
        organization = client.get_organization(spec.organization.slug)
        created = client.create_dataset({**payload, "organization": organization["id"], "extras": {SLUG_EXTRA: spec.slug}})
        actions.append(f"created dataset {created['id']}")
        found = find_datasets(client, spec) or [created]
    kept, *duplicates = found
    for duplicate in duplicates:
        _delete(client.delete_dataset, duplicate["id"])
        actions.append(f"deleted dataset {duplicate['id']}, a duplicate created concurrently ({kept['id']} kept)")
    return kept, created is not None and kept["id"] == created["id"]


def _role(resource: dict) -> str | None:
    return (resource.get("extras") or {}).get(ROLE_EXTRA)


def _left_without_role(resource: dict, name: str) -> bool:
    """An upload of a file named `name` whose role was never set: an interrupted publication's,
    or a concurrent publisher's that has not set it yet (uploads are titled with the file name)."""
    return _role(resource) is None and resource.get("filetype") == "file" and resource.get("title") == name


def _resources_by_role(client: UdataClient, dataset: dict, files: dict[str, Path], actions: list[str]) -> dict[str, dict]:
    """The resource of each role: the first in the dataset carrying its `dinum:role`.

    A dataset's resources are in upload order (udata appends each new one), so "the first" means
    the same to every publisher. A role with no resource adopts the first upload left without a
    role under the file's name rather than uploading the file again. Resources of a role beyond
    the first, and such leftovers beyond the one adopted, are deleted. Resources someone added by
    hand have neither a role nor one of our file names, and are left alone.
    """
    chosen: dict[str, dict] = {}
    surplus: list[dict] = []
    resources = dataset.get("resources", [])
    for resource in resources:
        role = _role(resource)
        if role in chosen:
            surplus.append(resource)
        elif role is not None:
            chosen[role] = resource
    for role, path in files.items():
        for resource in resources:
            if not _left_without_role(resource, path.name):
                continue
            if role in chosen:
                surplus.append(resource)
            else:
                chosen[role] = resource
                actions.append(f"adopted resource {resource['id']} as {role}: an interrupted publication left it without its role")
    for resource in surplus:
        _delete(client.delete_resource, dataset["id"], resource["id"])
        actions.append(f"deleted resource {resource['id']}, a duplicate or a leftover of an interrupted publication")
    return chosen


def _first_of_role(client: UdataClient, dataset_id: str, role: str, name: str, uploaded: dict, actions: list[str]) -> dict:
    """After uploading a new file for `role`: if another publisher uploaded one before ours (with
    the role, or not yet), that one stays and ours goes; the one uploaded first is the same for
    every publisher, so exactly one remains, and no publisher deletes another's."""
    rivals = [
        resource for resource in client.get_dataset(dataset_id).get("resources", [])
        if _role(resource) == role or _left_without_role(resource, name)
    ]
    first = rivals[0] if rivals else uploaded
    if first["id"] != uploaded["id"]:
        _delete(client.delete_resource, dataset_id, uploaded["id"])
        actions.append(f"deleted resource {uploaded['id']}: another publisher uploaded the {role} file first ({first['id']} kept)")
    return first


def publish(
    client: UdataClient,
    spec: CatalogDataset,
    files: dict[str, Path],
    *,
    temporal_coverage: tuple[date, date] | None = None,
    resource_descriptions: dict[str, str] | None = None,
    validation_extras: Extras | None = None,
    compare_tables: CompareTables | None = None,
) -> PublicationResult:
    """Create or update the dataset, then upload each file whose content changed.

    `files` maps a role ("csv", "parquet") to a local file. Nothing is deleted but duplicates
    and leftovers (see `_dataset`, `_resources_by_role`): a failure half-way leaves every earlier
    published file in place and downloadable, and the next publication picks up where this one
    stopped. Each file's `validation_extras` (see validation_report.py) are sent when they say
    something new; given as a function, it is called once, after the first file is uploaded. With `compare_tables`, a new table file is compared with the one the catalog
    serves before it is replaced, and what changed goes with each new data file (CHANGES_EXTRA).
    """
    extras = validation_extras
    if callable(extras):
        extras = functools.cache(extras)

    def publish_once() -> tuple[PublicationResult, bool]:
        return _publish_once(client, spec, files, temporal_coverage, resource_descriptions or {}, extras, compare_tables)

    result, created = publish_once()
    if created and (kept := find_datasets(client, spec)) and kept[0]["id"] != result.dataset_id:
        # A concurrent publisher's copy turned out older and ours was deleted while we filled it:
        # publish into the one kept (its files are most likely ours already: nothing to send).
        again, _ = publish_once()
        deleted = f"dataset {result.dataset_id} was deleted by a concurrent publisher: published into {again.dataset_id}"
        again.actions[:0] = [*result.actions, deleted]
        return again
    return result


def _publish_once(
    client: UdataClient,
    spec: CatalogDataset,
    files: dict[str, Path],
    temporal_coverage: tuple[date, date] | None,
    resource_descriptions: dict[str, str],
    validation_extras: Extras | None,
    compare_tables: CompareTables | None = None,
) -> tuple[PublicationResult, bool]:
    """One pass of `publish`; True when it created the dataset it published into."""
    actions: list[str] = []
    payload = dataset_payload(spec, temporal_coverage)
    dataset, created = _dataset(client, spec, payload, actions)
    if not created:
        changed = {key: value for key, value in payload.items() if _differs(dataset.get(key), value)}
        if changed:
            dataset = client.update_dataset(dataset["id"], changed)
            actions.append(f"updated dataset fields {sorted(changed)}")
        else:
            actions.append("unchanged dataset metadata")

    existing_by_role = _resources_by_role(client, dataset, files, actions)
    hashing = digests_ahead({path: DIGESTS if existing_by_role.get(role) is not None else ("sha256",) for role, path in files.items()})
    try:
        changes = _table_changes(client, existing_by_role.get(TABLE_ROLE), files.get(TABLE_ROLE), compare_tables, actions)
        resource_ids = {}
        roles = list(files)
        for rank, role in enumerate(roles):
            if rank + 1 < len(roles):  # the next file's parts go out while this one is sent
                _send_ahead(client, dataset["id"], files[roles[rank + 1]], existing_by_role.get(roles[rank + 1]))
            resource_ids[role] = _publish_file(client, spec, dataset["id"], role, files[role], existing_by_role.get(role),
                                               changes, resource_descriptions, validation_extras, actions)
    finally:
        client.stop_sending_ahead()
        hashing.shutdown(wait=False, cancel_futures=True)
    result = PublicationResult(
        dataset_id=dataset["id"], dataset_url=dataset.get("page"), resource_ids=resource_ids, actions=actions, changes=changes,
    )
    return result, created


def _send_ahead(client: UdataClient, dataset_id: str, path: Path, existing: dict | None) -> None:
    """Send a file's parts ahead of its turn when `_publish_file` will upload it: a new resource, or
    a file whose sha1 differs from the one served (asked in the sending thread: it may wait for
    the digests being computed)."""
    if existing is None:
        client.send_parts_ahead(dataset_id, path)
        return
    client.send_parts_ahead(dataset_id, path, existing["id"], wanted=lambda: _differs_from_served(path, existing))


def _differs_from_served(path: Path, resource: dict) -> bool:
    """Whether the file's content is not the one the catalog serves for `resource` (by its sha1)."""
    return (resource.get("checksum") or {}).get("value") != file_digest(path, "sha1")


def _publish_file(
    client: UdataClient,
    spec: CatalogDataset,
    dataset_id: str,
    role: str,
    path: Path,
    existing: dict | None,
    changes: dict[str, Any] | None,
    resource_descriptions: dict[str, str],
    validation_extras: Extras | None,
    actions: list[str],
) -> str:
    """Upload one file when it is new or changed, then set its metadata and extras; its resource id.
    A new file is uploaded before its digests are asked for (they are computed meanwhile)."""
    wanted = resource_payload(spec, path, resource_descriptions.get(role, ""), role)
    actions_before = len(actions)
    if existing is None:
        resource = client.upload_resource(dataset_id, path)
        actions.append(f"uploaded {role} as resource {resource['id']}")
    elif _differs_from_served(path, existing):
        resource = client.replace_resource_file(dataset_id, existing["id"], path)
        actions.append(f"replaced {role} file of resource {existing['id']}")
    else:
        resource = existing
    new_file = resource is not existing
    changed = wanted if new_file else {key: value for key, value in wanted.items() if _differs(existing.get(key), value)}
    if changed:
        resource = client.update_resource(dataset_id, resource["id"], changed)
        if not new_file:
            actions.append(f"updated {role} resource fields {sorted(changed)}")
    # The role last: a run stopped before it leaves a resource the next run adopts (above).
    # With it, the sha256 of the file now served, which a run stopped after replacing the
    # file but before this left stale.
    extras = {ROLE_EXTRA: role, SHA256_EXTRA: file_digest(path, "sha256")}
    if _differs(resource.get("extras"), extras) and not new_file:
        actions.append(f"set the role and sha256 extras of {role}")
    data_extras = None
    if role not in DOCUMENTATION_ROLES and validation_extras:
        data_extras = validation_extras() if callable(validation_extras) else validation_extras
    if data_extras and report_changed(resource.get("extras"), data_extras):
        extras.update(data_extras)
        actions.append(f"updated validation report of {role}")
    if changes is not None and role not in DOCUMENTATION_ROLES and (new_file or _differs(resource.get("extras"), {CHANGES_EXTRA: changes})):
        extras[CHANGES_EXTRA] = changes
    if _differs(resource.get("extras"), extras):
        client.update_resource_extras(dataset_id, resource["id"], extras)
    if existing is None:
        resource = _first_of_role(client, dataset_id, role, path.name, resource, actions)
    if len(actions) == actions_before:
        actions.append(f"unchanged {role} (sha1 {file_digest(path, 'sha1')[:12]})")
    return resource["id"]


def _table_changes(
    client: UdataClient, published: dict | None, table: Path | None, compare: CompareTables | None, actions: list[str]
) -> dict[str, Any] | None:
    """What changed from the table file the catalog serves to `table`, when `table` is new: the
    served file is downloaded beside it (streamed, then deleted) and compared. The local clean
    folder keeps only the latest files, and the catalog is the source of truth anyway. A summary
    that cannot be had (the file unreachable) is left out: the publication goes on without it."""
    if compare is None or table is None or published is None or published.get("filetype") != "file":
        return None
    if not _differs_from_served(table, published):
        return None
    with tempfile.TemporaryDirectory(prefix=".published-", dir=table.parent) as folder:
        previous = Path(folder) / table.name
        try:
            client.download(published["url"], previous, user_agent=COMPARISON_USER_AGENT)
        except CatalogError as exc:
            actions.append(f"no change summary: the published {TABLE_ROLE} file could not be read ({exc})")
            return None
        return compare(previous, table)
