"""Where the pipeline keeps its files under one root folder (`DINUM_DATA_DIR`).

    <root>/raw/<slug>/...            every downloaded version (see rawstore.py; or DINUM_RAW_STORE_URL)
    <root>/clean/<slug>/<slug>.csv   the clean table, as published
    <root>/clean/<slug>/<slug>.parquet
    <root>/clean/<slug>/cleaning.json  what cleaning could not parse, and from which raw version
    <root>/clean/<slug>/quality.json   the last quality report
    <root>/clean/<slug>/conformance.json  the raw file judged against its Table Schema (producer's view)
    <root>/clean/<slug>/validations/   its recent validation results (GX format)
    <root>/data_docs/index.html      Great Expectations Data Docs of every dataset
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dinum_pipelines.lib.storage.rawstore import RawStore


@dataclass(frozen=True)
class CleanFiles:
    directory: Path
    slug: str

    @property
    def csv(self) -> Path:
        return self.directory / f"{self.slug}.csv"

    @property
    def parquet(self) -> Path:
        return self.directory / f"{self.slug}.parquet"

    @property
    def cleaning_report(self) -> Path:
        return self.directory / "cleaning.json"

    @property
    def quality_report(self) -> Path:
        return self.directory / "quality.json"

    @property
    def conformance_report(self) -> Path:
        return self.directory / "conformance.json"

    @property
    def publication(self) -> Path:
        """The raw version whose clean files the catalog last received in full (lib/pipeline.py)."""
        return self.directory / "published.json"

    def published_files(self) -> dict[str, Path]:
        """The files reusers download, by role."""
        return {"csv": self.csv, "parquet": self.parquet}


@dataclass(frozen=True)
class DataLayout:
    root: Path
    # The raw store's location when it is not `<root>/raw` (any fsspec URL, e.g. s3://bucket/raw).
    raw_url: str | None = None
    # Raw versions kept per dataset; None keeps every version.
    raw_keep_versions: int | None = None
    # Local copies of a remote raw store's versions, when not `<root>/raw_cache` (a worker's steps
    # each get their own root, see defs/resources.py, but share the worker's cache).
    raw_cache: Path | None = None

    def raw_store(self) -> RawStore:
        return RawStore(
            self.raw_url or self.root / "raw",
            keep_versions=self.raw_keep_versions,
            local_cache=self.raw_cache or self.root / "raw_cache",
        )

    def clean_files(self, slug: str) -> CleanFiles:
        return CleanFiles(self.root / "clean" / slug, slug)

    @property
    def data_docs_site(self) -> Path:
        """Great Expectations Data Docs of every dataset (a link to the latest complete build)."""
        return self.root / "data_docs"
