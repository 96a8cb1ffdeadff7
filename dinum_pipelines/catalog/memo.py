"""A bounded, thread-safe memo: a value computed once per key, the least recently used dropped
beyond a size. One piece for the catalog's in-process caches (db.VersionedReads, a row index's
totals in table_index.py), which request threads share.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class BoundedMemo:
    """`get(key, compute)`: the value kept for `key` if `valid` says it still holds, else
    `compute()`, kept. Computed outside the lock: two threads asking at once may both compute,
    the last one kept."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], Any], valid: Callable[[Any], bool] | None = None) -> Any:
        with self._lock:
            if key in self._entries and (valid is None or valid(self._entries[key])):
                self._entries.move_to_end(key)
                return self._entries[key]
        value = compute()
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return value
