"""Quality rules of a dataset, compiled to a Great Expectations suite and run on the clean table.

The dataset's YAML (merged with its Table Schema) declares rules column by column, French
formats, the personal data it may publish and how far a new version may drift from the last
published one. `rules.compile_rules` turns all of it into GX expectations, each tagged
`critical` (blocks publication) or `warning` (reported only). The package is split by question:

- `rules.py`: the one compiler, declarations -> expectations (`Rule`s);
- `frformats.py`, `personal_data.py`, `coherence.py`: what the French formats, personal data
  and coherence rules check, each with a reference and a vectorised implementation;
- `gx_custom.py`: the custom GX expectations (reference checks, value by value);
- `engine_gx.py`: plain GX on pandas, the reference; `engine_arrow.py`: the same rules
  vectorised on Arrow, with GX's result format, 50-130× faster on 20k-100k rows (see its docstring and
  bench/bench_quality.py). Pipelines use the Arrow engine on the clean Parquet, batch after batch
  (`validate_parquet`); tests compare it with GX, and the batched run with the whole table's;
- `report.py`: `QualityReport`, the serialisable outcome every consumer reads.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dinum_pipelines.lib.clean.cleaning import CleaningReport, StructureFinding
from dinum_pipelines.lib.quality.report import (
    SAMPLE_SIZE,
    QualityReport,
    RuleOutcome,
    outcome_from_result,
)
from dinum_pipelines.lib.quality.coherence import TableProfile, coherence_rules, type_changes
from dinum_pipelines.lib.quality.rules import SCHEMA, Rule, compile_rules
from dinum_pipelines.lib.declare.registry import DatasetSpec

__all__ = [
    "SAMPLE_SIZE",
    "QualityReport",
    "Rule",
    "RuleOutcome",
    "compile_rules",
    "parsing_outcomes",
    "run_rules",
    "validate_dataset",
    "validate_parquet",
]

Engine = Literal["arrow", "gx"]


def parsing_outcomes(spec: DatasetSpec, cleaning: CleaningReport) -> list[RuleOutcome]:
    """Cells that did not parse as their declared type are rule failures too (never silent nulls)."""
    outcomes = []
    for column in spec.columns:
        if column.type == "string":
            continue
        issue = next((i for i in cleaning.issues if i.column == column.name), None)
        outcomes.append(
            RuleOutcome(
                rule=f"values_parse_as_{column.type}",
                column=column.name,
                severity=column.severity_of("type"),
                success=issue is None,
                unexpected_count=issue.count if issue else 0,
                unexpected_percent=100.0 * issue.count / max(cleaning.rows_in, 1) if issue else 0.0,
                samples=issue.samples if issue else [],
                rows=issue.rows if issue else [],
                family=SCHEMA,
                source="type",
            )
        )
    duplicates = cleaning.duplicates
    if duplicates is not None and duplicates.dropped:
        # Rows cleaning dropped as exact repeats of the key: the published table is sound, but the
        # source's defect stays visible (a warning; conflicting repeats fail the uniqueness rule).
        outcomes.append(
            RuleOutcome(
                rule="rows_repeating_the_primary_key_dropped",
                column=", ".join(duplicates.key),
                severity="warning",
                success=False,
                unexpected_count=duplicates.dropped,
                unexpected_percent=100.0 * duplicates.dropped / max(cleaning.rows_in, 1),
                rows=duplicates.dropped_rows,
                detail=f"identical rows dropped by cleaning (on_duplicate_key: {duplicates.policy})",
                family=SCHEMA,
                source="primary_key",
            )
        )
    outcomes.extend(_structure_outcome(finding, cleaning) for finding in cleaning.structure)
    return outcomes


def _structure_outcome(finding: StructureFinding, cleaning: CleaningReport) -> RuleOutcome:
    """A difference between the file's shape and the declaration: critical ones block publication."""
    return RuleOutcome(
        rule=f"file_structure_{finding.kind}",
        column=", ".join(finding.columns) or None,
        severity=finding.severity,
        success=False,
        unexpected_count=finding.count or len(finding.columns),
        unexpected_percent=100.0 * finding.count / max(cleaning.rows_in, 1) if finding.kind == "blank_rows" else 0.0,
        rows=finding.rows,
        detail=finding.detail,
        family=SCHEMA,
        source="structure",
    )


def as_arrow(table: pa.Table | pd.DataFrame) -> pa.Table:
    return table if isinstance(table, pa.Table) else pa.Table.from_pandas(table, preserve_index=False)


def run_rules(table: pa.Table | pd.DataFrame, suite_name: str, rules: list[Rule], engine: Engine = "arrow") -> dict:
    """The GX-format validation result of `rules` on `table`, from the chosen engine."""
    if engine == "gx":
        from dinum_pipelines.lib.quality.engine_gx import validate_with_gx

        frame = table if isinstance(table, pd.DataFrame) else table.to_pandas()
        return validate_with_gx(frame, suite_name, rules)
    from dinum_pipelines.lib.quality.engine_arrow import validate_with_arrow

    return validate_with_arrow(as_arrow(table), suite_name, rules)


def dataset_rules(spec: DatasetSpec, schema: pa.Schema, previous: TableProfile | None) -> list[Rule]:
    """The declared rules, and the coherence rules when `previous` (the last published version's
    profile) is given."""
    rules = compile_rules(spec, schema)
    if previous is not None:
        rules.extend(coherence_rules(previous, schema, spec.quality.coherence))
    return rules


def validate_dataset(
    table: pa.Table | pd.DataFrame,
    spec: DatasetSpec,
    cleaning: CleaningReport,
    previous=None,
    engine: Engine = "arrow",
) -> QualityReport:
    """All of a dataset's rules on its clean table: type parsing, the compiled GX suite, and (when
    `previous`, the last published version's `coherence.TableProfile`, is given) coherence."""
    arrow = as_arrow(table)
    rules = dataset_rules(spec, arrow.schema, previous)
    result = run_rules(table if engine == "gx" else arrow, _suite_name(spec), rules, engine)
    return _quality_report(spec, cleaning, arrow.schema, arrow.num_rows, result, previous, engine)


def validate_parquet(
    path: Path, spec: DatasetSpec, cleaning: CleaningReport, previous=None, batch_rows: int | None = None
) -> QualityReport:
    """`validate_dataset` on the clean Parquet file, read batch after batch (memory does not grow
    with the file); uniqueness is answered on disk (repeats.py). The same report as for the
    table held in memory with the Arrow engine."""
    from dinum_pipelines.lib.quality.engine_arrow import (
        PARTIAL_UNEXPECTED_COUNT,
        is_repetitive,
        validate_batches,
    )
    from dinum_pipelines.lib.clean.repeats import repeated_rows
    from dinum_pipelines.lib.streams import prefetched
    from dinum_pipelines.lib.clean.tables import REPETITION_SAMPLE_ROWS, parquet_batches

    metadata = pq.ParquetFile(path).metadata
    schema = metadata.schema.to_arrow_schema()
    rules = dataset_rules(spec, schema, previous)
    # Only the columns the rules read (one at least, for the row counts); the repetitive text
    # ones straight from the file's dictionaries, which the rules use as their encodings
    # (reading and hashing every value again was most of the rules' time at 10M rows).
    read = [name for name in schema.names if any(name in rule.columns for rule in rules)] or schema.names[:1]
    text = [name for name in read if pa.types.is_string(schema.field(name).type) or pa.types.is_large_string(schema.field(name).type)]
    dictionaries = []
    if text:
        with closing(parquet_batches(path, REPETITION_SAMPLE_ROWS, columns=text)) as first:
            sample = next(first)
        dictionaries = [name for name in text if is_repetitive(sample.column(name))]
    # The next batch is read (Parquet decoding, without the GIL) while the rules run on this one.
    batches = prefetched(parquet_batches(path, batch_rows, columns=read, dictionaries=dictionaries), depth=1, name="check-reader")
    result = validate_batches(
        batches, schema, _suite_name(spec), rules,
        lambda rule: repeated_rows(path, rule.columns, PARTIAL_UNEXPECTED_COUNT),
    )
    return _quality_report(spec, cleaning, schema, metadata.num_rows, result, previous, "arrow")


def _suite_name(spec: DatasetSpec) -> str:
    return f"{spec.slug}_suite"


def _quality_report(
    spec: DatasetSpec, cleaning: CleaningReport, schema: pa.Schema, rows: int, result: dict, previous, engine: Engine
) -> QualityReport:
    outcomes = parsing_outcomes(spec, cleaning) + [outcome_from_result(item) for item in result["results"]]
    if previous is not None:
        outcomes += type_changes(previous, schema, spec.quality.coherence)
    return QualityReport(suite_name=_suite_name(spec), row_count=rows, outcomes=outcomes, gx_result=result, engine=engine)
