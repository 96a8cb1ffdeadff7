"""Where the catalog keeps its data and how it names itself in the URLs it hands out.

One small frozen object passed to every entry point (HTTP app, CLI, in-process server), so the
demo runner, the tests and a shared deployment differ only by the values in it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATABASE_URL_ENV = "DINUM_CATALOG_DATABASE_URL"
FILES_DIR_ENV = "DINUM_CATALOG_FILES_DIR"
PUBLIC_URL_ENV = "DINUM_CATALOG_PUBLIC_URL"
SIMULATED_CLOCK_ENV = "DINUM_CATALOG_SIMULATED_CLOCK"
ACCEL_REDIRECT_PREFIX_ENV = "DINUM_CATALOG_ACCEL_REDIRECT_PREFIX"
SCHEMAS_DIR_ENV = "DINUM_CATALOG_SCHEMAS_DIR"
FETCH_PRIVATE_URLS_ENV = "DINUM_CATALOG_FETCH_PRIVATE_URLS"
SHARED_ANSWERS_DIR_ENV = "DINUM_CATALOG_SHARED_ANSWERS_DIR"
DEFAULT_HOME = Path(".dinum") / "catalog"


@dataclass(frozen=True)
class CatalogSettings:
    # SQLAlchemy URL: sqlite:///path/catalog.db by default, postgresql+psycopg://... for a shared one.
    database_url: str
    # Folder holding the uploaded files.
    files_dir: Path
    # Base of the absolute URLs in responses (resource `url`, `latest`, `uri`, `next_page`), e.g.
    # https://catalog.example.org. None: taken from each request's Host, fine on one machine.
    public_url: str | None = None
    # Load simulation only (demo, tests): a sysadmin's request may set its events' time with the
    # X-Dinum-Simulated-Time header (see events.py). Never on in production.
    simulated_clock: bool = False
    # Production behind nginx: hosted files are answered with `X-Accel-Redirect: {prefix}{key}`
    # for nginx to send from an `internal` location aliasing `files_dir` (e.g. "/_files/"). None:
    # the catalog sends them itself.
    accel_redirect_prefix: str | None = None
    # Table Schemas (*.json) offered by the /valider/ page; None: only uploaded or linked schemas.
    schemas_dir: Path | None = None
    # Whether /valider/ may fetch a file or schema from a loopback or private address, and a
    # webhook be delivered to one. Off for a deployment (a visitor must not make the catalog read,
    # nor post to, its own network); on for the demo and the tests, served on 127.0.0.1.
    fetch_private_urls: bool = False
    # Webhook deliveries (webhooks.py): the wait before the first retry (doubled at each retry),
    # the attempts in all, and how long one attempt may take.
    webhook_retry_seconds: float = 30.0
    webhook_attempts: int = 6
    webhook_timeout_seconds: float = 10.0
    # A folder the worker processes of one node share their anonymous answers in (response_cache.py,
    # `SharedAnswers`), so that each first answer is computed once per node rather than once per
    # process. None: each process keeps its own; `serve --workers N` makes one for its workers.
    shared_answers_dir: Path | None = None

    @classmethod
    def in_directory(
        cls, home: Path | str, *, public_url: str | None = None, simulated_clock: bool = False
    ) -> CatalogSettings:
        """A SQLite database and a files folder side by side in `home` (tests, demo, default)."""
        home = Path(home)
        return cls(
            f"sqlite:///{home / 'catalog.db'}", home / "files", public_url, simulated_clock,
            schemas_dir=home / "schemas", fetch_private_urls=True,
        )

    @classmethod
    def from_env(
        cls,
        database_url: str | None = None,
        files_dir: Path | str | None = None,
        public_url: str | None = None,
    ) -> CatalogSettings:
        """Explicit values first, then DINUM_CATALOG_* variables, then ./.dinum/catalog/."""
        default = cls.in_directory(DEFAULT_HOME)
        return cls(
            database_url=database_url or os.environ.get(DATABASE_URL_ENV) or default.database_url,
            files_dir=Path(files_dir or os.environ.get(FILES_DIR_ENV) or default.files_dir),
            public_url=(public_url or os.environ.get(PUBLIC_URL_ENV) or None),
            simulated_clock=os.environ.get(SIMULATED_CLOCK_ENV) == "1",
            accel_redirect_prefix=os.environ.get(ACCEL_REDIRECT_PREFIX_ENV) or None,
            schemas_dir=_optional_path(os.environ.get(SCHEMAS_DIR_ENV), default.schemas_dir),
            fetch_private_urls=os.environ.get(FETCH_PRIVATE_URLS_ENV) == "1",
            shared_answers_dir=_optional_path(os.environ.get(SHARED_ANSWERS_DIR_ENV), None),
        )

    def as_env(self) -> dict[str, str]:
        """The DINUM_CATALOG_* variables `from_env()` reads back as these settings (worker processes)."""
        return {
            DATABASE_URL_ENV: self.database_url,
            FILES_DIR_ENV: str(self.files_dir),
            PUBLIC_URL_ENV: self.public_url or "",
            SIMULATED_CLOCK_ENV: "1" if self.simulated_clock else "",
            ACCEL_REDIRECT_PREFIX_ENV: self.accel_redirect_prefix or "",
            SCHEMAS_DIR_ENV: str(self.schemas_dir or ""),
            FETCH_PRIVATE_URLS_ENV: "1" if self.fetch_private_urls else "",
            SHARED_ANSWERS_DIR_ENV: str(self.shared_answers_dir or ""),
        }


def _optional_path(value: str | None, default: Path | None) -> Path | None:
    """An environment variable naming a folder: absent -> `default`, empty -> None (none wanted)."""
    if value is None:
        return default
    return Path(value) if value else None
