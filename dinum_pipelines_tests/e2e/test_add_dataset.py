"""Issue 15: `dinum-pipelines add URL` on every tabular file of ../shared/data/real, end to end.

Each file is served in place on loopback, `add` writes its YAML into a fresh registry folder, the
test writes the title and description (and nothing else), the registry loads, and every dataset
is materialized for real (ingest -> clean -> check -> publish to a catalog on loopback) in one
Dagster run on one instance: one run of many datasets costs far less than one run per dataset.
Each must publish or be blocked with a report; the schemas' valid examples must publish.
"""

from __future__ import annotations

import io
import json
import mimetypes
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import yaml

from dinum_pipelines.catalog.server import serve_in_thread
from dinum_pipelines.catalog.settings import CatalogSettings
from dinum_pipelines.cli import add
from dinum_pipelines.definitions import build_definitions
from dinum_pipelines.defs.keys import clean_key, published_key, raw_key
from dinum_pipelines.demo.runner import (
    QUIET_RUN_CONFIG,
    DatasetOutcome,
    bootstrap_demo_publisher,
    outcome_of_run,
)
from dinum_pipelines.demo.server import ServedFile, serve_administrations
from dinum_pipelines.lib.declare.registry import load_registry
from dinum_pipelines.lib.declare.scaffold import slug_for
from dinum_pipelines.lib.declare.tableschema import SCHEMA_CACHE_ENV
from dinum_pipelines_tests.conftest import REAL_DATA, require_real_data

pytestmark = pytest.mark.slow

CONFORMANCE = REAL_DATA / "conformance"
ORGANIZATION = "administrations-reelles"
LAST_MODIFIED = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
_TABLE_SCHEMA = "a Table Schema document: it describes data, it is none"
_DATA_PACKAGE = "a Data Package descriptor: it lists resources, it holds no rows"
# The files of the two folders that are not tables, each with why.
NOT_TABULAR = {
    "SOURCES.md": "the folder's documentation",
    "conformance/SOURCES.md": "the folder's documentation",
    "format-commande-publique__schema_decp_v2.0.3.json": "a JSON Schema document (DECP): it describes data, it is none",
    "schema-zfe__schema.json": "a JSON Schema document (ZFE): it describes data, it is none",
    **{f"schema-{family}__schema.json": _TABLE_SCHEMA for family in ("comptage-mobilites-channel", "lieux-covoiturage", "stationnement")},
    **{f"conformance/{name}": _DATA_PACKAGE for name in (
        "acceslibre-schema__datapackage.json", "schema-dispositif-aide__datapackage.json",
        "schema-operations-amenagement__datapackage.json", "schema-projet-collectivites-transition-ecologique__datapackage.json",
    )},
    **{f"conformance/{name}": _TABLE_SCHEMA for name in (
        "acceslibre-schema__base__schema.json", "acceslibre-schema__bureau_de_vote__schema.json",
        "acceslibre-schema__etablissements_scolaires__schema.json", "acceslibre-schema__grands_etablissements__schema.json",
        "acceslibre-schema__hebergement__schema.json", "acceslibre-schema__sante__schema.json",
        "registre_entrees__Schema_V0.1.json", "registre_entrees__schema.json", "schema-arbre__schema.json",
        "schema-arrete-circulation-marchandises__schema.json", "schema-catalogue-donnees__schema.json",
        "schema-decp-dpa__schema.json", "schema-dispositif-aide__dispositif-aide-professionnels__schema.json",
        "schema-dispositif-aide__dispositif-aide__schema.json", "schema-fontaine-eau__schema.json",
        "schema-friches__schema.json", "schema-hautes-remunerations__schema.json",
        "schema-impact-service-public-numerique__schema.json", "schema-inclusion-numerique__schema.json",
        "schema-indice-reparabilite__schema.json", "schema-operations-amenagement__schema_operation-amenagement.json",
        "schema-operations-amenagement__schema_programme.json", "schema-operations-amenagement__schema_secteur.json",
        "schema-projet-collectivites-transition-ecologique__collectivites__schema.json",
        "schema-projet-collectivites-transition-ecologique__projets-territoire__schema.json",
        "schema-stationnement-cyclable__schema.json", "schema-stationnement-cyclable__v0.1.0__schema.json",
        "schema-vehicules-faibles-emissions-renouvellement-parc__schema.json",
        "schema.data.gouv.fr__scdl-deliberations-2.1.5__schema.json", "standard-mediation-num__schema.json",
    )},
}  # fmt: skip
# The one file the pipeline's reader refuses (SOURCES.md: a ragged export); `add` says why and the
# run stops at the same message.
UNREADABLE = {"datagouvfr_data_pipelines__test_datasets_catalog.csv": "the header (line 1) has 40 fields but line 4 has 37 fields"}


def _relative(path: Path) -> str:
    return path.relative_to(REAL_DATA).as_posix()


def tabular_files() -> list[str]:
    every = sorted(_relative(p) for folder in (REAL_DATA, CONFORMANCE) for p in folder.iterdir() if p.is_file())
    return [name for name in every if name not in NOT_TABULAR]


def _is_valid_example(name: str) -> bool:
    return "exemple-valide" in name or "fichier-valide" in name


def _slug(name: str) -> str:
    # The CSV and XLSX copies of one example would get the same slug from their names.
    return slug_for(name) + ("_xlsx" if name.endswith(".xlsx") else "")


@dataclass
class Added:
    name: str
    slug: str
    exit_code: int
    printed: str
    summary: str = ""
    outcome: DatasetOutcome | None = None


@pytest.fixture(scope="module")
def added_and_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Added]]:
    require_real_data()
    root = tmp_path_factory.mktemp("add")
    files = {
        f"/{name}": ServedFile((REAL_DATA / name).read_bytes(), mimetypes.guess_type(name)[0] or "application/octet-stream", LAST_MODIFIED)
        for name in tabular_files()
    }
    sources = root / "sources"
    with serve_administrations(files=files) as admin, pytest.MonkeyPatch.context() as patch:
        patch.setenv(SCHEMA_CACHE_ENV, str(root / "schema_cache"))
        started = time.monotonic()
        added: dict[str, Added] = {}
        for name in tabular_files():
            printed = io.StringIO()
            arguments = add.build_parser().parse_args([
                "add", f"{admin.url}/{name}", "--org", ORGANIZATION, "--slug", _slug(name), "--out", str(sources),
                "--schemas", str(CONFORMANCE), "--schemas", str(REAL_DATA),
            ])  # fmt: skip
            code = add.run(arguments, out=printed)
            added[name] = Added(name, _slug(name), code, printed.getvalue())
        profiled = time.monotonic() - started
        # What a human must do, and nothing else: the title and the description.
        for entry in added.values():
            path = sources / entry.slug / "defs.yaml"
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
            document["attributes"]["title"] = f"Fichier réel {entry.name}"
            document["attributes"]["description"] = f"Le fichier {entry.name} du dossier des fichiers réels, déclaré par dinum-pipelines add. " * 2
            path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
        registry = load_registry(sources)
        catalog = serve_in_thread(CatalogSettings.in_directory(root / "catalog"))
        try:
            key = bootstrap_demo_publisher(catalog.store, "add@test.local", {ORGANIZATION: "Administrations réelles"})
            patch.setenv("DINUM_CATALOG_URL", catalog.url)
            patch.setenv("DINUM_CATALOG_API_KEY", key)
            patch.setenv("DINUM_DATA_DIR", str(root / "data"))
            defs = build_definitions(str(sources))
            instance = dg.DagsterInstance.ephemeral()
            started = time.monotonic()
            # One run of every dataset's chain (several datasets per run, one instance).
            selection = [key for slug in registry for key in (raw_key(slug), clean_key(slug), published_key(slug))]
            result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
                instance=instance, asset_selection=selection, raise_on_error=False, run_config=QUIET_RUN_CONFIG
            )
            materialized = time.monotonic() - started
            steps: dict[str, float] = {}
            for event in result.all_events:
                if event.is_step_success:
                    kind = event.step_key.rsplit("__", 1)[-1]
                    steps[kind] = steps.get(kind, 0.0) + event.event_specific_data.duration_ms / 1000
            print(f"\nstep time by kind: { {kind: round(total, 1) for kind, total in steps.items()} }")
            by_slug = {entry.slug: entry for entry in added.values()}
            for slug, spec in registry.items():
                by_slug[slug].outcome = outcome_of_run(spec, result, instance)
        finally:
            catalog.stop()
        for entry in added.values():
            entry.summary = _summary(sources / entry.slug / "defs.yaml", entry.printed)
        _print_table(added, profiled, materialized)
        yield added


def _summary(path: Path, printed: str) -> str:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))["attributes"]
    flagged = "; personal data flagged" if "PERSONAL DATA:" in printed else ""
    if "schema" in document:
        return f"schema {document['schema']['name']} {document['schema'].get('version', '')}".strip() + flagged
    columns = document.get("columns") or []
    if not columns:
        return "no column (unreadable)"
    types = {}
    for column in columns:
        types[column["type"]] = types.get(column["type"], 0) + 1
    parts = [f"{len(columns)} cols (" + ", ".join(f"{k} {v}" for k, v in sorted(types.items())) + ")"]
    formats = sorted({c["format"] for c in columns if "format" in c})
    if formats:
        parts.append("formats " + ",".join(formats))
    rules = {rule: sum(1 for c in columns if c.get(rule) not in (None, False)) for rule in ("required", "unique", "enum", "pattern", "minimum")}
    parts.append(", ".join(f"{rule} {count}" for rule, count in rules.items() if count) or "no rule")
    return "; ".join(parts) + flagged


def _print_table(added: dict[str, Added], profiled: float, materialized: float) -> None:
    print(f"\n`add` on {len(added)} files: {profiled:.1f} s; one Dagster run of them all: {materialized:.1f} s")
    print("| file | inferred | outcome |\n|---|---|---|")
    for entry in added.values():
        outcome = entry.outcome
        detail = outcome.detail if outcome.status != "published" else ("with warnings" if outcome.check_warnings else "")
        print(f"| {entry.name} | {entry.summary} | {outcome.status.upper()} {detail[:160]} |")


def test_every_real_file_is_tabular_or_listed_with_a_reason():
    require_real_data()
    every = {_relative(p) for folder in (REAL_DATA, CONFORMANCE) for p in folder.iterdir() if p.is_file()}
    assert set(NOT_TABULAR) <= every, "a listed file is gone"
    for name in NOT_TABULAR:
        if name.endswith(".json"):
            document = json.loads((REAL_DATA / name).read_bytes())
            assert {"fields", "resources", "properties", "$schema"} & set(document), name
    assert len(tabular_files()) == 57


def test_add_on_every_real_file_publishes_or_blocks_with_a_report(added_and_run):
    for entry in added_and_run.values():
        outcome = entry.outcome
        assert outcome is not None, entry.name
        if entry.name in UNREADABLE:
            assert entry.exit_code == add.EXIT_UNREADABLE and UNREADABLE[entry.name] in entry.printed
            assert outcome.status == "failed" and UNREADABLE[entry.name] in outcome.detail, outcome
            continue
        assert entry.exit_code == add.EXIT_OK, entry.printed
        assert "dry run of the proposal on this file:" in entry.printed
        assert outcome.status in ("published", "blocked"), (entry.name, outcome)
        if outcome.status == "blocked":
            assert outcome.check_passed is False and "failed" in outcome.detail, outcome
        # What `add` predicted on the file is what the run did.
        assert ("would publish" in entry.printed) == (outcome.status == "published"), (entry.name, entry.printed, outcome)


def test_proposed_rules_never_block_a_valid_example_of_a_known_schema(added_and_run):
    """Only the personal-data guard may stop a valid example (addresses like jean.martin@ign.fr are
    a person's, whatever the schema), and `add` said so beforehand; no proposed rule blocks."""
    examples = {name: entry for name, entry in added_and_run.items() if _is_valid_example(name)}
    assert len(examples) >= 25
    for name, entry in examples.items():
        if entry.outcome.status == "published":
            continue
        assert "PERSONAL DATA:" in entry.printed, name
        reasons = entry.outcome.detail.removeprefix("Blocked: ").split("; column ")
        assert all("expect_column_values_to_not_be_personal_data" in reason for reason in reasons), (name, entry.outcome.detail)
