"""The project's udata-compatible catalog service (udata itself needs MongoDB, which we cannot run).

Public API for the demo runner and the tests:

    settings = CatalogSettings.in_directory(tmp_path)          # or CatalogSettings.from_env()
    with serve_in_thread(settings) as catalog:                 # catalog.url, catalog.api_url
        publisher = bootstrap_publisher(catalog.store, org_slug="insee", org_name="Insee",
                                        email="bot@insee.fr", name="Insee Bot")
        requests.post(f"{catalog.api_url}/datasets/", json={...},
                      headers={"X-API-KEY": publisher.token})
"""

from dinum_pipelines.catalog.admin import Publisher, bootstrap_publisher, create_token, ensure_organization, ensure_user
from dinum_pipelines.catalog.app import create_app
from dinum_pipelines.catalog.response_cache import API_KEY_HEADER
from dinum_pipelines.catalog.settings import CatalogSettings
from dinum_pipelines.catalog.server import RunningCatalog, serve, serve_in_thread
from dinum_pipelines.catalog.store import CatalogStore

__all__ = [
    "API_KEY_HEADER",
    "CatalogSettings",
    "CatalogStore",
    "Publisher",
    "RunningCatalog",
    "bootstrap_publisher",
    "create_app",
    "create_token",
    "ensure_organization",
    "ensure_user",
    "serve",
    "serve_in_thread",
]
