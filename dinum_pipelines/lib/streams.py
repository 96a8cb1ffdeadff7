"""Pieces of a large file handed between threads, so that its stages overlap.

A file is worked on in pieces to keep memory flat: a download in blocks (lib/ingest/http.py),
then record batches (see lib/pipeline.py). Each stage (receiving, hashing, writing; Arrow's
reader, the cleaning, the writers) spends most of its time in C++, numpy or system calls without
the GIL, so a thread per stage with a short queue between them keeps both cores busy while
holding only a few pieces at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
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


class BackgroundSink:
    """Hands items to `consume` in a thread of its own, at most `depth` waiting: a writer that
    works beside its caller (the clean CSV written while the caller writes the Parquet). `close`
    waits for the last item. An error in `consume` is raised by the next `put` and by `close`
    (unless told not to, when the caller is already failing), and the items after it are dropped."""

    def __init__(self, consume: Callable[[T], None], depth: int = 1, name: str = "sink") -> None:
        self._queue: Queue = Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._done = object()
        self._thread = threading.Thread(target=self._run, args=(consume,), name=name, daemon=True)
        self._thread.start()

    def _run(self, consume: Callable[[T], None]) -> None:
        while (item := self._queue.get()) is not self._done:
            if self._error is None:
                try:
                    consume(item)
                except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
                    self._error = exc

    def put(self, item: T) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def close(self, *, raise_error: bool = True) -> None:
        if self._thread.is_alive():
            self._queue.put(self._done)
            self._thread.join()
        if raise_error and self._error is not None:
            raise self._error
