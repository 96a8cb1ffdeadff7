"""Data Packages: several tables validated together, so that foreign keys can be checked.

schema.data.gouv.fr publishes some schemas as packages (acceslibre, opérations d'aménagement,
dispositifs d'aide...). A table's `foreignKeys` name another resource of the package; its key
values are read first (typed as that resource's schema types them), then each resource is
validated with the lookups it needs. A foreign key to a resource the package does not hold is
reported as a schema warning, not silently passed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dinum_pipelines.lib.conformance.report import ConformanceReport
from dinum_pipelines.lib.conformance.schema import Schema
from dinum_pipelines.lib.conformance.source import RawTable
from dinum_pipelines.lib.conformance.validator import key_values, validate_table


@dataclass(frozen=True)
class PackageResource:
    name: str
    schema: Schema
    # Opens the resource's file afresh (a table is read once per use).
    open: Callable[[], RawTable]
    path: Path | None = None


def validate_package(resources: list[PackageResource], *, fast: bool = True) -> dict[str, ConformanceReport]:
    """Each resource's report, foreign keys to the other resources checked."""
    by_name = {resource.name: resource for resource in resources}
    reports: dict[str, ConformanceReport] = {}
    for resource in resources:
        lookups: dict[str, dict[tuple[str, ...], set[tuple]]] = {}
        unknown: list[str] = []
        for key in resource.schema.foreign_keys:
            if not key.resource:
                continue
            target = by_name.get(key.resource)
            if target is None:
                unknown.append(key.resource)
                continue
            lookups.setdefault(key.resource, {})[key.reference_fields] = key_values(
                target.open(), target.schema, key.reference_fields, fast=fast
            )
        report = validate_table(resource.open(), resource.schema, fast=fast, lookups=lookups)
        for name in unknown:
            report.schema_warnings.append(f"la clé étrangère vers « {name} » n'est pas vérifiée : cette ressource n'est pas dans le paquet")
        reports[resource.name] = report
    return reports
