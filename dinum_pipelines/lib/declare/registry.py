"""The dataset registry: one YAML file per dataset, validated when the definitions load.

A data engineer adds a dataset by writing one small file: `dinum_pipelines/defs/datasets/<slug>/defs.yaml`,
a Dagster component file (`type: dinum_pipelines.components.Dataset`, the declaration under
`attributes:`, see components/dataset.py). A folder of plain `<slug>.yaml` declarations (the
declaration alone, as tests and `DINUM_SOURCES_DIR` folders write them) is read the same way. Everything
downstream (which URL to pull, how to parse it, which columns and rules to enforce, which
metadata to publish) is read from that file, so a mistake in it must be caught before any run
starts, with a message that names the file and the field.
"""

from __future__ import annotations

import codecs
import os
import re
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, RootModel, ValidationError, field_validator, model_validator

from dinum_pipelines.lib.declare.vocabularies import FREQUENCIES, LICENSES, SPATIAL_GRANULARITIES, normalize_frequency

DEFAULT_SOURCES_DIR = Path(__file__).resolve().parents[2] / "defs" / "datasets"
# The component type a dataset's defs.yaml names (dinum_pipelines/components/dataset.py).
DATASET_COMPONENT_TYPE = "dinum_pipelines.components.Dataset"
COMPONENT_FILE_NAME = "defs.yaml"
# The JSON schema of a defs.yaml, for editors (written by components/schema.py).
COMPONENT_SCHEMA_FILE = Path(__file__).resolve().parents[2] / "components" / "dataset.schema.json"

# udata requires descriptions longer than this for its `dataset_description_quality` criterion.
MIN_DESCRIPTION_LENGTH = 100

SLUG_PATTERN = r"^[a-z][a-z0-9_]{1,62}$"
COLUMN_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
# "etalab/schema-stationnement": path segments of the schema cache, so no "." or ".." segment.
SCHEMA_NAME_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$"
SCHEMA_VERSION_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.+-]*$"
# What `dinum-pipelines add` writes where only a human knows the answer (title, description...):
# a file still holding it is refused at load, naming the field.
PLACEHOLDER = "À COMPLÉTER"
PLACEHOLDER_FIELDS = (("title",), ("description",), ("organization", "slug"), ("organization", "name"), ("source", "url"))
_ENV_REFERENCE = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?::-(?P<default>[^}]*))?\}")


class RegistryError(ValueError):
    """A registry file is missing, unreadable or invalid. The message names the file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _HeaderOptions(_Strict):
    """Where a table's header is, for the formats that have rows (delimited text, spreadsheets).

    `header_row` is the 0-based line (row of a sheet) where the header starts, below any title
    rows; None = detect. `header_rows` is how many rows the header spans from there: 2 for a row
    of labels over a row of codes, as INSEE publishes (`Code géographique;Libellé géographique`
    over `CODGEO;LIBGEO`); None = detect such a row of codes (see `parsing.detect_header_rows`).
    Only one of the header rows names the columns, `header_names`: the `first` (the labels) or
    the `last` (the codes); a column with no name in that row takes the nearest other header
    row's (a label spanning several codes). The other header rows are skipped, never data.
    """

    header_row: int | None = Field(default=None, ge=0)
    header_rows: int | None = Field(default=None, ge=1)
    header_names: Literal["first", "last"] = "first"


class CsvOptions(_HeaderOptions):
    """How to read a delimited text file. `None` means: detect it from the bytes.

    A UTF-8 BOM is skipped whatever the encoding: Excel writes one before Windows-1252 text too.
    """

    encoding: str | None = None
    delimiter: str | None = None
    decimal: Literal[",", "."] = ","

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str | None) -> str | None:
        if encoding is not None:
            try:
                codecs.lookup(encoding)
            except LookupError:
                raise ValueError(f"unknown encoding {encoding!r} (for example utf-8, cp1252, latin-1)") from None
        return encoding


class JsonOptions(_Strict):
    # Dotted path to the records inside the document ("data.records"); None = the top level.
    # A `*` segment stands for every member of an object (or item of a list): "marches.*" reads
    # DECP's `{"marches": {"marche": [...], "contrat-concession": [...]}}`, and "definitions.*"
    # reads an object of objects, one record per member.
    record_path: str | None = None
    # Column receiving the object key matched by the record path's last `*` ("marche", ...).
    key_column: str | None = None

    @model_validator(mode="after")
    def _key_needs_wildcard(self) -> JsonOptions:
        if self.key_column is not None and "*" not in (self.record_path or "").split("."):
            raise ValueError("key_column needs a `*` segment in record_path to take the keys from")
        return self


class SpreadsheetOptions(_HeaderOptions):
    """Which sheet of an xlsx/xls/ods workbook holds the table, and where its header is."""

    # Sheet name, or 0-based position in the workbook.
    sheet: str | Annotated[int, Field(ge=0)] = 0


class XmlOptions(_Strict):
    # Which elements are the records: a tag ("marche": every such element below the root), or a
    # path from the root element ("marches/marche", ElementTree path syntax after the root's tag).
    # None = the root element's children.
    record_path: Annotated[str, Field(min_length=1)] | None = None


SourceFormat = Literal["csv", "json", "xlsx", "xls", "ods", "geojson", "xml"]


class SourceSpec(_Strict):
    url: str
    format: SourceFormat
    csv: CsvOptions = CsvOptions()
    json_options: JsonOptions = Field(default=JsonOptions(), alias="json")
    spreadsheet: SpreadsheetOptions = SpreadsheetOptions()
    xml: XmlOptions = XmlOptions()
    timeout_seconds: float = Field(default=60, gt=0)
    # No limit by default: the pipeline's memory does not grow with the file, so a source of any
    # size goes through (issue 13). A dataset may set one, against a server that never ends a body.
    max_bytes: int | None = Field(default=None, gt=0)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not re.match(r"^https?://[^/\s]+", expand_env(url)):
            raise ValueError(f"must be an http(s) URL, got {url!r}")
        return url

    @property
    def resolved_url(self) -> str:
        """The URL with `${VAR:-default}` references replaced from the environment at call time."""
        return expand_env(self.url)


ColumnType = Literal["string", "integer", "number", "boolean", "date", "datetime"]
Severity = Literal["critical", "warning"]
# A column's rules, as named in `severities:` overrides.
ColumnRule = Literal["type", "required", "unique", "pattern", "enum", "range", "length", "format"]
FormatName = Literal[
    "insee_commune", "code_postal", "departement", "region", "siren", "siret", "email", "telephone", "coordonnees_france"
]
VERSIONED_FORMATS = frozenset({"insee_commune", "departement", "region"})
PersonalDataKind = Literal["email", "phone", "nir", "iban", "name_birth_date"]


class ColumnSpec(_Strict):
    """One column of the published table and the rules its values must follow."""

    name: Annotated[str, Field(pattern=COLUMN_NAME_PATTERN)]
    # Header of the column in the administration's file, when it differs from `name`.
    source: str | None = None
    type: ColumnType = "string"
    description: str = ""
    required: bool = False
    unique: bool = False
    pattern: str | None = None
    enum: list[str | int | float] | None = None
    # Bounds: numbers, or dates for date/datetime columns (Table Schema allows both).
    minimum: float | datetime | date | None = None
    maximum: float | datetime | date | None = None
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=0)
    # strptime formats tried in order for date/datetime columns; None = the French defaults.
    date_formats: list[str] | None = None
    # For codes a spreadsheet stored as numbers (postal code 1000 for 01000): digit-only values
    # shorter than this get their leading zeros back. String columns only.
    zero_pad: int | None = Field(default=None, ge=2, le=20)
    # A French format checked against official lists (see quality/frformats.py): insee_commune,
    # code_postal, departement, region, siren, siret, email, telephone, or coordonnees_france
    # (on the longitude column, with `latitude_column`).
    format: FormatName | None = None
    # The Code officiel géographique year of insee_commune/departement/region lists (default: latest).
    year: int | None = Field(default=None, ge=2015, le=2100)
    latitude_column: str | None = None
    # critical failures block publication; warnings are reported but do not block.
    severity: Severity = "critical"
    # Per-rule overrides of `severity` for this column: {pattern: warning, format: critical, ...}.
    severities: dict[ColumnRule, Severity] = {}

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"is not a valid regular expression: {exc}") from None
        return pattern

    @model_validator(mode="after")
    def _zero_pad_on_text(self) -> ColumnSpec:
        if self.zero_pad is not None and self.type != "string":
            raise ValueError(f"zero_pad: only applies to string columns, not {self.type}")
        return self

    @model_validator(mode="after")
    def _format_options(self) -> ColumnSpec:
        if self.format is None:
            if self.year is not None or self.latitude_column is not None:
                raise ValueError("year and latitude_column only apply with a `format`")
            return self
        if (self.format == "coordonnees_france") != (self.latitude_column is not None):
            raise ValueError("latitude_column: needed with format coordonnees_france (on the longitude column), and only then")
        if self.format == "coordonnees_france" and self.type != "number":
            raise ValueError(f"format: coordonnees_france applies to number columns, not {self.type}")
        if self.format != "coordonnees_france" and self.type != "string":
            raise ValueError(f"format: {self.format} applies to string columns, not {self.type}")
        if self.year is not None:
            if self.format not in VERSIONED_FORMATS:
                raise ValueError(f"year: only {sorted(VERSIONED_FORMATS)} have yearly lists")
            from dinum_pipelines.lib.quality.frformats import cog_years

            years = cog_years(self.format)
            if str(self.year) not in years:
                raise ValueError(f"year: the {self.format} list exists for {years}, not {self.year}")
        return self

    def severity_of(self, rule: str) -> str:
        """The severity of one of this column's rules (its override, else the column's)."""
        return self.severities.get(rule, self.severity)

    @property
    def source_name(self) -> str:
        return self.source or self.name


class SchemaReference(_Strict):
    """The published Table Schema a dataset follows (schema.data.gouv.fr), as `name` + `version`.

    The schema is read from `path` when given (a file, relative to the registry file, or an
    http(s) URL fetched once into the schema cache), otherwise from the schema cache folder;
    its fields become the dataset's columns at load (see `tableschema.py`).
    """

    name: Annotated[str, Field(pattern=SCHEMA_NAME_PATTERN)]
    version: Annotated[str, Field(pattern=SCHEMA_VERSION_PATTERN)] | None = None
    path: str | None = None
    # The schema document as read when the registry file was loaded, and where from: the
    # conformance report judges the raw file against it (the columns only carry what cleaning needs).
    _document: dict[str, Any] | None = PrivateAttr(default=None)
    _origin: str = PrivateAttr(default="")

    @property
    def document(self) -> dict[str, Any] | None:
        return self._document

    @property
    def origin(self) -> str:
        return self._origin


class OrganizationSpec(_Strict):
    # The organization's slug (or id) in the catalog; the publisher's API key must belong to a member.
    slug: str
    name: str


class TemporalCoverage(_Strict):
    start: date | None = None
    end: date | None = None
    # A date column from which start and end are computed at each publication.
    column: str | None = None


class SpatialCoverage(_Strict):
    zones: list[str] = []
    granularity: str | None = None

    @field_validator("granularity")
    @classmethod
    def _known_granularity(cls, value: str | None) -> str | None:
        if value is not None and value not in SPATIAL_GRANULARITIES:
            raise ValueError(f"unknown granularity {value!r}; expected one of {sorted(SPATIAL_GRANULARITIES)}")
        return value


class PublicPersonalData(_Strict):
    """A column that holds personal data a law makes public, and that law.

    Without such a declaration, a column where personal data is found blocks publication.
    """

    column: str
    # Which kinds of personal data the column may hold (default: all of them).
    kinds: list[PersonalDataKind] = ["email", "phone", "nir", "iban", "name_birth_date"]
    # The text that makes the data public, e.g. "Code électoral, art. R. 113-..." (at least 10 characters).
    legal_basis: Annotated[str, Field(min_length=10)]


class CoherenceRules(_Strict):
    """How much a new version may differ from the last published one before it is reported."""

    # Rows lost since the last published version, in percent of its rows.
    max_row_drop_percent: float = Field(default=20.0, ge=0, le=100)
    # Rise of a column's share of nulls, in percentage points.
    max_null_rate_increase: float = Field(default=10.0, ge=0, le=100)
    row_drop: Severity = "critical"
    removed_columns: Severity = "critical"
    added_columns: Severity = "warning"
    retyped_columns: Severity = "warning"
    null_rate: Severity = "warning"


class QualitySettings(_Strict):
    """Table-level quality settings of a dataset (column rules live on the columns)."""

    # Severity of the table's own rules: at least one row, unique primary key.
    row_count: Severity = "critical"
    primary_key: Severity = "critical"
    # Severity of personal data found in a column not declared public.
    personal_data: Severity = "critical"
    coherence: CoherenceRules = CoherenceRules()


class DatasetSpec(_Strict):
    slug: Annotated[str, Field(pattern=SLUG_PATTERN)]
    title: Annotated[str, Field(min_length=3, max_length=350)]
    description: Annotated[str, Field(min_length=MIN_DESCRIPTION_LENGTH + 1)]
    organization: OrganizationSpec
    source: SourceSpec
    license: str
    frequency: str
    tags: list[str] = []
    temporal_coverage: TemporalCoverage = TemporalCoverage()
    spatial: SpatialCoverage = SpatialCoverage()
    # The Table Schema the columns were derived from, if any (kept for the catalog's `schema` field).
    table_schema: SchemaReference | None = Field(default=None, alias="schema")
    columns: list[ColumnSpec] = []
    primary_key: list[str] = []
    # What cleaning does with rows sharing a primary key (see cleaning.drop_duplicate_keys).
    on_duplicate_key: Literal["drop_identical", "keep_first", "keep_last", "keep_all"] = "drop_identical"
    # Columns found in the file but not declared: `keep` publishes them as text (a warning in the
    # quality check), `drop` leaves them out (a warning), `block` stops publication until declared.
    extra_columns: Literal["keep", "drop", "block"] = "keep"
    # Headers of the file read as declared columns: {source header: column name or declared header},
    # for producers still writing an older vocabulary of their schema.
    rename: dict[str, str] = {}
    # Owners shown in Dagster ("team:name" or an email address).
    owners: list[str] = []
    quality: QualitySettings = QualitySettings()
    # Columns holding personal data published under a legal basis (see PublicPersonalData).
    personal_data: list[PublicPersonalData] = []

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("license")
    @classmethod
    def _known_license(cls, value: str) -> str:
        if value not in LICENSES:
            raise ValueError(f"unknown licence id {value!r}; expected one of {sorted(LICENSES)}")
        return value

    @field_validator("frequency")
    @classmethod
    def _known_frequency(cls, value: str) -> str:
        value = normalize_frequency(value)
        if value not in FREQUENCIES:
            raise ValueError(f"unknown frequency id {value!r}; expected one of {sorted(FREQUENCIES)}")
        return value

    @field_validator("tags")
    @classmethod
    def _tag_length(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not 3 <= len(tag) <= 96:
                raise ValueError(f"tag {tag!r} must be 3 to 96 characters long (udata's rule)")
        return tags

    @model_validator(mode="after")
    def _columns_consistent(self) -> DatasetSpec:
        names = [c.name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"columns: duplicate column names {duplicates}")
        for key in self.primary_key:
            if key not in names:
                raise ValueError(f"primary_key: {key!r} is not a declared column")
        headers = {*names, *(c.source_name for c in self.columns)}
        for old, new in self.rename.items():
            if new not in headers:
                raise ValueError(f"rename: {old!r} -> {new!r}: {new!r} is not a declared column or header")
        for index, public in enumerate(self.personal_data):
            if public.column not in names:
                raise ValueError(f"personal_data[{index}].column: {public.column!r} is not a declared column")
        for column_spec in self.columns:
            if column_spec.latitude_column is not None and column_spec.latitude_column not in names:
                raise ValueError(
                    f"columns: {column_spec.name}.latitude_column {column_spec.latitude_column!r} is not a declared column"
                )
        column = self.temporal_coverage.column
        if column is not None:
            declared = {c.name: c.type for c in self.columns}
            if declared.get(column) not in ("date", "datetime"):
                raise ValueError(f"temporal_coverage.column: {column!r} must be a declared date or datetime column")
        return self

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


class DatasetDeclaration(RootModel[dict[str, Any]]):
    """A dataset's declaration as written: the `attributes` of its defs.yaml.

    Its JSON schema is DatasetSpec's (what `dg check yaml` and editors check against). It takes
    the mapping as it is, because the declaration is only whole once its Table Schema's columns
    are merged in (relative to the file) and its slug compared with its folder: `parse_declaration`
    does that and validates with DatasetSpec, so the rules live in one model.
    """

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        # Alone (the component's schema) or nested (dg's schema of a whole defs.yaml): DatasetSpec's.
        return handler(DatasetSpec.__pydantic_core_schema__)


def expand_env(text: str) -> str:
    """Replace `${VAR}` and `${VAR:-default}` with the environment's values."""

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        value = os.environ.get(name)
        if value is None:
            if default is None:
                raise RegistryError(f"environment variable {name} is not set and has no default")
            return default
        return value

    return _ENV_REFERENCE.sub(substitute, text)


def _format_location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]" if parts else f"[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def _problems(exc: ValidationError, prefix: tuple[Any, ...] = (), origins: dict[int, str] | None = None) -> str:
    """Pydantic's errors as `field 'a.b[0]': why`, saying which columns came from a Table Schema."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = (*prefix, *err["loc"])
        text = f"field '{_format_location(loc)}': {err['msg']}"
        if origins and len(loc) > 1 and loc[0] == "columns" and loc[1] in origins:
            text += f" ({origins[loc[1]]})"
        problems.append(text)
    return "; ".join(problems)


def _apply_table_schema(raw: dict[str, Any], path: Path) -> tuple[dict[str, Any], dict[int, str], Any]:
    """`raw` with the columns (and primary key, decimal mark) of its Table Schema merged in.

    Returns the merged mapping, by column index where each schema-derived column came from, and
    the schema read (`tableschema.TableSchema`).
    """
    # Imported here: tableschema names columns with cleaning's rule, and cleaning imports this module.
    from dinum_pipelines.lib.declare import tableschema

    try:
        reference = SchemaReference.model_validate(raw["schema"])
    except ValidationError as exc:
        raise RegistryError(f"{path}: {_problems(exc, ('schema',))}") from None
    try:
        location = expand_env(reference.path) if reference.path is not None else None
        schema = tableschema.load_table_schema(reference.name, reference.version, location, path.parent)
        derived = tableschema.derive_columns(schema)
    except tableschema.TableSchemaError as exc:
        field = exc.registry_field or ("schema.path" if reference.path is not None else "schema.name")
        raise RegistryError(f"{path}: field '{field}': {exc}") from None
    except RegistryError as exc:  # an unset environment variable in schema.path
        raise RegistryError(f"{path}: field 'schema.path': {exc}") from None
    declared = raw.get("columns") or []
    if not isinstance(declared, list):
        return raw, {}, schema  # let the model report the malformed field
    merged = tableschema.merge_columns(derived.columns, declared)
    # merge_columns keeps the schema's columns first, in order: index i is schema field i.
    origins = {
        index: f"from Table Schema field {name!r} of {schema.origin}" for index, name in enumerate(derived.field_names)
    }
    result = {**raw, "columns": merged}
    if "primary_key" not in raw:
        result["primary_key"] = tableschema.primary_key_names(derived.primary_key, merged)
    source = raw.get("source")
    if isinstance(source, dict) and source.get("format") == "csv":
        csv_options = source.get("csv") or {}
        if isinstance(csv_options, dict) and "decimal" not in csv_options:
            # The schema says how its numbers are written (Table Schema's decimalChar, "." by
            # default); the registry's French default "," would turn 1.081183 into 1081183.
            result["source"] = {**source, "csv": {**csv_options, "decimal": derived.decimal}}
    return result, origins, schema


def read_declaration(path: Path) -> dict[str, Any]:
    """The declaration a registry file holds: a `defs.yaml`'s `attributes`, or a plain file's mapping."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RegistryError(f"{path}: cannot read YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise RegistryError(f"{path}: expected a mapping of fields at the top level, got {type(raw).__name__}")
    if path.name != COMPONENT_FILE_NAME:
        return raw
    if raw.get("type") != DATASET_COMPONENT_TYPE:
        raise RegistryError(f"{path}: field 'type': expected {DATASET_COMPONENT_TYPE!r}, got {raw.get('type')!r}")
    attributes = raw.get("attributes")
    if not isinstance(attributes, dict):
        raise RegistryError(f"{path}: field 'attributes': expected the dataset's fields, got {type(attributes).__name__}")
    return attributes


def component_file_text(declaration: str, folder: Path) -> str:
    """A declaration's YAML text as the defs.yaml of `folder`: a line naming its JSON schema for
    editors, its leading comments, then `type:` and the declaration indented under `attributes:`
    (what `dinum-pipelines add` and `dg scaffold defs` write)."""
    lines = declaration.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() and not line.startswith("#")), len(lines))
    body = [f"  {line}" if line.strip() else "" for line in lines[start:]]
    schema = Path(os.path.relpath(COMPONENT_SCHEMA_FILE, folder.resolve())).as_posix()
    header = [f"# yaml-language-server: $schema={schema}", *lines[:start]]
    return "\n".join([*header, f"type: {DATASET_COMPONENT_TYPE}", "attributes:", *body]) + "\n"


def dataset_slug_of(path: Path) -> str:
    """The slug a registry file must declare: its folder's name for a defs.yaml, else its stem."""
    return path.parent.name if path.name == COMPONENT_FILE_NAME else path.stem


def parse_dataset_file(path: Path) -> DatasetSpec:
    """Read and validate one registry file; every problem is reported with the file and field."""
    return parse_declaration(read_declaration(path), path)


def parse_declaration(raw: dict[str, Any], path: Path) -> DatasetSpec:
    """Validate one declaration read from `path` (schema paths are relative to it; the slug must match it)."""
    for where in PLACEHOLDER_FIELDS:
        value: Any = raw
        for key in where:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and PLACEHOLDER in value:
            raise RegistryError(f"{path}: field '{'.'.join(where)}': still the placeholder {PLACEHOLDER!r} written by `dinum-pipelines add`; write it")
    origins: dict[int, str] = {}
    schema = None
    if raw.get("schema") is not None:
        raw, origins, schema = _apply_table_schema(raw, path)
    try:
        spec = DatasetSpec.model_validate(raw)
    except ValidationError as exc:
        raise RegistryError(f"{path}: {_problems(exc, origins=origins)}") from None
    expected = dataset_slug_of(path)
    if spec.slug != expected:
        where = "folder" if path.name == COMPONENT_FILE_NAME else "file"
        raise RegistryError(f"{path}: field 'slug': {spec.slug!r} must match the {where} name {expected!r}")
    if schema is not None and spec.table_schema is not None:
        spec.table_schema._document = schema.document
        spec.table_schema._origin = schema.origin
    return spec


def registry_files(directory: Path) -> list[Path]:
    """The registry files of a folder: `<slug>/defs.yaml` component files and plain `<slug>.yaml` files."""
    return sorted([*directory.glob(f"*/{COMPONENT_FILE_NAME}"), *directory.glob("*.yaml")], key=dataset_slug_of)


def load_registry(sources_dir: Path | str | None = None) -> dict[str, DatasetSpec]:
    """All datasets declared in `sources_dir` (default: the package's `defs/datasets/`), by slug."""
    directory = Path(sources_dir) if sources_dir is not None else DEFAULT_SOURCES_DIR
    if not directory.is_dir():
        raise RegistryError(f"{directory}: dataset registry folder not found")
    datasets: dict[str, DatasetSpec] = {}
    for path in registry_files(directory):
        spec = parse_dataset_file(path)
        if spec.slug in datasets:
            raise RegistryError(f"{path}: field 'slug': {spec.slug!r} is declared twice in {directory}")
        datasets[spec.slug] = spec
    if not datasets:
        raise RegistryError(f"{directory}: no dataset files (*/defs.yaml or *.yaml) found")
    return datasets
