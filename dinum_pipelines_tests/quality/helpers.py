"""Building a small dataset from text columns and validating it the way the pipeline does."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from dinum_pipelines.lib.cleaning import clean_table
from dinum_pipelines.lib.quality import QualityReport, validate_dataset
from dinum_pipelines.lib.quality.engine_arrow import result_differences
from dinum_pipelines.lib.registry import DatasetSpec
from dinum_pipelines.lib.tables import to_arrow

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
    """The Arrow engine's report, after checking plain GX returns the very same validation result."""
    fast = validate_dataset(table, spec, cleaning, previous)
    reference = validate_dataset(table.to_pandas(), spec, cleaning, previous, engine="gx")
    differences = result_differences(reference.gx_result, fast.gx_result)
    assert differences == [], differences
    assert [o.__dict__ for o in fast.outcomes] == [o.__dict__ for o in reference.outcomes]
    return fast


def check_text(spec: DatasetSpec, text_columns: dict[str, list], previous=None) -> QualityReport:
    table, cleaning = clean(spec, text_columns)
    return validate_both(table, spec, cleaning, previous)


def failed_columns(report: QualityReport) -> set[str]:
    return {o.column for o in report.blocking_failures}
