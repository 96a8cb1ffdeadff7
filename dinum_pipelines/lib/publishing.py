"""Publishing a dataset's clean files and metadata to a udata catalog, idempotently.

The catalog is the source of truth for what is published: the dataset is found by the
`dinum:slug` extra it was created with, and each file by its `dinum:role` extra, so no local
state can drift from it. A file is uploaded only when its sha1 differs from the checksum the
catalog holds, and metadata is sent only when it differs, so an unchanged source creates no
new version. Replacing a file keeps the resource id, so reusers' stable links keep working.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from dinum_pipelines.lib.catalog_client import UdataClient
from dinum_pipelines.lib.registry import OrganizationSpec, SchemaReference, SpatialCoverage, TemporalCoverage
from dinum_pipelines.lib.validation_report import report_changed

SLUG_EXTRA = "dinum:slug"
ROLE_EXTRA = "dinum:role"
SHA256_EXTRA = "dinum:sha256"


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

    @property
    def changed(self) -> bool:
        return any(not a.startswith("unchanged") for a in self.actions)


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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


def find_dataset(client: UdataClient, spec: CatalogDataset) -> dict | None:
    for dataset in client.iter_organization_datasets(spec.organization.slug):
        if (dataset.get("extras") or {}).get(SLUG_EXTRA) == spec.slug and not dataset.get("deleted"):
            return dataset
    return None


def publish(
    client: UdataClient,
    spec: CatalogDataset,
    files: dict[str, Path],
    *,
    temporal_coverage: tuple[date, date] | None = None,
    resource_descriptions: dict[str, str] | None = None,
    validation_extras: dict[str, Any] | None = None,
) -> PublicationResult:
    """Create or update the dataset, then upload each file whose content changed.

    `files` maps a role ("csv", "parquet") to a local file. Nothing is deleted: a failure
    half-way leaves every earlier published file in place and downloadable. Each file's
    `validation_extras` (see validation_report.py) are sent when they say something new.
    """
    actions: list[str] = []
    payload = dataset_payload(spec, temporal_coverage)
    dataset = find_dataset(client, spec)
    if dataset is None:
        organization = client.get_organization(spec.organization.slug)
        dataset = client.create_dataset(
            {**payload, "organization": organization["id"], "extras": {SLUG_EXTRA: spec.slug}}
        )
        actions.append(f"created dataset {dataset['id']}")
    else:
        changed = {key: value for key, value in payload.items() if _differs(dataset.get(key), value)}
        if changed:
            dataset = client.update_dataset(dataset["id"], changed)
            actions.append(f"updated dataset fields {sorted(changed)}")
        else:
            actions.append("unchanged dataset metadata")

    by_role = {(r.get("extras") or {}).get(ROLE_EXTRA): r for r in dataset.get("resources", [])}
    resource_ids: dict[str, str] = {}
    for role, path in files.items():
        existing = by_role.get(role)
        sha1 = file_digest(path, "sha1")
        wanted = resource_payload(spec, path, (resource_descriptions or {}).get(role, ""), role)
        if existing is None or (existing.get("checksum") or {}).get("value") != sha1:
            if existing is None:
                resource = client.upload_resource(dataset["id"], path)
                actions.append(f"uploaded {role} as resource {resource['id']}")
            else:
                resource = client.replace_resource_file(dataset["id"], existing["id"], path)
                actions.append(f"replaced {role} file of resource {existing['id']}")
            extras = {ROLE_EXTRA: role, SHA256_EXTRA: file_digest(path, "sha256")}
            resource = client.update_resource(dataset["id"], resource["id"], {**wanted, "extras": extras})
        else:
            resource = existing
            changed = {key: value for key, value in wanted.items() if _differs(existing.get(key), value)}
            if changed:
                resource = client.update_resource(dataset["id"], existing["id"], changed)
                actions.append(f"updated {role} resource fields {sorted(changed)}")
            else:
                actions.append(f"unchanged {role} (sha1 {sha1[:12]})")
        if validation_extras and role not in DOCUMENTATION_ROLES and report_changed(resource.get("extras"), validation_extras):
            client.update_resource_extras(dataset["id"], resource["id"], validation_extras)
            actions.append(f"updated validation report of {role}")
        resource_ids[role] = resource["id"]
    return PublicationResult(
        dataset_id=dataset["id"], dataset_url=dataset.get("page"), resource_ids=resource_ids, actions=actions
    )
