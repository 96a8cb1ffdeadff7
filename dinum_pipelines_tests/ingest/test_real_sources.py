"""Every real file of ../shared/data/real, ingested over loopback HTTP and cleaned like a dataset.

Each file has a registry entry in `real_sources/` (URL `${DINUM_REAL_DATA_URL}/<file name>`).
The files are served in place from the shared folder (never copied into the project) by the
demo administrations' server, then `ingest` and `clean` run as the Dagster assets run them, and
the clean Parquet is read back. Row counts are those of the folder's SOURCES.md. Datasets with a
`schema:` fetch their Table Schema from the same server into a temporary schema cache.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from dinum_pipelines.demo.server import RunningAdministrations, ServedFile, serve_administrations
from dinum_pipelines.lib.ingest.http import make_session
from dinum_pipelines.lib.storage.layout import DataLayout
from dinum_pipelines.lib.clean import parsing
from dinum_pipelines.lib.clean.cleaning import clean_table
from dinum_pipelines.lib.clean.parsing import ParseError, decimal_separator, read_source
from dinum_pipelines.lib.pipeline import CleanOutcome, check_quality, clean, ingest
from dinum_pipelines.lib.declare.registry import expand_env, parse_dataset_file
from dinum_pipelines.lib.clean.tables import to_arrow, write_csv
from dinum_pipelines.lib.declare.tableschema import SCHEMA_CACHE_ENV, cached_schema_path
from dinum_pipelines_tests.conftest import REAL_DATA, require_real_data

REAL_SOURCES = Path(__file__).resolve().parent / "real_sources"
URL_ENV = "DINUM_REAL_DATA_URL"
LAST_MODIFIED = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
# What the folder holds besides data files.
NOT_DATA = {"SOURCES.md"}

# A registry column type -> the Arrow type the clean Parquet must have.
ARROW_TYPES: dict[str, Callable[[pa.DataType], bool]] = {
    "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "integer": lambda t: t == pa.int64(),
    "number": lambda t: t == pa.float64(),
    "boolean": pa.types.is_boolean,
    "date": lambda t: t == pa.date32(),
    "datetime": pa.types.is_timestamp,
}


@dataclass(frozen=True)
class Expected:
    rows: int
    # column -> registry type word (see ARROW_TYPES)
    types: dict[str, str]
    # column -> values that must be among the clean column's values
    values: dict[str, set] = field(default_factory=dict)
    # column -> samples cleaning could not type (the file's own defects); none elsewhere
    issues: dict[str, list[str]] = field(default_factory=dict)


_TABLE_SCHEMA_FIELDS = {"name": "string", "type": "string", "constraints": "string"}

EXPECTED: dict[str, Expected] = {
    "ban_depts2014": Expected(
        101,
        {"region": "string", "dep": "string", "cheflieu": "string", "tncc": "integer", "nccenr": "string"},
        {"dep": {"01", "2A", "2B", "971", "976"}, "cheflieu": {"01053", "2A004"}, "nccenr": {"Ardèche", "Corse-du-Sud"}},
    ),
    "ban_epcicom2015": Expected(
        36588,
        {"dep_epci": "string", "siren_epci": "string", "insee": "string", "dep_com": "string", "ptot_2015": "integer"},
        {"dep_com": {"01", "2A", "2B", "971"}, "insee": {"01056"}, "nom_com": {"Boyeux-Saint-Jérôme"}},
    ),
    "valeurs_foncieres_2024": Expected(
        100,
        {
            "date_mutation": "date",
            "valeur_fonciere": "number",
            "code_postal": "string",
            "code_commune": "string",
            "nombre_pieces_principales": "integer",
            "b_t_q": "string",
        },
        {"date_mutation": {date(2024, 1, 2)}, "valeur_fonciere": {346.5, 10000.0}, "code_postal": {"1230"}},
    ),
    "bal_sample": Expected(
        15,
        {"cle_interop": "string", "numero": "integer", "x": "number", "lat": "number", "date_der_maj": "date"},
        {"date_der_maj": {date(2013, 1, 26), date(2016, 1, 25)}, "cle_interop": {"A7482_6956_11"}, "x": {1049409.0}},
        # A real defect of the sample: a house number written "163,0000000000".
        issues={"numero": ["163,0000000000"]},
    ),
    "tourisme_handicap": Expected(
        3809,
        {"nom_etablissement": "string", "code_postal": "string", "siret": "string", "handicaps": "string"},
        {"siret": {"410463723 00016"}, "code_postal": {"29470", "04340", "05200"}, "departement": {"Finistère"}},
    ),
    "lieux_covoiturage_valide": Expected(
        1,
        {"id_lieu": "string", "insee": "string", "date_maj": "date", "ouvert": "boolean", "xlong": "number", "nbre_pl": "integer"},
        {"id_lieu": {"76217-C-001"}, "date_maj": {date(2019, 6, 25)}, "xlong": {1.081183}, "source": {"217602176"}},
    ),
    "lieux_covoiturage_invalide": Expected(
        2,
        {"date_maj": "date", "insee": "string", "ylat": "number"},
        {"insee": {"76000"}},
        # Table Schema dates are ISO 8601: the French-style date is the error the schema catches.
        issues={"date_maj": ["24-06-2019"]},
    ),
    "stationnement_valide": Expected(
        2,
        {"id": "string", "gratuit": "boolean", "nb_places": "integer", "num_siret": "string", "xlong": "number", "tarif_1h": "number"},
        {"hauteur_max": {"290", "N/A"}, "adresse": {"3 rue de la Gare, 92300, Levallois-Peret"}, "abo_resident": {60.99}},
    ),
    "stationnement_invalide": Expected(1, {"id": "string", "tarif_pmr": "string"}, {"id": {"P-001"}}),
    "comptage_channel_valide": Expected(
        1,
        {"channel_id": "string", "mobility_type": "string", "started_at": "datetime", "time_step": "number"},
        {"mobility_type": {"E-SCOOTER,PEDESTRIAN"}, "time_step": {900.0}},
    ),
    "comptage_channel_invalide": Expected(4, {"channel_id": "string", "started_at": "datetime"}, {"mobility_type": {"ERR002,PEDESTRIAN"}}),
    "lieux_covoiturage_schema": Expected(18, _TABLE_SCHEMA_FIELDS, {"name": {"id_lieu", "Xlong"}}),
    "stationnement_schema": Expected(30, _TABLE_SCHEMA_FIELDS, {"name": {"id", "tarif_pmr"}}),
    "comptage_channel_schema": Expected(19, _TABLE_SCHEMA_FIELDS, {"name": {"channel_id", "time_step"}}),
    "zfe_zone": Expected(
        1,
        {"id": "string", "date_debut": "date", "date_fin": "date", "geometry": "string"},
        {"id": {"200046977-ZFE-001"}, "url_site": {"https://www.metropolegrandparis.fr/fr/ZFE"}},
    ),
    "zfe_schema": Expected(15, {"propriete": "string", "type": "string", "enum": "string"}, {"propriete": {"id", "date_debut", "vp_critair"}}),
    "decp_schema": Expected(31, {"champ": "string", "max_length": "integer", "title": "string"}, {"champ": {"id", "acheteur", "montant"}}),
    "decp_marches_concessions": Expected(
        4,
        {"type_contrat": "string", "date_publication_donnees": "date", "duree_mois": "integer", "montant": "number", "titulaires": "string"},
        {"type_contrat": {"marche", "contrat-concession"}, "id": {"0612202306122024"}},
    ),
    "decp_marche_xml": Expected(
        2,
        {"id": "string", "date_notification": "date", "montant": "number", "offres_recues": "integer", "titulaires": "string"},
        {"id": {"TEST2022"}, "date_notification": {date(2024, 5, 15)}, "montant": {575000.0}},
    ),
}
# Files that must be refused, with what the message must say.
REJECTED = {"datagouv_datasets_catalog": r"test_datasets_catalog\.csv.*the header \(line 1\) has 40 fields but line 4 has 37 fields"}


def _registry_paths() -> list[Path]:
    return sorted(REAL_SOURCES.glob("*.yaml"))


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAdministrations]:
    """The real files, served in place; DINUM_REAL_DATA_URL points at them."""
    require_real_data()
    files = {
        f"/{path.name}": ServedFile(path.read_bytes(), mimetypes.guess_type(path.name)[0] or "application/octet-stream", LAST_MODIFIED)
        for path in sorted(REAL_DATA.iterdir())
        if path.is_file() and path.name not in NOT_DATA
    }
    with serve_administrations(files=files) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv(URL_ENV, server.url)
        patch.setenv(SCHEMA_CACHE_ENV, str(tmp_path_factory.mktemp("schema_cache")))
        yield server


def _ingest_and_clean(slug: str, root: Path) -> CleanOutcome:
    spec = parse_dataset_file(REAL_SOURCES / f"{slug}.yaml")
    layout = DataLayout(root)
    with make_session(retries=0) as session:
        outcome = ingest(spec, layout, session)
    assert outcome.version is not None and outcome.unchanged_reason is None
    return clean(spec, layout)


def test_every_real_file_has_one_registry_entry_and_an_expectation():
    require_real_data()
    data_files = sorted(p.name for p in REAL_DATA.iterdir() if p.is_file() and p.name not in NOT_DATA)
    # The URLs are read without expanding the environment: no server is needed to check coverage.
    sources = {path.stem: _source_file_from_yaml(path) for path in _registry_paths()}
    assert sorted(sources.values()) == data_files
    assert sorted(sources) == sorted([*EXPECTED, *REJECTED])


def _source_file_from_yaml(path: Path) -> str:
    url = yaml.safe_load(path.read_text(encoding="utf-8"))["source"]["url"]
    assert url.startswith(f"${{{URL_ENV}}}/"), f"{path.name}: the URL must be ${{{URL_ENV}}}/<file name>"
    return url.removeprefix(f"${{{URL_ENV}}}/")


@pytest.mark.parametrize("slug", sorted(EXPECTED))
def test_real_file_is_ingested_and_cleaned(real_server, tmp_path, slug):
    expected = EXPECTED[slug]
    outcome = _ingest_and_clean(slug, tmp_path)

    table = pq.read_table(outcome.files.parquet)
    assert table.num_rows == expected.rows
    for column, kind in expected.types.items():
        arrow_type = table.schema.field(column).type
        assert ARROW_TYPES[kind](arrow_type), f"{slug}.{column}: expected {kind}, the Parquet has {arrow_type}"
    for column, values in expected.values.items():
        assert values <= set(table.column(column).to_pylist()), f"{slug}.{column}"
    issues = {issue.column: issue.samples for issue in outcome.report.issues}
    assert issues == expected.issues


def test_real_ragged_catalog_export_is_rejected_with_its_line(real_server, tmp_path):
    slug = "datagouv_datasets_catalog"
    with pytest.raises(ParseError, match=REJECTED[slug]):
        _ingest_and_clean(slug, tmp_path)


def test_real_geojson_geometry_is_kept_whole(real_server, tmp_path):
    outcome = _ingest_and_clean("zfe_zone", tmp_path)
    geometry = pq.read_table(outcome.files.parquet).column("geometry")[0].as_py()
    assert geometry.startswith('{"type":"Polygon","coordinates":[[[2.408554054441555,48.83481394970757],')


def test_real_nested_xml_and_json_become_json_text(real_server, tmp_path):
    xml = pq.read_table(_ingest_and_clean("decp_marche_xml", tmp_path / "xml").files.parquet).to_pylist()
    assert xml[0]["titulaires"] == '{"titulaire":{"id":"55204599900869","typeIdentifiant":"SIRET"}}'
    assert xml[0]["considerationssociales"] == '{"considerationSociale":["Clause sociale","Critère social"]}'
    json_rows = pq.read_table(_ingest_and_clean("decp_marches_concessions", tmp_path / "json").files.parquet).to_pylist()
    concession = next(row for row in json_rows if row["id"] == "0612202306122024")
    assert concession["concessionnaires"].startswith('[{"concessionnaire":{"typeIdentifiant":"SIRET","id":"38103128500491"}}')


@pytest.mark.parametrize(
    ("slug", "failing"),
    [
        ("lieux_covoiturage_valide", set()),
        ("stationnement_valide", set()),
        ("comptage_channel_valide", set()),
        # The unparsed date (required) fails; the postal code in `insee` and the swapped
        # coordinates pass, as SOURCES.md warns: no schema rule catches them.
        ("lieux_covoiturage_invalide", {"date_maj"}),
        ("stationnement_invalide", {"id", "tarif_pmr"}),
        ("comptage_channel_invalide", {"channel_id", "mobility_type"}),
    ],
)
def test_schema_examples_pass_or_fail_the_schema_rules(real_server, tmp_path, slug, failing):
    _ingest_and_clean(slug, tmp_path)
    spec = parse_dataset_file(REAL_SOURCES / f"{slug}.yaml")
    report = check_quality(spec, DataLayout(tmp_path))
    assert {outcome.column for outcome in report.blocking_failures} == failing
    assert report.passed is not failing


def test_table_schemas_were_fetched_once_into_the_cache(real_server, tmp_path):
    spec = parse_dataset_file(REAL_SOURCES / "stationnement_valide.yaml")
    assert spec.table_schema is not None and spec.table_schema.version == "0.1.5"
    assert cached_schema_path("etalab/schema-stationnement", "0.1.5").is_file()
    seen = [r.path for r in real_server.requests_seen if r.path.endswith("__schema.json") and "stationnement" in r.path]
    parse_dataset_file(REAL_SOURCES / "stationnement_invalide.yaml")
    again = [r.path for r in real_server.requests_seen if r.path.endswith("__schema.json") and "stationnement" in r.path]
    assert seen and again == seen
    assert expand_env(spec.source.url).startswith(real_server.url)


def _whole_file_reference(slug: str, outcome: CleanOutcome):
    """The clean table and report of the raw file read and cleaned in one piece, in memory."""
    spec = parse_dataset_file(REAL_SOURCES / f"{slug}.yaml")
    frame, detected = read_source(DataLayout(outcome.files.directory.parent.parent).raw_store().local_path(outcome.raw), spec.source)
    cleaned, report = clean_table(frame, spec, decimal_separator(spec.source))
    return to_arrow(cleaned, spec), report, detected


@pytest.mark.parametrize("slug", sorted(EXPECTED))
def test_real_file_streamed_in_small_batches_is_cleaned_as_in_one_piece(real_server, tmp_path, monkeypatch, slug):
    """The pipeline reads a delimited file in blocks (memory does not grow with the file); in
    blocks of 4 KiB, every real file gives the very table, CSV bytes and report that reading and
    cleaning it whole gives."""
    monkeypatch.setattr(parsing, "CSV_BLOCK_BYTES", 4096)
    monkeypatch.setattr(parsing, "CSV_BATCH_ROWS", 1)  # every block cleaned on its own
    outcome = _ingest_and_clean(slug, tmp_path)
    table, report, detected = _whole_file_reference(slug, outcome)
    published = pq.read_table(outcome.files.parquet)
    assert published.equals(table, check_metadata=False)
    reference_csv = tmp_path / "reference.csv"
    write_csv(table, reference_csv)
    assert outcome.files.csv.read_bytes() == reference_csv.read_bytes()
    assert outcome.report.to_dict() == report.to_dict()
    assert outcome.detected == detected
    assert outcome.row_count == table.num_rows and outcome.columns == table.column_names


def test_real_ragged_export_streamed_in_small_batches_is_rejected_with_the_same_line(real_server, tmp_path, monkeypatch):
    monkeypatch.setattr(parsing, "CSV_BLOCK_BYTES", 4096)
    monkeypatch.setattr(parsing, "CSV_BATCH_ROWS", 1)
    with pytest.raises(ParseError, match=REJECTED["datagouv_datasets_catalog"]):
        _ingest_and_clean("datagouv_datasets_catalog", tmp_path)
    assert not list((tmp_path / "clean").rglob("*.parquet*")), "a refused file leaves no clean file, not even a temporary one"
