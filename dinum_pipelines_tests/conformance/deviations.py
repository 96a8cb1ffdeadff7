"""Where our conformance report deliberately differs from frictionless 5 (`schema_sync=True`), and why.

This is the one place the differences are listed. `frictionless_view` turns our report into what
frictionless reports for the same file, one documented rule at a time; the oracle test then
requires equal counts per (code, field). A difference that no rule here explains fails the test.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from dinum_pipelines.lib.conformance.faults import OWN_CODES
from dinum_pipelines.lib.conformance.report import ConformanceReport
from dinum_pipelines.lib.conformance.schema import Schema

VALIDATA_CODES = frozenset(
    {
        "french-siret-value", "french-siren-value", "french-gps-coordinates", "phone-number-value",
        "opening-hours-value", "cohesive-columns-value", "compare-columns-value", "sum-columns-value",
        "year-interval-value", "one-of-required", "nomenclature-actes-value",
    }
)


@dataclass(frozen=True)
class Deviation:
    name: str
    reason: str


DEVIATIONS = (
    Deviation(
        "our own codes",
        "frictionless has no check for a header that differs from the schema only by case or accents, "
        "U+FFFD or mojibake in cells, a UTF-8 BOM before a non-UTF-8 body, or `uniqueKeys`: we report "
        f"them with codes of our own ({', '.join(sorted(OWN_CODES))}).",
    ),
    Deviation(
        "Validata custom checks",
        "frictionless ignores `custom_checks`; Validata runs them after it, and so do we, with Validata's codes.",
    ),
    Deviation(
        "extra-label",
        "with schema_sync (fieldsMatch 'partial') frictionless accepts columns the schema does not declare "
        "without a word; a producer must hear of them (Validata reports them), so we report extra-label.",
    ),
    Deviation(
        "blank-label",
        "matching by name, frictionless does not look at blank header cells; a column without a name is a "
        "fault the producer can fix, so we report blank-label.",
    ),
    Deviation(
        "missing-label of an optional field",
        "'partial' tolerates a missing field unless it is required or in the primary key; the issue asks for "
        "every column the schema declares and the file lacks (an optional one too) to be one missing-label.",
    ),
    Deviation(
        "label differing by case or accents",
        "frictionless sees the field as missing (missing-label when required) and checks none of its cells; "
        "we map the column to the field, report label-case-or-accents, and check its cells.",
    ),
    Deviation(
        "primary-key on blank rows",
        "frictionless adds a primary-key error ('cells composing the primary keys are all None') to every blank "
        "row; a blank row is one fault, blank-row, as frictionless itself says of the row's other cells.",
    ),
    Deviation(
        "pattern anchoring",
        "frictionless compiles a pattern as `^{pattern}$`, so a top-level alternation `a|b` is anchored at one end "
        "per alternative (`^a|b$` accepts `a…` and `…b`); Table Schema wants the whole value to match, so we use "
        "`^(?:a|b)$`. Seen as frictionless: our pattern faults whose value matches `^{pattern}$` are left out.",
    ),
    Deviation(
        "duplicate-label",
        "frictionless refuses the whole file with a generic 'error' when a header name repeats under name "
        "matching; we report duplicate-label for each repeat and check the rest of the file.",
    ),
)


def frictionless_view(report: ConformanceReport, schema: Schema) -> Counter:
    """Our report's counts per (code, field), as frictionless would report the same file."""
    faults = list(report.faults)
    remapped = {fault.field for fault in faults if fault.code == "label-case-or-accents"}
    key_fields = set(schema.primary_key)
    missing_key = any(
        fault.code == "missing-label" and fault.field in key_fields for fault in faults
    ) or bool(remapped & key_fields)
    blank_rows = {fault.row for fault in faults if fault.code == "blank-row"}
    counts: Counter = Counter()
    for fault in faults:
        if fault.code in OWN_CODES and fault.code != "label-case-or-accents":
            continue
        if fault.code in VALIDATA_CODES or fault.code in ("extra-label", "blank-label", "duplicate-label"):
            continue
        if fault.code == "missing-label" and fault.note == "optional":
            continue
        if fault.code == "label-case-or-accents":
            field = schema.field_named(fault.field)
            if field is not None and (field.required or fault.field in key_fields):
                counts[("missing-label", fault.field)] += 1
            continue
        if fault.field in remapped and fault.code in ("type-error", "constraint-error", "unique-error", "missing-cell"):
            continue
        if fault.code == "primary-key" and missing_key:
            continue
        if fault.constraint == "pattern" and _frictionless_pattern(schema, fault.field).match(fault.value or ""):
            continue
        counts[(fault.code, fault.field)] += 1
    if schema.primary_key and not missing_key:
        counts[("primary-key", None)] += len(blank_rows)
    return +counts


def _frictionless_pattern(schema: Schema, name: str | None) -> re.Pattern[str]:
    field = schema.field_named(name or "")
    return re.compile(f"^{field.constraints['pattern']}$") if field is not None else re.compile("(?!)")


def frictionless_refused_duplicates(flat: list) -> bool:
    return any(code == "error" and "unique labels" in (note or "") for code, _, _, note in flat)


Transform = Callable[[ConformanceReport, Schema], Counter]
