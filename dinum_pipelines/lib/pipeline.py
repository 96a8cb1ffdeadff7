"""The four steps of a dataset's path, as plain functions the Dagster assets call.

Each step reads what the previous one left in the data layout and returns an outcome object
that carries the figures the assets put in their metadata. Keeping them here, free of Dagster,
lets the tests run every rule without an orchestrator, and keeps the assets a few lines long.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import requests

from dinum_pipelines.lib import conformance
from dinum_pipelines.lib.publish.catalog_client import UdataClient
from dinum_pipelines.lib.publish.changes import table_changes
from dinum_pipelines.lib.clean.cleaning import CleaningReport, TableCleaner
from dinum_pipelines.lib.publish.column_profile import PROFILE_EXTRA, column_profile
from dinum_pipelines.lib.conformance import ConformanceReport
from dinum_pipelines.lib.ingest.http import fetch_to_file
from dinum_pipelines.lib.storage.layout import CleanFiles, DataLayout
from dinum_pipelines.lib.clean.parsing import decimal_separator, read_source_batches
from dinum_pipelines.lib.publish.publishing import PublicationResult, publish
from dinum_pipelines.lib.quality import QualityReport, coherence, validate_parquet
from dinum_pipelines.lib.quality.data_docs import archive_validation
from dinum_pipelines.lib.storage.rawstore import RawVersion
from dinum_pipelines.lib.declare.registry import DatasetSpec
from dinum_pipelines.lib.clean.repeats import resolve_duplicate_keys
from dinum_pipelines.lib.streams import prefetched
from dinum_pipelines.lib.clean.tables import (
    CleanTableWriter,
    first_rows,
    parquet_batches,
    to_arrow,
    write_json,
)
from dinum_pipelines.lib.publish.validation_report import (
    conformance_report_extras,
    validation_report_extras,
)

CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class IngestOutcome:
    version: RawVersion | None
    # Why nothing new was stored (None when a new version was stored).
    unchanged_reason: str | None = None


def ingest(spec: DatasetSpec, layout: DataLayout, session: requests.Session, *, force: bool = False) -> IngestOutcome:
    """Download the source; store it as a new raw version only if its content changed."""
    store = layout.raw_store()
    latest = store.latest(spec.slug)
    url = spec.source.resolved_url
    download = fetch_to_file(
        session,
        url,
        store.staging_dir(spec.slug),
        previous=None if force or latest is None else latest.validators,
        timeout=(CONNECT_TIMEOUT, spec.source.timeout_seconds),
        max_bytes=spec.source.max_bytes,
    )
    if download.not_modified:
        return IngestOutcome(latest, f"the server answered 304 Not Modified to {url}")
    if latest is not None and download.sha256 == latest.sha256 and not force:
        download.path.unlink(missing_ok=True)
        return IngestOutcome(latest, f"the file's sha256 ({latest.sha256[:12]}…) equals the stored version's")
    return IngestOutcome(store.add(spec.slug, download))


@dataclass(frozen=True)
class CleanOutcome:
    files: CleanFiles
    raw: RawVersion
    report: CleaningReport
    detected: dict[str, Any]
    # The published table's size and columns, and its first rows (for the asset's metadata).
    row_count: int
    columns: list[str]
    preview: pd.DataFrame
    # The raw file judged against its Table Schema (None when the dataset declares none).
    conformance: ConformanceReport | None = None


def conformance_report(spec: DatasetSpec, path: Path, raw: RawVersion) -> ConformanceReport | None:
    """The producer's view: the raw file as downloaded, judged against the dataset's Table Schema."""
    reference = spec.table_schema
    if reference is None or reference.document is None:
        return None
    schema = conformance.parse_schema(reference.document, reference.origin or reference.name)
    name = f"{spec.source.resolved_url} (sha256 {raw.sha256[:12]})"
    return conformance.validate_file(path, schema, spec.source, name)


def clean(spec: DatasetSpec, layout: DataLayout) -> CleanOutcome:
    """Judge the latest raw version against its schema (when it has one), then parse and clean it
    into the clean CSV and Parquet files. The conformance report is written first: it is the
    producer's to-do list even when the file cannot be published."""
    store = layout.raw_store()
    raw = store.latest(spec.slug)
    if raw is None:
        raise FileNotFoundError(f"dataset '{spec.slug}': no raw version downloaded yet; materialize its raw asset first")
    files = layout.clean_files(spec.slug)
    local = store.local_path(raw)
    judged = conformance_report(spec, local, raw)
    if judged is not None:
        write_json({**judged.to_dict(), "raw_sha256": raw.sha256}, files.conformance_report)
    text = read_source_batches(local, spec.source)
    cleaner = TableCleaner(text.labels, spec, decimal_separator(spec.source))
    # Reading, cleaning and writing overlap: a thread reads ahead, another cleans ahead of the
    # writers, one batch waiting between each (the cleaner is only touched by its thread until
    # the last batch is through).
    read = prefetched(text.batches, depth=1, name="clean-reader")
    cleaned = prefetched((to_arrow(cleaner.clean(batch), spec) for batch in read), depth=1, name="clean-cleaner")
    writer = CleanTableWriter(files.parquet, files.csv)
    try:
        for table in cleaned:
            writer.write(table)
        report = cleaner.finish()
        if spec.primary_key:
            writer = _without_duplicate_keys(spec, writer, cleaner, report)
        writer.commit()
    finally:
        cleaned.close()  # stops the threads when the writing failed
        writer.discard()
    write_json({**report.to_dict(), "raw_sha256": raw.sha256, "detected": text.detected}, files.cleaning_report)
    return CleanOutcome(
        files=files, raw=raw, report=report, detected=text.detected, row_count=report.rows_out,
        columns=list(writer.schema.names), preview=first_rows(files.parquet), conformance=judged,
    )


def _without_duplicate_keys(spec: DatasetSpec, writer: CleanTableWriter, cleaner: TableCleaner, report: CleaningReport) -> CleanTableWriter:
    """Rows repeating the primary key, found across the whole written table on disk. When the
    policy drops some, the files are written again without them and the first writing discarded."""
    writer.close()
    written = writer.temporary[0]
    dropped, report.duplicates = resolve_duplicate_keys(written, spec.primary_key, spec.on_duplicate_key, cleaner.data_rows)
    if not dropped.size:
        return writer
    rewritten = CleanTableWriter(*writer.targets)
    try:
        start = 0
        for table in parquet_batches(written):
            keep = np.ones(table.num_rows, dtype=bool)
            keep[dropped[(dropped >= start) & (dropped < start + table.num_rows)] - start] = False
            start += table.num_rows
            rewritten.write(table if keep.all() else table.filter(pa.array(keep)))
    except BaseException:
        rewritten.discard()
        raise
    writer.discard()
    report.rows_out -= len(dropped)
    return rewritten


def check_quality(spec: DatasetSpec, layout: DataLayout) -> QualityReport:
    """Run the dataset's rules on its clean table and keep the report next to it.

    The table is compared with the profile of the last version that passed (the one the publish
    step then sends); a passing table's profile becomes the reference for the next version.
    """
    files = layout.clean_files(spec.slug)
    cleaning_json = json.loads(files.cleaning_report.read_text(encoding="utf-8"))
    cleaning = CleaningReport.from_dict(cleaning_json)
    published_profile = coherence.profile_path(files.directory)
    report = validate_parquet(files.parquet, spec, cleaning, previous=coherence.load_profile(published_profile))
    saved = {**report.to_dict(), "raw_sha256": cleaning_json.get("raw_sha256")}
    files.quality_report.write_text(json.dumps(saved, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    archive_validation(files.directory, report.gx_result)
    if report.passed:
        coherence.save_profile(coherence.profile_parquet(files.parquet), published_profile)
    return report


def temporal_coverage(spec: DatasetSpec, files: CleanFiles) -> tuple[date, date] | None:
    """The data's own first and last dates, when the dataset names a date column: from the
    Parquet footer's statistics for a date or datetime column, else read batch after batch."""
    column = spec.temporal_coverage.column
    if column is None:
        return None
    parquet = pq.ParquetFile(files.parquet)
    field = parquet.schema_arrow.field(column)
    if pa.types.is_date(field.type) or pa.types.is_timestamp(field.type):
        bounds = _statistics_bounds(parquet, parquet.schema_arrow.get_field_index(column))
        if bounds is not None:
            return bounds
    low = high = None
    for table in parquet_batches(files.parquet, columns=[column]):
        values = pd.to_datetime(table.column(column).to_pandas()).dropna()
        if not values.empty:
            low = values.min() if low is None else min(low, values.min())
            high = values.max() if high is None else max(high, values.max())
    return None if low is None else (low.date(), high.date())


def _statistics_bounds(parquet: pq.ParquetFile, index: int) -> tuple[date, date] | None:
    """The column's first and last dates from the footer (None when a row group has no statistics)."""
    low = high = None
    metadata = parquet.metadata
    for group in range(metadata.num_row_groups):
        chunk = metadata.row_group(group).column(index)
        statistics = chunk.statistics
        if statistics is None:
            return None
        if not statistics.has_min_max:
            if statistics.has_null_count and statistics.null_count == chunk.num_values:
                continue  # every value missing
            return None
        low = statistics.min if low is None else min(low, statistics.min)
        high = statistics.max if high is None else max(high, statistics.max)
    if low is None:
        return None
    return pd.Timestamp(low).date(), pd.Timestamp(high).date()


def publish_clean_files(spec: DatasetSpec, layout: DataLayout, client: UdataClient) -> PublicationResult:
    files = layout.clean_files(spec.slug)
    descriptions = {
        "csv": f"{spec.title}: données nettoyées, CSV UTF-8 séparé par des virgules, dates ISO 8601.",
        "parquet": f"{spec.title}: données nettoyées et typées, format Apache Parquet.",
        "conformance": f"{spec.title}: rapport de conformité du fichier source au schéma, erreur par erreur (JSON).",
    }
    published = files.published_files()
    if spec.table_schema is not None and files.conformance_report.exists():
        published["conformance"] = files.conformance_report
    # The column profile (DuckDB, seconds on a large table) is computed while the first file
    # uploads, in its own thread: the publication waits for it only when it sets that file's extras.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="column-profile") as profiling:
        data_extras = profiling.submit(_data_extras, spec, files, published)
        result = publish(
            client,
            spec,
            published,
            temporal_coverage=temporal_coverage(spec, files),
            resource_descriptions=descriptions,
            compare_tables=lambda before, after: table_changes(before, after, spec.primary_key).as_extra(),
            validation_extras=data_extras.result,
        )
    raw_sha256 = json.loads(files.cleaning_report.read_text(encoding="utf-8")).get("raw_sha256")
    write_json({"raw_sha256": raw_sha256, "dataset_id": result.dataset_id, "published_at": datetime.now(UTC).isoformat()}, files.publication)
    return result


def unfinished_publication(spec: DatasetSpec, layout: DataLayout) -> str | None:
    """Why the latest raw version must go down the chain again though the source has not changed:
    its clean files passed their check but never reached the catalog in full (the run stopped:
    the catalog down, the run killed). Without this, the next runs would skip an unchanged source
    and the catalog would keep the previous files until the administration changed its file.

    None when the version was published, or was not publishable: its check blocked it or its
    cleaning failed (those wait for a new file, as before)."""
    raw = layout.raw_store().latest(spec.slug)
    files = layout.clean_files(spec.slug)
    if raw is None or not files.quality_report.exists():
        return None
    checked = json.loads(files.quality_report.read_text(encoding="utf-8"))
    if checked.get("raw_sha256") != raw.sha256 or not checked.get("passed"):
        return None
    if files.publication.exists() and json.loads(files.publication.read_text(encoding="utf-8")).get("raw_sha256") == raw.sha256:
        return None
    return f"version {raw.sha256[:12]}… passed its check, but its publication did not finish"


def _data_extras(spec: DatasetSpec, files: CleanFiles, published: dict[str, Path]) -> dict:
    """The extras of the published data files: their validation report and their column profile."""
    descriptions = {column.name: column.description for column in spec.columns}
    return {**(_validation_extras(spec, files) or {}), PROFILE_EXTRA: column_profile(published["parquet"], descriptions)}


def _validation_extras(spec: DatasetSpec, files: CleanFiles) -> dict | None:
    """The `validation-report:*` extras of the published files: the source's conformance report
    when the dataset declares a schema, else the last quality report (None before any check)."""
    if spec.table_schema is not None and files.conformance_report.exists():
        report = json.loads(files.conformance_report.read_text(encoding="utf-8"))
        validated_at = datetime.fromtimestamp(files.conformance_report.stat().st_mtime, UTC)
        return conformance_report_extras(spec, report, validated_at)
    if not files.quality_report.exists():
        return None
    report = json.loads(files.quality_report.read_text(encoding="utf-8"))
    validated_at = datetime.fromtimestamp(files.quality_report.stat().st_mtime, UTC)
    return validation_report_extras(spec, report, validated_at)
