"""The four steps of a dataset's path, as plain functions the Dagster assets call.

Each step reads what the previous one left in the data layout and returns an outcome object
that carries the figures the assets put in their metadata. Keeping them here, free of Dagster,
lets the tests run every rule without an orchestrator, and keeps the assets a few lines long.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import requests

from dinum_pipelines.lib import conformance
from dinum_pipelines.lib.catalog_client import UdataClient
from dinum_pipelines.lib.conformance import ConformanceReport
from dinum_pipelines.lib.cleaning import CleaningReport, clean_table
from dinum_pipelines.lib.http import fetch_to_file
from dinum_pipelines.lib.layout import CleanFiles, DataLayout
from dinum_pipelines.lib.parsing import decimal_separator, read_source
from dinum_pipelines.lib.publishing import PublicationResult, publish
from dinum_pipelines.lib.quality import QualityReport, coherence, validate_dataset
from dinum_pipelines.lib.quality.data_docs import archive_validation
from dinum_pipelines.lib.rawstore import RawVersion
from dinum_pipelines.lib.registry import DatasetSpec
from dinum_pipelines.lib.tables import read_parquet, to_arrow, write_csv, write_json, write_parquet
from dinum_pipelines.lib.validation_report import conformance_report_extras, validation_report_extras

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
    frame: pd.DataFrame
    report: CleaningReport
    detected: dict[str, Any]
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
    text_table, detected = read_source(local, spec.source)
    frame, report = clean_table(text_table, spec, decimal_separator(spec.source))
    table = to_arrow(frame, spec)
    write_parquet(table, files.parquet)
    write_csv(table, files.csv)
    write_json({**report.to_dict(), "raw_sha256": raw.sha256, "detected": detected}, files.cleaning_report)
    return CleanOutcome(files=files, raw=raw, frame=frame, report=report, detected=detected, conformance=judged)


def check_quality(spec: DatasetSpec, layout: DataLayout) -> QualityReport:
    """Run the dataset's rules on its clean table and keep the report next to it.

    The table is compared with the profile of the last version that passed (the one the publish
    step then sends); a passing table's profile becomes the reference for the next version.
    """
    files = layout.clean_files(spec.slug)
    cleaning_json = json.loads(files.cleaning_report.read_text(encoding="utf-8"))
    cleaning = CleaningReport.from_dict(cleaning_json)
    table = pq.read_table(files.parquet)
    published_profile = coherence.profile_path(files.directory)
    report = validate_dataset(table, spec, cleaning, previous=coherence.load_profile(published_profile))
    saved = {**report.to_dict(), "raw_sha256": cleaning_json.get("raw_sha256")}
    files.quality_report.write_text(json.dumps(saved, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    archive_validation(files.directory, report.gx_result)
    if report.passed:
        coherence.save_profile(coherence.profile_table(table), published_profile)
    return report


def temporal_coverage(spec: DatasetSpec, files: CleanFiles) -> tuple[date, date] | None:
    """The data's own first and last dates, when the dataset names a date column."""
    column = spec.temporal_coverage.column
    if column is None:
        return None
    values = pd.to_datetime(read_parquet(files.parquet)[column]).dropna()
    if values.empty:
        return None
    return values.min().date(), values.max().date()


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
    result = publish(
        client,
        spec,
        published,
        temporal_coverage=temporal_coverage(spec, files),
        resource_descriptions=descriptions,
        validation_extras=_validation_extras(spec, files),
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
