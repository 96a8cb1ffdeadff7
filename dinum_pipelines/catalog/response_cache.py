"""Anonymous API answers (dataset listings and datasets), cached per process, keyed on the data version.

A listing costs a count and a page of rows (6-12 ms of database time at 10,000 datasets), a
dataset two queries and its rendering, and reusers' requests repeat. Every write to what the API shows moves one number in the database
(`db.data_version`, moved in the writing transaction itself), so a process that reads the same
number has nothing new to show, whichever process wrote: the cache is never stale on data. The
one thing a listing shows that moves without a write is the clock-dependent quality criterion
(`update_fulfilled_in_time`), hence a short time-to-live as well. Callers with a key may see
private datasets: they are not cached. Each entry keeps, beside the body, what the handler needs
without it (a dataset's id, to log the view a cached answer still is).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

MAX_ENTRIES = 2048
TIME_TO_LIVE_SECONDS = 60.0


class ResponseCache:
    def __init__(self, max_entries: int = MAX_ENTRIES, time_to_live: float = TIME_TO_LIVE_SECONDS) -> None:
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.time_to_live = time_to_live

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            stored_at, value = entry
            if time.monotonic() - stored_at > self.time_to_live:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
