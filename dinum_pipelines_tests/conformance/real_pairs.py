"""Every schema-and-data pair of `../shared/data/real/`, and frictionless run on each as the oracle.

The pairs are listed by hand (a file name does not always say which schema it follows: the
registre's older schema, stationnement-cyclable's v0.1.0), and `test_every_data_file_is_paired`
checks that no data file of those folders is left out. Packages are validated as packages, with
each resource's path in the descriptor mapped to our copy's name (SOURCES.md: `<repo>__<dir>__<name>`).
"""

from __future__ import annotations

import copy
import json
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dinum_pipelines.lib.conformance import open_source, parse_schema, validate_table
from dinum_pipelines.lib.conformance.package import PackageResource, validate_package
from dinum_pipelines.lib.conformance.report import ConformanceReport
from dinum_pipelines.lib.conformance.schema import CONSTRAINT_NAMES
from dinum_pipelines.lib.declare.registry import SourceSpec

SHARED = Path(__file__).resolve().parents[3] / "shared"
REAL = SHARED / "data" / "real"
CONFORMANCE = REAL / "conformance"


@dataclass(frozen=True)
class Pair:
    schema: Path
    data: Path

    @property
    def id(self) -> str:
        return self.data.name if self.schema.name.endswith("schema.json") else f"{self.data.name}@{self.schema.name}"


def _pairs() -> list[Pair]:
    c = CONFORMANCE
    pairs = [Pair(REAL / f"{family}__schema.json", REAL / f"{family}__{kind}.csv")
             for family in ("schema-comptage-mobilites-channel", "schema-lieux-covoiturage", "schema-stationnement")
             for kind in ("exemple-valide", "exemple-invalide")]
    arrete = "schema-arrete-circulation-marchandises"
    pairs += [Pair(c / f"{arrete}__schema.json", c / f"{arrete}__{name}.csv")
              for name in ("exemple-valide", "carros", "fuveau", "gignac", "le-rove", "septemes-les-vallons", "st-victoret", "vence")]
    pairs += [Pair(c / "registre_entrees__schema.json", c / f"registre_entrees__{name}.csv") for name in ("exemple-valide", "Avignon", "StEtienne")]
    pairs.append(Pair(c / "registre_entrees__Schema_V0.1.json", c / "registre_entrees__exemple-valide.csv"))
    pairs += [Pair(c / "schema-decp-dpa__schema.json", c / f"schema-decp-dpa__{name}.csv") for name in ("exemple-valide", "decp-dpa")]
    for family, example in (
        ("schema-arbre", "exemple-valide.csv"), ("schema-arbre", "exemple-valide.xlsx"),
        ("schema-catalogue-donnees", "exemple-valide.csv"), ("schema-fontaine-eau", "exemple-valide.csv"),
        ("schema-friches", "fichier-valide.csv"), ("schema-hautes-remunerations", "exemple-valide.csv"),
        ("schema-impact-service-public-numerique", "exemple-valide.csv"),
        ("schema-inclusion-numerique", "exemple-valide.csv"), ("schema-inclusion-numerique", "exemple-valide.xlsx"),
        ("schema-indice-reparabilite", "exemple-valide.csv"), ("schema-stationnement-cyclable", "exemple-valide.csv"),
        ("schema-vehicules-faibles-emissions-renouvellement-parc", "exemple-valide.csv"),
        ("standard-mediation-num", "exemple-valide.csv"),
    ):
        pairs.append(Pair(c / f"{family}__schema.json", c / f"{family}__{example}"))
    pairs.append(Pair(c / "schema-stationnement-cyclable__v0.1.0__schema.json", c / "schema-stationnement-cyclable__v0.1.0__exemple-valide.csv"))
    return pairs


PAIRS = _pairs()
PACKAGES = sorted(CONFORMANCE.glob("*__datapackage.json"))


def source_for(path: Path) -> SourceSpec:
    kind = "xlsx" if path.suffix == ".xlsx" else "csv"
    return SourceSpec(url=f"http://127.0.0.1/{path.name}", format=kind)


def ours(pair: Pair, *, fast: bool = True) -> ConformanceReport:
    schema = parse_schema(json.loads(pair.schema.read_bytes()), pair.schema.name)
    table = open_source(pair.data, source_for(pair.data), pair.data.name, missing_values=schema.missing_values, fast=fast)
    return validate_table(table, schema, fast=fast)


# --- Packages -------------------------------------------------------------------------------------


def resolve(package: Path, original: str) -> Path:
    """Our copy of a file the descriptor names by its path in the original repository."""
    prefix = package.name.removesuffix("__datapackage.json")
    parts = original.split("/")
    for start in range(len(parts)):
        candidate = package.parent / f"{prefix}__{'__'.join(parts[start:])}"
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{package.name}: no copy of {original}")


def package_resources(package: Path) -> list[tuple[str, dict, Path]]:
    """(name, schema document, data file) of each resource of a package."""
    descriptor = json.loads(package.read_bytes())
    resources = []
    for resource in descriptor["resources"]:
        schema = resource["schema"]
        document = json.loads(resolve(package, schema).read_bytes()) if isinstance(schema, str) else schema
        resources.append((resource["name"], document, resolve(package, resource["path"])))
    return resources


def ours_package(package: Path, *, fast: bool = True) -> dict[str, ConformanceReport]:
    resources = []
    for name, document, data in package_resources(package):
        schema = parse_schema(document, name)
        resources.append(
            PackageResource(
                name=name,
                schema=schema,
                open=lambda data=data, schema=schema: open_source(
                    data, source_for(data), data.name, missing_values=schema.missing_values, fast=fast
                ),
                path=data,
            )
        )
    return validate_package(resources, fast=fast)


# --- frictionless ---------------------------------------------------------------------------------


def frictionless_descriptor(document: dict) -> dict:
    """The schema as frictionless 5 accepts it: without Validata's custom checks (it does not know
    them), and with the departures it refuses outright patched as SOURCES.md says (a schema name
    with spaces; a field `example` of the wrong type; constraints written beside `constraints`,
    which neither applies). Ours reads them with a warning."""
    document = copy.deepcopy(document)
    document.pop("custom_checks", None)
    if isinstance(document.get("name"), str):
        document["name"] = "".join(c for c in document["name"].lower().replace(" ", "-") if c in "-abcdefghijklmnopqrstuvwxyz0123456789._/")
    for field in document.get("fields", []):
        field.pop("example", None)
        for key in CONSTRAINT_NAMES & field.keys():
            field.pop(key)  # frictionless refuses some of these; neither it nor we apply them
    return document


def frictionless_counts(report) -> tuple[Counter, list]:
    flat = report.flatten(["type", "fieldName", "rowNumber", "note"])
    return Counter((code, name) for code, name, _, _ in flat), flat


def frictionless_report(data: Path, document: dict):
    from frictionless import Detector, Resource, Schema

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resource = Resource(path=data.name, basepath=str(data.parent), schema=Schema.from_descriptor(frictionless_descriptor(document)), detector=Detector(schema_sync=True))
        return resource.validate(limit_errors=10**9)


def frictionless_package_reports(package: Path) -> dict:
    from frictionless import Detector, Package

    descriptor = {"name": "package", "resources": []}
    for name, document, data in package_resources(package):
        descriptor["resources"].append(
            {"name": name, "path": data.name, "schema": frictionless_descriptor(document), "profile": "tabular-data-resource"}
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        package_object = Package(descriptor, basepath=str(package.parent), detector=Detector(schema_sync=True))
        report = package_object.validate(limit_errors=10**9)
    return {task.name: task for task in report.tasks}
