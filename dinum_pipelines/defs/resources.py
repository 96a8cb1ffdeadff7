"""Resources shared by every dataset's assets: the data folder, the HTTP session, the catalog.

Non-secret settings come from the environment with working defaults (the embedded demo);
the catalog API key is a secret and only ever travels through `dg.EnvVar`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import requests

from dinum_pipelines.defs.alerts import alert_webhook_from_env
from dinum_pipelines.lib.publish.catalog_client import CHUNK_BYTES, CHUNKED_ABOVE_BYTES, UdataClient
from dinum_pipelines.lib.ingest.http import make_session
from dinum_pipelines.lib.storage.layout import DataLayout
from dinum_pipelines.lib.storage.shared_clean import SharedCleanStore

DEFAULT_DATA_DIR = ".dinum/data"
DEFAULT_CATALOG_URL = "http://127.0.0.1:8090"
CATALOG_API_KEY_VAR = "DINUM_CATALOG_API_KEY"


class DataFolder(dg.ConfigurableResource):
    """The folder holding raw versions and clean files (see `lib/storage/layout.py`).

    With `clean_store_url` (the Celery deployment, where a dataset's steps run on different
    machines), the clean files live in that store and each step works on a private copy of its
    dataset's folder (`dataset_layout`); the raw store must then be shared too."""

    root: str
    raw_store_url: str | None = None
    raw_keep_versions: int | None = None
    clean_store_url: str | None = None

    def layout(self) -> DataLayout:
        return DataLayout(Path(self.root).resolve(), self.raw_store_url, self.raw_keep_versions)

    @contextmanager
    def dataset_layout(self, slug: str) -> Iterator[DataLayout]:
        """The layout a step of dataset `slug` reads and writes: `layout()` itself by default;
        with a clean store, a fresh folder under `<root>/steps/` holding a copy of the dataset's
        clean folder, pushed back to the store when the step ends, then removed."""
        layout = self.layout()
        if not self.clean_store_url:
            yield layout
            return
        if not self.raw_store_url:
            raise ValueError(
                "DINUM_CLEAN_STORE_URL is set but DINUM_RAW_STORE_URL is not: steps on several machines "
                "need the raw store on shared storage too"
            )
        work = layout.root / "steps" / f"{slug}-{uuid.uuid4().hex}"
        step_layout = DataLayout(work, layout.raw_url, layout.raw_keep_versions, raw_cache=layout.root / "raw_cache")
        try:
            with SharedCleanStore(self.clean_store_url).checkout(slug, step_layout.clean_files(slug).directory):
                yield step_layout
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def location(self, slug: str, path: Path) -> str:
        """Where a file at the top of the dataset's clean folder is kept, for metadata: its path, or its URL
        in the clean store (a step's local copy is gone once the step ends)."""
        if not self.clean_store_url:
            return str(path)
        return SharedCleanStore(self.clean_store_url).location(slug, path.name)


class SourceHttp(dg.ConfigurableResource):
    """How administrations' servers are called: retries with exponential backoff."""

    retries: int = 4
    backoff_factor: float = 1.0

    def session(self) -> requests.Session:
        return make_session(retries=self.retries, backoff_factor=self.backoff_factor)


class Catalog(dg.ConfigurableResource):
    """A udata API v1 catalog: ours, demo.data.gouv.fr or www.data.gouv.fr."""

    base_url: str
    api_key: str
    # Files above this size go in udata's chunked upload protocol, in parts of `upload_chunk_bytes`.
    upload_chunked_above_bytes: int = CHUNKED_ABOVE_BYTES
    upload_chunk_bytes: int = CHUNK_BYTES

    def client(self) -> UdataClient:
        return UdataClient(
            self.base_url, self.api_key, chunked_above=self.upload_chunked_above_bytes, chunk_size=self.upload_chunk_bytes
        )


def default_resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "data_folder": DataFolder(
            root=os.environ.get("DINUM_DATA_DIR", DEFAULT_DATA_DIR),
            raw_store_url=os.environ.get("DINUM_RAW_STORE_URL") or None,
            raw_keep_versions=int(os.environ["DINUM_RAW_KEEP_VERSIONS"]) if os.environ.get("DINUM_RAW_KEEP_VERSIONS") else None,
            clean_store_url=os.environ.get("DINUM_CLEAN_STORE_URL") or None,
        ),
        "source_http": SourceHttp(),
        "catalog": Catalog(
            base_url=os.environ.get("DINUM_CATALOG_URL", DEFAULT_CATALOG_URL),
            api_key=dg.EnvVar(CATALOG_API_KEY_VAR),
        ),
        "alert_webhook": alert_webhook_from_env(),
    }
