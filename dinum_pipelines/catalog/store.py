"""One object giving access to everything the catalog stores: database repositories and files.

The HTTP app, the CLI, the demo runner and the tests all go through it, so there is one place that
knows how settings become an engine and a files folder.
"""

from __future__ import annotations

from dinum_pipelines.catalog.accounts import Accounts
from dinum_pipelines.catalog.datasets import Datasets
from dinum_pipelines.catalog.db import Database
from dinum_pipelines.catalog.events import Events
from dinum_pipelines.catalog.files import FileStore
from dinum_pipelines.catalog.notifications import Notifications
from dinum_pipelines.catalog.settings import CatalogSettings
from dinum_pipelines.catalog.versions import ResourceVersions


class CatalogStore:
    def __init__(self, settings: CatalogSettings) -> None:
        self.settings = settings
        self.db = Database.open(settings.database_url)
        self.files = FileStore(settings.files_dir, accel_redirect_prefix=settings.accel_redirect_prefix)
        self.accounts = Accounts(self.db)
        self.datasets = Datasets(self.db)
        self.versions = ResourceVersions(self.db)
        self.events = Events(self.db)
        self.notifications = Notifications(self.db)

    def close(self) -> None:
        self.events.close()  # writes the queued usage events first
        self.db.close()

    def __enter__(self) -> CatalogStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
