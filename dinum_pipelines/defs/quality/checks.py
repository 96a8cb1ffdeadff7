"""The blocking quality check of a dataset: its declared rules run as a Great Expectations suite.

One check per dataset covers the four families of rules (schema and types, French formats,
personal data, coherence with the last published version): they all answer "may this table be
published?", and the blocking, the alerts, the demo and the quality-report dataset read one
check key. The families show in the metadata (`failed_<family>_rules`) and in the failures table.

A failed critical rule is an ERROR and blocks the dataset's publication in the same run; failed
warnings are reported (WARN) without blocking. Metadata carries the numbers Dagster plots over
time and, for each failed rule, the field, the count, sample values and data row numbers.
"""


import dagster as dg

from dinum_pipelines.defs.automation import CHANGED_UPSTREAM
from dinum_pipelines.defs.keys import QUALITY_CHECK_NAME, clean_key
from dinum_pipelines.defs.resources import DataFolder
from dinum_pipelines.lib.pipeline import check_quality
from dinum_pipelines.lib.quality import QualityReport
from dinum_pipelines.lib.quality.rules import FAMILIES
from dinum_pipelines.lib.declare.registry import DatasetSpec


def failures_table(report: QualityReport) -> str:
    lines = [
        "| severity | family | field | rule | declared as | failed rows | samples | data rows |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for outcome in report.blocking_failures + report.warnings:
        lines.append(
            f"| {outcome.severity} | {outcome.family} | {outcome.column or '(table)'} | {outcome.rule} | {outcome.source} "
            f"| {outcome.unexpected_count} | {outcome.samples} | {outcome.rows} |"
        )
    return "\n".join(lines)


def failed_expectations(report: QualityReport) -> list[dict]:
    """Each failed rule with its field, counts, sample values and data row numbers (JSON metadata)."""
    return [
        {
            "field": o.column,
            "rule": o.rule,
            "severity": o.severity,
            "family": o.family,
            "declared_as": o.source,
            "unexpected_count": o.unexpected_count,
            "unexpected_percent": round(o.unexpected_percent, 4),
            "samples": o.samples,
            "rows": o.rows,
            "detail": o.detail,
        }
        for o in report.blocking_failures + report.warnings
    ]


def check_result(report: QualityReport, report_path: str, data_docs_index: str | None = None) -> dg.AssetCheckResult:
    failed = report.blocking_failures + report.warnings
    if report.blocking_failures:
        description = "Blocked: " + "; ".join(o.describe() for o in report.blocking_failures)
    elif report.warnings:
        description = "Warnings only (not blocking): " + "; ".join(o.describe() for o in report.warnings)
    else:
        description = f"All {len(report.outcomes)} rules passed on {report.row_count} rows."
    family_counts = {
        f"failed_{family}_rules": dg.MetadataValue.int(sum(1 for o in failed if o.family == family)) for family in FAMILIES
    }
    return dg.AssetCheckResult(
        passed=not failed,
        severity=dg.AssetCheckSeverity.WARN if report.warnings and not report.blocking_failures else dg.AssetCheckSeverity.ERROR,
        description=description[:2000],
        metadata={
            "success_percent": dg.MetadataValue.float(round(report.success_percent, 2)),
            "evaluated_rules": dg.MetadataValue.int(len(report.outcomes)),
            "failed_rules": dg.MetadataValue.int(len(failed)),
            "blocking_failures": dg.MetadataValue.int(len(report.blocking_failures)),
            "warning_failures": dg.MetadataValue.int(len(report.warnings)),
            **family_counts,
            "unexpected_values": dg.MetadataValue.int(sum(o.unexpected_count for o in failed)),
            "failed_columns": ", ".join(sorted({o.column or "(table)" for o in failed})),
            "blocking_columns": ", ".join(sorted({o.column or "(table)" for o in report.blocking_failures})),
            "row_count": dg.MetadataValue.int(report.row_count),
            "failures": dg.MetadataValue.md(failures_table(report) if failed else "none"),
            "failed_expectations": dg.MetadataValue.json(failed_expectations(report)),
            "suite": report.suite_name,
            "engine": report.engine,
            "report": dg.MetadataValue.path(report_path),
            # Built by monitoring/data_docs after the check (the quality report job); a stable path.
            **({"data_docs": dg.MetadataValue.path(data_docs_index)} if data_docs_index else {}),
        },
    )


def build_quality_check(spec: DatasetSpec) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=clean_key(spec.slug),
        name=QUALITY_CHECK_NAME,
        blocking=True,
        description=f"Declared rules of {spec.slug} (Great Expectations); critical failures block publication.",
        # Requested with its table, so that the automation tick that cleans it also publishes it.
        automation_condition=CHANGED_UPSTREAM,
    )
    def quality_rules(data_folder: DataFolder) -> dg.AssetCheckResult:
        with data_folder.dataset_layout(spec.slug) as layout:
            report = check_quality(spec, layout)
        return check_result(
            report,
            data_folder.location(spec.slug, layout.clean_files(spec.slug).quality_report),
            str(data_folder.layout().data_docs_site / "index.html"),
        )

    return quality_rules
