"""Building a small dataset from text columns and validating it the way the pipeline does."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa

from dinum_pipelines.lib.clean.cleaning import clean_table
from dinum_pipelines.lib.quality import QualityReport, validate_dataset, validate_parquet
from dinum_pipelines.lib.quality.engine_arrow import result_differences
from dinum_pipelines.lib.declare.registry import DatasetSpec
from dinum_pipelines.lib.clean.tables import CleanTableWriter, to_arrow

BASE = {
    "slug": "jeu_test",
    "title": "Jeu de test",
    "description": "Un jeu de données de test, avec une description assez longue pour dépasser les cent caractères demandés.",
    "organization": {"slug": "org", "name": "Organisation"},
    "source": {"url": "http://127.0.0.1:9/x.csv", "format": "csv"},
    "license": "lov2",
    "frequency": "monthly",
}


def dataset(columns: list[dict], **extra) -> DatasetSpec:
    return DatasetSpec.model_validate({**BASE, "columns": columns, **extra})


def clean(spec: DatasetSpec, text_columns: dict[str, list]):
    """The clean Arrow table and cleaning report of text columns, as `pipeline.clean` makes them."""
    frame = pd.DataFrame({name: pd.Series(values, dtype="str") for name, values in text_columns.items()})
    cleaned, cleaning = clean_table(frame, spec, ".")
    return to_arrow(cleaned, spec), cleaning


def validate_both(table: pa.Table, spec: DatasetSpec, cleaning, previous=None) -> QualityReport:
    """The Arrow engine's report, after checking plain GX returns the very same validation result,
    and so does the streaming path on the table written as the pipeline writes it (Parquet, read
    back in batches of a few rows, uniqueness answered by DuckDB on disk)."""
    fast = validate_dataset(table, spec, cleaning, previous)
    reference = validate_dataset(table.to_pandas(), spec, cleaning, previous, engine="gx")
    differences = result_differences(reference.gx_result, fast.gx_result)
    assert differences == [], differences
    assert [o.__dict__ for o in fast.outcomes] == [o.__dict__ for o in reference.outcomes]
    streamed = validate_streamed(table, spec, cleaning, previous)
    assert result_differences(fast.gx_result, streamed.gx_result) == []
    assert [o.__dict__ for o in streamed.outcomes] == [o.__dict__ for o in fast.outcomes]
    assert streamed.row_count == fast.row_count
    return fast


def validate_streamed(table: pa.Table, spec: DatasetSpec, cleaning, previous=None) -> QualityReport:
    """`validate_parquet` on `table` written in batches of 3 rows and read back 2 rows at a time."""
    with tempfile.TemporaryDirectory() as folder:
        parquet, csv = Path(folder) / "t.parquet", Path(folder) / "t.csv"
        writer = CleanTableWriter(parquet, csv)
        for start in range(0, max(table.num_rows, 1), 3):
            writer.write(table.slice(start, 3))
        writer.commit()
        return validate_parquet(parquet, spec, cleaning, previous, batch_rows=2)


def check_text(spec: DatasetSpec, text_columns: dict[str, list], previous=None) -> QualityReport:
    table, cleaning = clean(spec, text_columns)
    return validate_both(table, spec, cleaning, previous)


def failed_columns(report: QualityReport) -> set[str]:
    return {o.column for o in report.blocking_failures}
