"""The quality outcome of a published file, as data.gouv.fr's `validation-report:*` resource extras.

data.gouv.fr's schema consolidation stores each resource's validation on the resource itself
(`validation-report:{schema_name, schema_version, schema_type, validator, valid_resource,
nb_errors, errors, validation_date}`, at most 100 errors). Writing the same keys lets reusers and
data.gouv.fr's own tools read our results where they already look. The input is the quality
report as saved next to the clean files (`QualityReport.to_dict()`), so this module does not
depend on how the rules were run.

A dataset that declares a Table Schema gets its conformance report's figures instead: the raw
file judged against the schema (`lib/conformance`), which is what data.gouv.fr's keys describe.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dinum_pipelines.lib.declare.registry import DatasetSpec

PREFIX = "validation-report:"
MAX_ERRORS = 100
VALIDATOR = "great_expectations"
# The conformance report's validator: the same as the `dinum-validate` command.
CONFORMANCE_VALIDATOR = "dinum-validate"
# Changes only in these keys do not make a new report worth sending.
VOLATILE_KEYS = (f"{PREFIX}validation_date",)


def _error(outcome: dict[str, Any]) -> dict[str, Any]:
    return {
        "field": outcome.get("column"),
        "rule": outcome.get("rule"),
        "severity": outcome.get("severity"),
        "count": outcome.get("unexpected_count", 0),
        "samples": [str(value) for value in outcome.get("samples") or []],
        "rows": list(outcome.get("rows") or []),
        "detail": outcome.get("detail") or "",
    }


def validation_report_extras(spec: DatasetSpec, report: dict[str, Any], validated_at: datetime) -> dict[str, Any]:
    """The `validation-report:*` extras for each file published from `report`'s table."""
    failed = [outcome for outcome in report["outcomes"] if not outcome["success"]]
    # Blocking failures first: they are what a reader needs when the list is cut at 100.
    failed.sort(key=lambda outcome: outcome.get("severity") != "critical")
    schema = spec.table_schema
    return {
        f"{PREFIX}schema_name": schema.name if schema else f"dinum:{spec.slug}",
        f"{PREFIX}schema_version": schema.version if schema else None,
        f"{PREFIX}schema_type": "tableschema" if schema else "dinum-rules",
        f"{PREFIX}validator": VALIDATOR,
        f"{PREFIX}valid_resource": bool(report["passed"]),
        f"{PREFIX}nb_errors": len(failed),
        f"{PREFIX}errors": [_error(outcome) for outcome in failed[:MAX_ERRORS]],
        f"{PREFIX}nb_rules": len(report["outcomes"]),
        f"{PREFIX}nb_rows": report.get("row_count"),
        f"{PREFIX}validation_date": validated_at.isoformat(),
    }


def conformance_report_extras(spec: DatasetSpec, report: dict[str, Any], validated_at: datetime) -> dict[str, Any]:
    """The `validation-report:*` extras of files published from a source judged against its Table
    Schema: the conformance report's figures (the producer's view, as data.gouv.fr's own
    validation of schema resources), its first 100 faults in file order."""
    schema = spec.table_schema
    return {
        f"{PREFIX}schema_name": schema.name if schema else None,
        f"{PREFIX}schema_version": schema.version if schema else None,
        f"{PREFIX}schema_type": "tableschema",
        f"{PREFIX}validator": CONFORMANCE_VALIDATOR,
        f"{PREFIX}valid_resource": bool(report["valid"]),
        f"{PREFIX}nb_errors": report["error_count"],
        f"{PREFIX}errors": [
            {key: error.get(key) for key in ("code", "field", "row", "value", "message")} for error in report["errors"][:MAX_ERRORS]
        ],
        f"{PREFIX}counts": report.get("counts", {}),
        f"{PREFIX}nb_rows": report.get("rows"),
        f"{PREFIX}source_sha256": report.get("raw_sha256"),
        f"{PREFIX}validation_date": validated_at.isoformat(),
    }


def report_changed(current_extras: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    """Whether the catalog's extras say something other than `wanted` (the date aside)."""
    current = current_extras or {}
    return any(current.get(key) != value for key, value in wanted.items() if key not in VOLATILE_KEYS)
