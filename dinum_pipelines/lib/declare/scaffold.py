"""A dataset's YAML proposed from its file: what `dinum-pipelines add URL` writes.

A data engineer adding a dataset should not type forty columns by hand. The file is read by the
pipeline's own reader (`parsing.read_source`: same encoding, delimiter, header and record path
as the runs will use), profiled with csv-detective (data.gouv.fr's profiler: types, dates and
French formats such as INSEE codes, SIREN/SIRET and postal codes), and turned into registry
columns with rules. Rules are proposed conservatively, so that a valid file never blocks:

- a type only if cleaning converts every value of the column to it (`cleaning.convert_column`);
  codes (leading zeros, a header saying "code") stay text;
- a French `format` only where every value passes the project's own check (frformats.py);
- `enum` only on text columns with few distinct values relative to rows, `minimum`/`maximum`
  from the observed values; both as warnings (a later file may legitimately widen them);
- `required` where no cell is empty, `unique` where every value differs and rows are many;
- finally the proposal is checked on the file itself with the real quality engine, and any
  proposed rule that fails there is dropped (and said).

When the header matches a Table Schema the project knows (demo schemas, the schema cache, or
folders given to `add --schemas`), the schema is proposed instead of hand-written columns: it is
the reference producers follow, so a file breaking it blocks, with the schema's report.

Personal data the guard would block (quality/personal_data.py) is flagged, never declared public:
only a human can name the law that makes it public. Title and description are placeholders the
registry refuses until a human writes them (registry.PLACEHOLDER).
"""

from __future__ import annotations

import difflib
import json
import logging
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import pandas as pd
import pyarrow as pa
import yaml

from dinum_pipelines.lib.declare import tableschema
from dinum_pipelines.lib.clean.cleaning import clean_table, convert_column, normalize_text
from dinum_pipelines.lib.conformance import guess_format
from dinum_pipelines.lib.declare.names import fold, snake_case
from dinum_pipelines.lib.clean.parsing import GEOMETRY_COLUMN, ParseError, read_source
from dinum_pipelines.lib.quality import QualityReport, personal_data, validate_dataset
from dinum_pipelines.lib.quality.frformats import REGEX_FORMATS, vectorized_is_valid
from dinum_pipelines.lib.declare.registry import (
    PLACEHOLDER,
    SCHEMA_NAME_PATTERN,
    SCHEMA_VERSION_PATTERN,
    ColumnSpec,
    DatasetSpec,
    SourceSpec,
    parse_dataset_file,
)

DEMO_SCHEMAS = Path(__file__).resolve().parents[2] / "demo" / "schemas"
# Rows csv-detective looks at (it costs per column and format, not per row beyond this).
PROFILE_ROWS = 500
# A column is proposed unique only when it has at least this many rows (two rows that differ say little).
MIN_UNIQUE_ROWS = 10
# An enum: at most this many distinct values, each seen on average at least ENUM_REPEATS times.
MAX_ENUM_VALUES = 12
ENUM_REPEATS = 4
# A known schema is proposed when this share of the file's columns are its fields and its
# required fields are all there.
SCHEMA_MATCH_SHARE = 0.9
MIN_SCHEMA_MATCH = 3

# csv-detective's formats -> the project's column type; formats not listed say nothing we check.
_TYPES = {"int": "integer", "float": "number", "bool": "boolean", "date": "date", "datetime": "datetime"}
_DATETIME_FORMATS = {"datetime_naive", "datetime_aware", "datetime_rfc822"}
# csv-detective's French formats -> the registry's `format` (checked by frformats.py).
_FRENCH_FORMATS = {
    "code_commune": "insee_commune", "code_postal": "code_postal", "code_departement": "departement",
    "code_region": "region", "siren": "siren", "siret": "siret", "email": "email", "tel_fr": "telephone",
}  # fmt: skip
# French identifiers the project has no list for: a pattern, proposed when every value matches.
_PATTERNS = {"code_rna": r"W[0-9A-Z]{9}", "uai": r"[0-9]{7}[A-Z]", "code_fantoir": r"[0-9A-Z]{4}[A-Z]?"}
# Coordinates: the domain of the reference system, not the observed values.
_COORDINATE_BOUNDS = {
    "latitude_wgs": (-90, 90), "latitude_wgs_fr_metropole": (-90, 90),
    "longitude_wgs": (-180, 180), "longitude_wgs_fr_metropole": (-180, 180),
}  # fmt: skip


@dataclass
class KnownSchema:
    name: str
    version: str | None
    path: Path
    document: dict[str, Any]

    @property
    def fields(self) -> list[str]:
        return [f["name"] for f in self.document["fields"]]

    @property
    def required(self) -> list[str]:
        return [f["name"] for f in self.document["fields"] if (f.get("constraints") or {}).get("required")]


@dataclass
class Proposal:
    """What `add` proposes for one file: the YAML mapping, and one line per inference saying why."""

    slug: str
    mapping: dict[str, Any]
    lines: list[str] = field(default_factory=list)
    # Columns the personal-data guard would block: column -> kinds found.
    personal: dict[str, list[str]] = field(default_factory=dict)
    schema: KnownSchema | None = None
    # The pipeline's reader refused the file: its message (the YAML then declares the source only).
    unreadable: str | None = None
    # The proposal run on the file itself: None (not run), else the blocking rules' descriptions.
    dry_run: list[str] | None = None

    def yaml_text(self) -> str:
        header = [
            "# Proposed by `dinum-pipelines add` from the file itself: check every line, then write the",
            f"# title and description (the registry refuses the {PLACEHOLDER!r} placeholders until then).",
        ]
        if self.unreadable:
            header.append(f"# The pipeline's reader refused the file, so no column is declared: {self.unreadable}")
        for column, kinds in self.personal.items():
            header.append(
                f"# PERSONAL DATA in column {column!r} ({', '.join(kinds)}): publication is blocked until the column is "
                "removed at the source, or declared under personal_data with the law that makes it public."
            )
        body = yaml.safe_dump(self.mapping, sort_keys=False, allow_unicode=True, width=110, default_flow_style=False)
        return "\n".join(header) + "\n" + body


# --- Known schemas ----------------------------------------------------------------------------


def known_schemas(folders: Iterable[Path] = ()) -> list[KnownSchema]:
    """The Table Schemas the project knows: the demo's, the schema cache's, and `folders`' *.json
    files that are Table Schemas (a `fields` list); anything else in those folders is ignored."""
    paths = [*sorted(DEMO_SCHEMAS.glob("*.json"))]
    cache = tableschema.schema_cache_dir()
    if cache.is_dir():
        paths += sorted(cache.glob(f"*/*/{tableschema.CACHE_FILE_NAME}"))
    for folder in folders:
        paths += sorted(Path(folder).glob("*.json"))
    schemas, seen = [], set()
    for path in paths:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        fields = document.get("fields") if isinstance(document, dict) else None
        if not isinstance(fields, list) or not all(isinstance(f, dict) and isinstance(f.get("name"), str) for f in fields):
            continue
        name, version = _schema_identity(path, document)
        if (name, version) not in seen:
            seen.add((name, version))
            schemas.append(KnownSchema(name, version, path, document))
    return schemas


def _schema_identity(path: Path, document: dict[str, Any]) -> tuple[str, str | None]:
    """The schema's name and version as the registry writes them (`schema: {name, version}`)."""
    cache = tableschema.schema_cache_dir()
    if path.name == tableschema.CACHE_FILE_NAME and path.parent.parent.parent == cache:
        version = path.parent.name
        return path.parent.parent.name, None if version == "latest" else version
    name = str(document.get("name") or "")
    if not re.match(SCHEMA_NAME_PATTERN, name) or " " in name:
        name = snake_case(path.stem.removesuffix("__schema").removesuffix("_schema")).replace("_", "-")
    version = document.get("version")
    version = str(version) if version is not None and re.match(SCHEMA_VERSION_PATTERN, str(version)) else None
    return name, version


def match_schema(header: list[str], schemas: list[KnownSchema]) -> KnownSchema | None:
    """The known schema whose fields the file's header is made of (case and accents aside), if any:
    at least SCHEMA_MATCH_SHARE of the file's columns are its fields, and every required field is
    there. Among several, the one sharing the most fields with the file, relative to both."""
    columns = {fold(label) for label in header if label}
    best, best_score = None, 0.0
    for schema in schemas:
        fields = {fold(name) for name in schema.fields}
        shared = columns & fields
        if len(shared) < MIN_SCHEMA_MATCH or len(shared) < SCHEMA_MATCH_SHARE * len(columns):
            continue
        if not {fold(name) for name in schema.required} <= columns:
            continue
        score = len(shared) / len(columns | fields)
        if score > best_score:
            best, best_score = schema, score
    return best


def install_schema(schema: KnownSchema) -> None:
    """Put the schema in the schema cache under its name and version, where the registry finds it
    from `schema: {name, version}` alone (a published version is immutable: never overwritten)."""
    target = tableschema.cached_schema_path(schema.name, schema.version)
    if target.resolve() == schema.path.resolve() or target.is_file():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(schema.path, target)


# --- Source -----------------------------------------------------------------------------------


def _record_path(document: Any) -> tuple[str | None, str | None]:
    """Where a JSON document's records are: (record_path, key_column). The largest list of objects
    wins; an object whose members are all lists of objects (DECP's `marches`) is read through `*`,
    its keys in a `type` column."""
    best: tuple[int, str | None, str | None] = (0, None, None)

    def visit(node: Any, path: list[str]) -> None:
        nonlocal best
        dotted = ".".join(path) or None
        if isinstance(node, list) and node and all(isinstance(item, dict) for item in node):
            if len(node) > best[0]:
                best = (len(node), dotted, None)
            return
        if not isinstance(node, dict):
            return
        members = list(node.values())
        if len(members) > 1 and all(isinstance(m, list) and m and all(isinstance(i, dict) for i in m) for m in members):
            count = sum(len(m) for m in members)
            if count > best[0]:
                best = (count, ".".join([*path, "*"]), "type")
            return
        for key, value in node.items():
            if isinstance(key, str) and "." not in key and key != "*":
                visit(value, [*path, key])

    visit(document, [])
    return best[1], best[2]


def source_mapping(path: Path, url: str) -> dict[str, Any]:
    """The YAML `source:` for the file: its format, and where its records are (JSON)."""
    name = unquote(PurePosixPath(urlsplit(url).path).name) or path.name
    fmt = guess_format(name, path)
    if fmt == "json":
        try:
            document = json.loads(path.read_bytes())
        except ValueError:
            document = None
        if isinstance(document, dict) and document.get("type") == "FeatureCollection":
            fmt = "geojson"
        else:
            record_path, key_column = _record_path(document)
            mapping: dict[str, Any] = {"url": url, "format": "json"}
            options = {k: v for k, v in (("record_path", record_path), ("key_column", key_column)) if v}
            if options:
                mapping["json"] = options
            return mapping
    return {"url": url, "format": fmt}


def _with_detected(mapping: dict[str, Any], detected: dict[str, Any], decimal: str) -> dict[str, Any]:
    """`source:` with what the reader detected written down, so later runs read the file the same way."""
    if mapping["format"] == "csv":
        mapping["csv"] = {
            "encoding": detected["encoding"],
            "delimiter": detected["delimiter"],
            "decimal": decimal,
            "header_row": detected["header_row"],
            "header_rows": detected["header_rows"],
        }
    elif mapping["format"] in ("xlsx", "xls", "ods"):
        mapping["spreadsheet"] = {k: detected[k] for k in ("sheet", "header_row", "header_rows") if k in detected}
    return mapping


def _decimal_mark(frame: pd.DataFrame) -> str:
    """The decimal mark of a delimited file: a point when more cells read `12.5` than `12,5` (among
    the first PROFILE_ROWS rows)."""
    cells = pd.Series(frame.head(PROFILE_ROWS).to_numpy().ravel()).dropna().astype(str)
    points = int(cells.str.fullmatch(r"-?\d+\.\d+").sum())
    commas = int(cells.str.fullmatch(r"-?\d+,\d+").sum())
    return "." if points > commas else ","


# --- Columns ----------------------------------------------------------------------------------


def _csv_detective(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """csv-detective's verdict per column header ({format, python_type, score, date_format})."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    # csv-detective calls logging.basicConfig(level=INFO) when imported: the root logger is put back.
    from csv_detective.detection.formats import detect_formats

    root.setLevel(level)
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    sample = frame.head(PROFILE_ROWS).astype(object)
    sample.columns = [str(c) for c in sample.columns]
    analysis, _ = detect_formats(
        table=sample, analysis={"header": list(sample.columns), "total_lines": len(sample)}, file_path="profile"
    )
    return analysis["columns"]


def _unique_names(headers: list[str]) -> list[str]:
    names: list[str] = []
    for header in headers:
        name, suffix = snake_case(header), 2
        while name in names:
            name, suffix = f"{snake_case(header)}_{suffix}", suffix + 1
        names.append(name)
    return names


def _is_code(header: str, values: pd.Series) -> bool:
    """Codes stay text: a leading zero, or a header that says it is a code, number or identifier."""
    words = set(snake_case(header).split("_"))
    return bool(words & {"code", "cod", "numero", "num", "no", "id", "siren", "siret", "insee", "cp"}) or bool(
        values.str.match(r"^0\d").any()
    )


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _propose_column(header: str, name: str, text: pd.Series, detected: dict[str, Any], decimal: str, rows: int) -> tuple[dict[str, Any], list[str]]:
    """One column's YAML mapping and why each part of it was proposed."""
    column: dict[str, Any] = {"name": name}
    if name != header:
        column["source"] = header
    why: list[str] = []
    values = normalize_text(text)
    present = values.dropna()
    fmt = str(detected.get("format", "string"))
    kind = "datetime" if fmt in _DATETIME_FORMATS else _TYPES.get(str(detected.get("python_type")), "string")
    if kind in ("integer", "number") and _is_code(header, present):
        why.append(f"text, not {kind}: a code (its header, or a leading zero)")
        kind = "string"
    if kind != "string":
        candidate = ColumnSpec(name=name, type=kind, date_formats=[detected["date_format"]] if detected.get("date_format") else None)
        typed, issue = convert_column(text, candidate, decimal)
        if issue is not None:
            why.append(f"text: csv-detective says {fmt}, but {issue.count} value(s) do not convert (e.g. {issue.samples[:2]})")
            kind = "string"
        else:
            column["type"] = kind
            if candidate.date_formats:
                column["date_formats"] = candidate.date_formats
            why.append(f"{kind} (csv-detective: {fmt}{', ' + detected['date_format'] if detected.get('date_format') else ''}; every value converts)")
    if kind == "string":
        column["type"] = "string"
        french = _FRENCH_FORMATS.get(fmt)
        if french and len(present):
            arrow = pa.chunked_array([pa.array(present.tolist(), pa.string())])
            if french in REGEX_FORMATS:
                valid = bool(present.str.fullmatch(REGEX_FORMATS[french].strip("^$")).all())
            else:
                valid = bool(vectorized_is_valid(french, arrow).all())
            if valid:
                column["format"] = french
                why.append(f"format {french} (csv-detective: {fmt}; every value passes the official list/check)")
            else:
                why.append(f"no format: csv-detective says {fmt}, but not every value passes {french}")
        elif fmt in _PATTERNS and len(present) and present.str.fullmatch(_PATTERNS[fmt]).all():
            column["pattern"] = f"^{_PATTERNS[fmt]}$"
            why.append(f"pattern of {fmt} (csv-detective; every value matches)")
        elif not why:  # (a code or a failed conversion already said why it is text)
            why.append(f"text (csv-detective: {fmt})" if fmt != "string" else "text")
    if rows and len(present) == rows:
        column["required"] = True
        why.append("required (no empty cell)")
    distinct = int(present.nunique())
    if rows >= MIN_UNIQUE_ROWS and distinct == rows:
        column["unique"] = True
        why.append(f"unique ({rows} distinct values)")
    severities = {}
    if column["type"] == "string" and "format" not in column and "pattern" not in column and 1 < distinct <= MAX_ENUM_VALUES and distinct * ENUM_REPEATS <= len(present):
        column["enum"] = sorted(present.unique().tolist())
        severities["enum"] = "warning"
        why.append(f"enum of {distinct} values over {len(present)} cells (a warning: a new value is reported, not blocked)")
    if fmt in _COORDINATE_BOUNDS and column["type"] == "number":
        column["minimum"], column["maximum"] = _COORDINATE_BOUNDS[fmt]
        why.append(f"bounds of {fmt.split('_')[0]} in WGS 84")
    elif column["type"] in ("integer", "number") and len(present):
        numbers = typed.dropna()
        column["minimum"], column["maximum"] = _number(numbers.min()), _number(numbers.max())
        severities["range"] = "warning"
        why.append(f"range {column['minimum']}..{column['maximum']} observed (a warning)")
    if severities:
        column["severities"] = severities
    return column, why


def _personal_kinds(text: pd.Series) -> list[str]:
    """The kinds of personal data the guard finds in the column (one scan; one per kind if any)."""
    values = normalize_text(text).dropna()
    arrow = pa.chunked_array([pa.array(values.to_numpy(), pa.string())])
    if not len(values) or not personal_data.vectorized_is_personal(arrow, list(personal_data.VALUE_KINDS)).any():
        return []
    return [kind for kind in personal_data.VALUE_KINDS if personal_data.vectorized_is_personal(arrow, [kind]).any()]


# --- The proposal -----------------------------------------------------------------------------


def _placeholder_mapping(slug: str, org: str | None, org_name: str | None, source: dict[str, Any]) -> dict[str, Any]:
    organization = {"slug": org, "name": org_name or org.replace("-", " ").capitalize()} if org else {
        "slug": f"{PLACEHOLDER} : slug de l'organisation", "name": f"{PLACEHOLDER} : nom de l'organisation"}
    return {
        "slug": slug,
        "title": f"{PLACEHOLDER} : titre du jeu de données",
        "description": f"{PLACEHOLDER} : ce que contient le jeu de données, qui le produit, d'où viennent les données, "
        "à quelle fréquence il est mis à jour (au moins 100 caractères, critère de qualité de data.gouv.fr).",
        "organization": organization,
        "source": source,
        "license": "lov2",
        "frequency": "unknown",
    }


def placeholder_declaration_text(slug: str) -> str:
    """A declaration with every field a human must write still holding the placeholder (`dg scaffold defs`)."""
    source = {"url": f"{PLACEHOLDER} : URL du fichier (https://...)", "format": "csv"}
    header = (
        "# Written by `dg scaffold defs`: write every field holding the placeholder (the registry refuses it), and\n"
        "# the columns and their rules; `dinum-pipelines add URL` writes this file with the columns profiled from the data.\n"
    )
    mapping = _placeholder_mapping(slug, None, None, source)
    return header + yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True, width=110, default_flow_style=False)


def slug_for(url: str) -> str:
    """`schema-arbre__exemple-valide.csv` -> `schema_arbre_exemple_valide` (the registry's slug rule)."""
    stem = PurePosixPath(unquote(urlsplit(url).path)).stem or "jeu_de_donnees"
    slug = snake_case(stem)[:63].rstrip("_")
    return slug if len(slug) >= 2 else f"{slug}_donnees"


def propose(path: Path, url: str, *, slug: str, org: str | None = None, org_name: str | None = None,
            schemas: list[KnownSchema] | None = None) -> Proposal:
    """Profile the file at `path` (served at `url`) and propose its dataset YAML."""
    source = source_mapping(path, url)
    mapping = _placeholder_mapping(slug, org, org_name, source)
    proposal = Proposal(slug, mapping)
    proposal.lines.append(f"source: {source['format']} (from the file's name and first bytes)")
    try:
        frame, detected = read_source(path, SourceSpec.model_validate(_valid_stub(mapping)["source"]))
    except ParseError as exc:
        proposal.unreadable = str(exc)
        proposal.lines.append(f"the pipeline's reader refused the file: {exc}")
        return proposal
    headers = [str(label) for label in frame.columns]
    decimal = _decimal_mark(frame) if source["format"] == "csv" else "."
    _with_detected(source, detected, decimal)
    if source["format"] == "csv":
        proposal.lines.append(
            f"read as the pipeline reads it: encoding {detected['encoding']}, delimiter {detected['delimiter']!r}, "
            f"header at line {detected['header_row'] + 1} ({detected['header_rows']} row(s)), decimal {decimal!r}, {len(frame)} rows"
        )
    else:
        proposal.lines.append(f"read as the pipeline reads it: {len(frame)} rows, {len(headers)} columns, {detected}")
    for label in headers:
        kinds = _personal_kinds(frame[label])
        if kinds:
            proposal.personal[snake_case(label)] = kinds
    names = _unique_names(headers)
    for name, birth in personal_data.name_birth_date_pairs(names):
        proposal.personal.setdefault(name, []).append(f"{personal_data.NAME_BIRTH_DATE} (with {birth})")
    schema = match_schema(headers, schemas if schemas is not None else known_schemas())
    if schema is not None:
        install_schema(schema)
        proposal.schema = schema
        mapping["schema"] = {"name": schema.name, **({"version": schema.version} if schema.version else {})}
        if source["format"] == "csv":
            # The schema says how its numbers are written (decimalChar); the registry reads it from there.
            del source["csv"]["decimal"]
        shared = len({fold(h) for h in headers} & {fold(f) for f in schema.fields})
        proposal.lines.append(
            f"schema {schema.name} {schema.version or '(latest)'} ({schema.path.name}): {shared} of the file's "
            f"{len(headers)} columns are its fields and its required fields are all there; its columns and rules are used"
        )
        report = _soften_unevaluable_rules(proposal, frame, decimal)
    else:
        profile = _csv_detective(frame)
        columns = []
        for header, name in zip(headers, names):
            if source["format"] == "geojson" and header == GEOMETRY_COLUMN:
                continue  # the reader's own column, published as is
            column, why = _propose_column(header, name, frame[header], profile.get(header, {}), decimal, len(frame))
            columns.append(column)
            proposal.lines.append(f"  {name}: " + "; ".join(why))
        mapping["columns"] = columns
        report = _drop_failing_rules(proposal, frame, decimal)
    for column, kinds in proposal.personal.items():
        proposal.lines.append(f"PERSONAL DATA: {column}: {', '.join(kinds)}: the guard blocks publication (see the YAML's comment)")
    report = report or _check(mapping, frame, decimal)
    proposal.dry_run = [outcome.describe() for outcome in report.blocking_failures]
    return proposal


def _valid_stub(mapping: dict[str, Any]) -> dict[str, Any]:
    """The mapping with publishable placeholders, to run the registry's model on what was inferred."""
    source = mapping["source"]
    if PLACEHOLDER in source["url"]:  # a local file with no URL yet
        source = {**source, "url": "https://url.a-completer.invalid/fichier"}
    return {**mapping, "title": "Profil", "description": "p" * 101, "organization": {"slug": "o", "name": "o"}, "source": source}


def _spec(mapping: dict[str, Any]) -> DatasetSpec:
    """The proposal as the registry loads it (a schema's columns merged in), placeholders aside."""
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / f"{mapping['slug']}.yaml"
        target.write_text(yaml.safe_dump(_valid_stub(mapping), sort_keys=False, allow_unicode=True), encoding="utf-8")
        return parse_dataset_file(target)


def _check(mapping: dict[str, Any], frame: pd.DataFrame, decimal: str) -> QualityReport:
    spec = _spec(mapping)
    decimal = spec.source.csv.decimal if spec.source.format == "csv" else decimal
    cleaned, report = clean_table(frame, spec, decimal)
    return validate_dataset(cleaned, spec, report)


def _drop_failing_rules(proposal: Proposal, frame: pd.DataFrame, decimal: str) -> QualityReport | None:
    """Run the proposal on the file it came from; a proposed rule that fails there is dropped.
    Returns the report of the final proposal (None if it was not checked after the last change)."""
    columns = {c["name"]: c for c in proposal.mapping["columns"]}
    keys = {"required": ["required"], "unique": ["unique"], "pattern": ["pattern"], "enum": ["enum"],
            "range": ["minimum", "maximum"], "format": ["format"]}  # fmt: skip
    for _attempt in range(3):
        report = _check(proposal.mapping, frame, decimal)
        failing = [o for o in report.outcomes if not o.success and o.family != "personal_data" and o.column in columns]
        if not failing:
            return report
        for outcome in failing:
            rule = outcome.source.split(":")[0]
            column = columns[outcome.column]
            if rule == "type":
                column["type"] = "string"
                for key in ("date_formats", "minimum", "maximum"):
                    column.pop(key, None)
            for key in keys.get(rule, []):
                column.pop(key, None)
            proposal.lines.append(f"  {outcome.column}: {rule} dropped: it fails on this very file ({outcome.describe()})")
    return None


def _soften_unevaluable_rules(proposal: Proposal, frame: pd.DataFrame, decimal: str) -> QualityReport | None:
    """A schema rule the quality engine cannot evaluate (a pattern Python's `re` cannot compile, a
    uniqueness DuckDB cannot compare) would block every file, valid or not: it is proposed as a
    warning, and said.
    Returns the report of the proposal when nothing was changed."""
    report = _check(proposal.mapping, frame, decimal)
    overrides: dict[str, dict[str, str]] = {}
    for outcome in report.outcomes:
        if not outcome.success and outcome.column and "could not be evaluated" in outcome.detail:
            rule = outcome.source.split(":")[0]
            overrides.setdefault(outcome.column, {})[rule] = "warning"
            proposal.lines.append(f"  {outcome.column}: the schema's {rule} rule cannot be evaluated here ({outcome.detail}): a warning")
    if not overrides:
        return report
    proposal.mapping["columns"] = [{"name": name, "severities": rules} for name, rules in overrides.items()]
    return None


# --- Re-profiling -----------------------------------------------------------------------------

# What a human writes and a new profile never replaces.
_KEPT = ("title", "description", "organization", "license", "frequency", "tags", "temporal_coverage", "spatial",
         "owners", "quality", "personal_data", "primary_key", "rename", "extra_columns", "on_duplicate_key")  # fmt: skip


def updated_mapping(existing: dict[str, Any], proposal: Proposal) -> dict[str, Any]:
    """The existing YAML with the new profile's source options, schema and columns; what a human
    wrote (title, description, organization, descriptions of columns...) is kept."""
    merged = dict(proposal.mapping)
    for key in _KEPT:
        if key in existing:
            merged[key] = existing[key]
    merged["source"] = {**proposal.mapping["source"], "url": existing.get("source", {}).get("url", proposal.mapping["source"]["url"])}
    described = {c.get("source") or c.get("name"): c for c in existing.get("columns") or [] if isinstance(c, dict)}
    for column in merged.get("columns") or []:
        old = described.get(column.get("source") or column["name"])
        if old is not None:
            column["name"] = old["name"]
            if old.get("description"):
                column["description"] = old["description"]
    return merged


def unified_diff(old_text: str, new_text: str, name: str) -> str:
    return "".join(difflib.unified_diff(old_text.splitlines(True), new_text.splitlines(True), f"{name} (current)", f"{name} (proposed)"))
