"""Quality rules of a dataset, compiled to a Great Expectations suite and run on the clean table.

The dataset's YAML declares its rules column by column (required, unique, pattern, enum,
bounds, lengths, primary key). This module turns them into GX expectations, each tagged
`critical` (blocks publication) or `warning` (reported only), runs them in an ephemeral GX
context (cheap and safe in parallel runs), and summarises the outcome in a plain report that
the Dagster check, the catalog's validation extras and the alerts all read.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from dinum_pipelines.lib.cleaning import CleaningReport
from dinum_pipelines.lib.registry import DatasetSpec

SAMPLE_SIZE = 5


@dataclass
class RuleOutcome:
    """One rule's result: which rule, on which column, how bad, and examples to look at."""

    rule: str
    column: str | None
    severity: str
    success: bool
    unexpected_count: int = 0
    unexpected_percent: float = 0.0
    samples: list[Any] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    detail: str = ""

    def describe(self) -> str:
        where = f"column '{self.column}'" if self.column else "table"
        text = f"{where}: {self.rule} failed on {self.unexpected_count} row(s)"
        if self.detail:
            text += f" ({self.detail})"
        if self.samples:
            text += f", e.g. {self.samples} at data rows {self.rows}"
        return text


@dataclass
class QualityReport:
    suite_name: str
    row_count: int
    outcomes: list[RuleOutcome]

    @property
    def blocking_failures(self) -> list[RuleOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "critical"]

    @property
    def warnings(self) -> list[RuleOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity != "critical"]

    @property
    def passed(self) -> bool:
        """True when no critical rule failed (warnings do not block publication)."""
        return not self.blocking_failures

    @property
    def success_percent(self) -> float:
        if not self.outcomes:
            return 100.0
        return 100.0 * sum(o.success for o in self.outcomes) / len(self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite_name": self.suite_name,
            "row_count": self.row_count,
            "passed": self.passed,
            "success_percent": self.success_percent,
            "evaluated": len(self.outcomes),
            "failed": len(self.blocking_failures) + len(self.warnings),
            "outcomes": [asdict(o) for o in self.outcomes],
        }


def _full_match(pattern: str) -> str:
    # Table Schema patterns match the whole value; GX's regex expectation searches within it.
    return f"^(?:{pattern})$"


def build_expectations(spec: DatasetSpec) -> list:
    """The GX expectations for a dataset's declared rules (one per rule, with its severity)."""
    import great_expectations.expectations as gxe

    expectations: list = [gxe.ExpectTableRowCountToBeBetween(min_value=1, severity="critical")]
    primary_key = set(spec.primary_key)
    for column in spec.columns:
        name, severity = column.name, column.severity
        if column.required or name in primary_key:
            expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=name, severity=severity))
        if column.unique or spec.primary_key == [name]:
            expectations.append(gxe.ExpectColumnValuesToBeUnique(column=name, severity=severity))
        if column.pattern:
            expectations.append(
                gxe.ExpectColumnValuesToMatchRegex(column=name, regex=_full_match(column.pattern), severity=severity)
            )
        if column.enum:
            expectations.append(gxe.ExpectColumnValuesToBeInSet(column=name, value_set=column.enum, severity=severity))
        if column.minimum is not None or column.maximum is not None:
            expectations.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=name, min_value=column.minimum, max_value=column.maximum, severity=severity
                )
            )
        if column.min_length is not None or column.max_length is not None:
            expectations.append(
                gxe.ExpectColumnValueLengthsToBeBetween(
                    column=name, min_value=column.min_length, max_value=column.max_length, severity=severity
                )
            )
    if len(spec.primary_key) > 1:
        expectations.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(spec.primary_key), severity="critical"))
    return expectations


def _quiet_context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def _json_safe(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def run_expectations(frame: pd.DataFrame, suite_name: str, expectations: list) -> list[RuleOutcome]:
    """Validate `frame` against `expectations` in a fresh ephemeral GX context."""
    import great_expectations as gx

    context = _quiet_context()
    batch = (
        context.data_sources.add_pandas("dinum")
        .add_dataframe_asset(suite_name)
        .add_batch_definition_whole_dataframe("whole table")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name, expectations=expectations))
    validation = gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
    result = validation.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
    outcomes = []
    for item in result.results:
        config = item.expectation_config
        details = item.result or {}
        failed_rule = not item.success
        if item.exception_info and item.exception_info.get("raised_exception"):
            detail = f"could not be evaluated: {item.exception_info.get('exception_message')}"
        elif "observed_value" in details and failed_rule:
            detail = f"observed {details['observed_value']!r}"
        else:
            detail = ""
        outcomes.append(
            RuleOutcome(
                rule=config.type,
                column=config.kwargs.get("column") or _joined(config.kwargs.get("column_list")),
                severity=getattr(config.severity, "value", str(config.severity)).lower(),
                success=bool(item.success),
                unexpected_count=int(details.get("unexpected_count") or 0),
                unexpected_percent=float(details.get("unexpected_percent") or 0.0),
                samples=[_json_safe(v) for v in (details.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]],
                rows=[int(i) + 1 for i in (details.get("partial_unexpected_index_list") or [])[:SAMPLE_SIZE]],
                detail=detail,
            )
        )
    return outcomes


def _joined(columns: list[str] | None) -> str | None:
    return "+".join(columns) if columns else None


def parsing_outcomes(spec: DatasetSpec, cleaning: CleaningReport) -> list[RuleOutcome]:
    """Cells that did not parse as their declared type are rule failures too (never silent nulls)."""
    severities = {c.name: c.severity for c in spec.columns}
    outcomes = []
    for column in spec.columns:
        if column.type == "string":
            continue
        issue = next((i for i in cleaning.issues if i.column == column.name), None)
        outcomes.append(
            RuleOutcome(
                rule=f"values_parse_as_{column.type}",
                column=column.name,
                severity=severities[column.name],
                success=issue is None,
                unexpected_count=issue.count if issue else 0,
                unexpected_percent=100.0 * issue.count / max(cleaning.rows_in, 1) if issue else 0.0,
                samples=issue.samples if issue else [],
                rows=issue.rows if issue else [],
            )
        )
    return outcomes


def validate_dataset(frame: pd.DataFrame, spec: DatasetSpec, cleaning: CleaningReport) -> QualityReport:
    """All of a dataset's declared rules on its clean table, GX expectations plus type parsing."""
    suite_name = f"{spec.slug}_suite"
    outcomes = parsing_outcomes(spec, cleaning) + run_expectations(frame, suite_name, build_expectations(spec))
    return QualityReport(suite_name=suite_name, row_count=len(frame), outcomes=outcomes)
