"""The clean asset of a dataset: typed table written as Parquet and CSV, ready for checks."""


import dagster as dg

from dinum_pipelines.defs.automation import CHANGED_UPSTREAM
from dinum_pipelines.defs.keys import clean_key, raw_key
from dinum_pipelines.defs.resources import DataFolder
from dinum_pipelines.lib.pipeline import clean
from dinum_pipelines.lib.declare.registry import DatasetSpec

_DAGSTER_TYPES = {"string": "string", "integer": "int", "number": "float", "boolean": "bool", "date": "date", "datetime": "datetime"}


def column_schema(spec: DatasetSpec, columns: list[str]) -> dg.TableSchema:
    declared = {c.name: c for c in spec.columns}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name,
                _DAGSTER_TYPES[declared[name].type] if name in declared else "string",
                description=declared[name].description if name in declared else "undeclared column, kept as text",
            )
            for name in columns
        ]
    )


def build_clean_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=clean_key(spec.slug),
        deps=[raw_key(spec.slug)],
        group_name=spec.slug,
        kinds={"pandas", "parquet"},
        owners=spec.owners or None,
        description=f"{spec.title}: cleaned and typed (French numbers and dates, codes as text).",
        automation_condition=CHANGED_UPSTREAM,
    )
    def clean_table(context: dg.AssetExecutionContext, data_folder: DataFolder) -> dg.MaterializeResult:
        with data_folder.dataset_layout(spec.slug) as layout:
            outcome = clean(spec, layout)
        unparsed = sum(issue.count for issue in outcome.report.issues)
        for issue in outcome.report.issues:
            context.log.warning(f"{spec.slug}: {issue.describe()}")
        duplicates = outcome.report.duplicates
        if duplicates:
            context.log.warning(f"{spec.slug}: {duplicates.describe()}")
        for finding in outcome.report.structure:
            context.log.warning(f"{spec.slug}: {finding.detail}")
        judged = outcome.conformance
        conformance = {}
        if judged is not None:
            context.log.info(
                f"{spec.slug}: the source file is {'conformant' if judged.valid else 'not conformant'} to its schema "
                f"({len(judged.faults)} fault(s): {judged.counts_by_code()}); report in {data_folder.location(spec.slug, outcome.files.conformance_report)}"
            )
            conformance = {
                "conformance_valid": dg.MetadataValue.bool(judged.valid),
                "conformance_errors": dg.MetadataValue.int(len(judged.faults)),
                "conformance_counts": dg.MetadataValue.json(judged.counts_by_code()),
                "conformance_report": dg.MetadataValue.path(data_folder.location(spec.slug, outcome.files.conformance_report)),
            }
        return dg.MaterializeResult(
            data_version=dg.DataVersion(outcome.raw.sha256),
            metadata={
                "dagster/row_count": dg.MetadataValue.int(outcome.row_count),
                "dagster/column_schema": column_schema(spec, outcome.columns),
                "raw_sha256": outcome.raw.sha256,
                "unparsed_cells": dg.MetadataValue.int(unparsed),
                "duplicate_key_rows_dropped": dg.MetadataValue.int(duplicates.dropped if duplicates else 0),
                "detected": dg.MetadataValue.json(outcome.detected),
                "renamed_columns": dg.MetadataValue.json(outcome.report.renamed),
                "parquet": dg.MetadataValue.path(data_folder.location(spec.slug, outcome.files.parquet)),
                "csv": dg.MetadataValue.path(data_folder.location(spec.slug, outcome.files.csv)),
                "preview": dg.MetadataValue.md(outcome.preview.to_markdown(index=False)),
                "structure_findings": dg.MetadataValue.int(len(outcome.report.structure)),
                **conformance,
            },
        )

    return clean_table
