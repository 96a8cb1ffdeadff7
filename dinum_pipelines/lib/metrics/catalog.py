"""The metrics pipeline's two calls to the catalog: read a day's usage log, push the metrics.

Both need a sysadmin's API key (DINUM_CATALOG_METRICS_API_KEY), which travels only in the
X-API-KEY header: errors carry the URL, the status and the catalog's message, never the key.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from dinum_pipelines.lib.publish.catalog_client import send
from dinum_pipelines.lib.ingest.http import make_session
from dinum_pipelines.lib.metrics.usage import write_atomically


class MetricsClient:
    def __init__(self, base_url: str, api_key: str, session: requests.Session | None = None, timeout: float = 300) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.session = session or make_session(retries=3, backoff_factor=0.5)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"MetricsClient({self.base_url!r}, api_key=***)"

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = f"{self.base_url}{path}"
        return send(self.session, method, url, headers={"X-API-KEY": self._api_key}, timeout=self.timeout, **kwargs)

    def download_events(self, start: datetime, end: datetime, target: Path) -> None:
        """The events with start <= occurred_at < end, as the catalog's CSV, into `target` (atomically)."""
        params = {"since": start.isoformat(), "until": end.isoformat()}

        def save(path: Path) -> None:
            with self._request("GET", "/api/1/events/", params=params, stream=True) as response, path.open("wb") as out:
                for chunk in response.iter_content(1 << 20):
                    out.write(chunk)

        write_atomically(target, save)

    def push_metrics(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Replace the catalog's usage metrics (all or nothing); returns the catalog's summary."""
        summary: dict[str, Any] = self._request("PUT", "/api/1/metrics/", json=payload).json()
        return summary
