"""Conformance: judging a producer's file against its Table Schema, as Validata does, and better.

The producer's view, kept apart from the quality check of what we publish (see DESIGN.md: "two
verdicts"). The report is computed on the raw file as downloaded and lists every fault with the
code frictionless 5 gives it, the row, the field, the value and a French message; nothing stops
at the first fault. Where the data path goes:

    source.py      the raw file -> header labels + batches of text cells with row numbers
    header.py      labels matched to the schema's fields by name (case and accents forgiven, reported)
    cells.py       each column's cells judged for type and constraints (frictionless' rules, vectorised)
    custom_checks  Validata's custom checks (SIRET, SIREN, phone, GPS, cohesive columns...)
    validator.py   batches in, faults out; uniqueness and keys across batches
    report.py      the report as JSON and as French text
    schema.py      a Table Schema read leniently (old schemas get warnings, not refusals)
    package.py     Data Packages: several resources and their foreign keys
"""

from dinum_pipelines.lib.conformance.faults import Fault
from dinum_pipelines.lib.conformance.report import ConformanceReport
from dinum_pipelines.lib.conformance.schema import Schema, SchemaError, parse_schema, read_schema_file
from dinum_pipelines.lib.conformance.source import RawTable, SourceError, guess_format, open_source
from dinum_pipelines.lib.conformance.validator import validate_file, validate_table

__all__ = [
    "ConformanceReport",
    "Fault",
    "RawTable",
    "Schema",
    "SchemaError",
    "SourceError",
    "guess_format",
    "open_source",
    "parse_schema",
    "read_schema_file",
    "validate_file",
    "validate_table",
]
