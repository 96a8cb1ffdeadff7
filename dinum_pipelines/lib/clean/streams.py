"""Batches of a large file handed between threads, so that reading, cleaning and writing overlap.

A file is worked on in record batches to keep memory flat (see lib/pipeline.py); each stage
(Arrow's reader, the cleaning, the writers) spends most of its time in C++ or numpy without the
GIL, so a thread per stage with a short queue between them keeps both cores busy while holding
only a few batches at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from queue import Queue
from typing import TypeVar

T = TypeVar("T")


def prefetched(batches: Iterator[T], depth: int = 2, name: str = "prefetch") -> Iterator[T]:
    """The batches, produced ahead by a thread while the caller works on the previous ones (Arrow's
    CSV reader, numpy and Arrow's kernels release the GIL); at most `depth` batches wait, so
    memory stays bounded. An error in the producer is raised in the caller; a caller that stops
    early (an error) stops the producer too."""
    queue: Queue = Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def read() -> None:
        try:
            for batch in batches:
                if stop.is_set():
                    return
                queue.put(batch)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            queue.put(exc)
        finally:
            queue.put(done)

    thread = threading.Thread(target=read, name=name, daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a reader waiting on a full queue
            while not queue.empty():
                queue.get_nowait()
            thread.join(timeout=0.05)
