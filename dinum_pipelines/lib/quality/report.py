"""The quality outcome of a table, as every consumer reads it (Dagster check, catalog, alerts).

`QualityReport.to_dict()` is what `check_quality` saves as `quality.json` next to the clean files:

    {
      "suite_name": "<slug>_suite",
      "row_count": 1000,
      "passed": false,                 # no critical rule failed
      "success_percent": 95.0,         # share of rules that passed
      "evaluated": 20, "failed": 1,    # rules evaluated / failed (critical or warning)
      "engine": "arrow",               # which engine ran the expectations (arrow | gx)
      "outcomes": [                    # one per rule, in suite order
        {"rule": "expect_column_values_to_match_regex", "column": "code_commune",
         "severity": "critical", "success": false, "family": "schema",   # schema|format|personal_data|coherence
         "source": "pattern",          # the declaration the rule comes from
         "unexpected_count": 3, "unexpected_percent": 0.3,
         "samples": ["2C033", ...],    # up to 5 failing values
         "rows": [12, ...],            # their data row numbers (1 = first row under the header)
         "detail": ""}
      ],
      "gx_result": {...}               # the expectations' outcome in GX's own format
    }                                  # (ExpectationSuiteValidationResult.to_json_dict())

`gx_result` is the Great Expectations validation result of the suite, whichever engine ran it,
so Data Docs can be built from it later. Outcomes that are not GX expectations (cells that did
not parse as their declared type, a column whose type changed) are only in `outcomes`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

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
    family: str = "schema"
    source: str = ""

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
    gx_result: dict[str, Any] | None = None
    engine: str = "arrow"

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

    def by_family(self, family: str) -> list[RuleOutcome]:
        return [o for o in self.outcomes if o.family == family]

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite_name": self.suite_name,
            "row_count": self.row_count,
            "passed": self.passed,
            "success_percent": self.success_percent,
            "evaluated": len(self.outcomes),
            "failed": len(self.blocking_failures) + len(self.warnings),
            "engine": self.engine,
            "outcomes": [asdict(o) for o in self.outcomes],
            "gx_result": self.gx_result,
        }


def json_safe(value: Any) -> Any:
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # GX's results can hold numpy scalars
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    return str(value)


def _joined(columns: list[str] | None) -> str | None:
    return "+".join(columns) if columns else None


def outcome_from_result(item: dict[str, Any]) -> RuleOutcome:
    """A rule outcome from one expectation result of a GX-format validation result."""
    config = item["expectation_config"]
    kwargs, details = config["kwargs"], item.get("result") or {}
    exception = item.get("exception_info") or {}
    raised = exception.get("raised_exception") or any(
        isinstance(v, dict) and v.get("raised_exception") for v in exception.values()
    )
    success = bool(item["success"])
    if raised:
        messages = [exception.get("exception_message")] + [
            v.get("exception_message") for v in exception.values() if isinstance(v, dict)
        ]
        detail = f"could not be evaluated: {'; '.join(m for m in messages if m)}"
    elif "observed_value" in details and not success:
        detail = f"observed {json_safe(details['observed_value'])!r}"
        mismatched = (details.get("details") or {}).get("mismatched")
        if mismatched:
            detail += f", mismatched {json_safe(mismatched)}"
    else:
        detail = ""
    column = kwargs.get("column") or _joined(kwargs.get("column_list")) or _joined(
        [kwargs[k] for k in ("column_A", "column_B") if k in kwargs]
    )
    return RuleOutcome(
        rule=config["type"],
        column=column,
        severity=str(config.get("severity") or "critical").lower(),
        success=success,
        unexpected_count=int(details.get("unexpected_count") or 0),
        unexpected_percent=float(details.get("unexpected_percent") or 0.0),
        samples=[json_safe(v) for v in (details.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]],
        rows=[int(i) + 1 for i in (details.get("partial_unexpected_index_list") or [])[:SAMPLE_SIZE]],
        detail=detail,
        family=config["meta"].get("family", "schema"),
        source=config["meta"].get("source", ""),
    )
