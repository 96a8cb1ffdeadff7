"""Writing uploaded files past the page cache (O_DIRECT), whole aligned pages at a time.

A catalog stores files it does not read back right away: reusers download them later (behind
nginx, from the disk), and an upload of several GB going through the page cache only evicts what
readers use (object stores such as MinIO write objects with O_DIRECT for that reason). Going
through the cache is also what an upload cost: on a VM that backs new pages on demand, every new
page-cache page is a fault taken by the host, and `dd` of 4.2 GB into a new file took 3.0-7.3 s,
2.8-7.2 s of it the kernel's, against 2.2-2.7 s and 0.35-0.55 s with O_DIRECT (bench/README.md).
In the pipeline's publication at 30M rows, the catalog's writes were 16 s of one core.

Bytes are gathered into a page-aligned buffer (O_DIRECT needs aligned addresses, offsets and
sizes) and written from it. What cannot be aligned goes through the page cache by an ordinary
descriptor on the same file, which the kernel keeps coherent with the direct writes: the head of
a part that starts mid-page, and the last partial page. A page is only ever written one way by
one writer, and two parts meeting mid-page both write that page through the cache. Where O_DIRECT
is refused (tmpfs, some network filesystems: EINVAL at open or at a write), everything goes
through the cache, as before. Durability is unchanged: the caller fsyncs its descriptor, which
flushes the device's cache for the direct writes too.
"""

from __future__ import annotations

import errno
import mmap
import os
from pathlib import Path

PAGE = 4096  # O_DIRECT's alignment on every Linux block device we run on (512 or 4096)
STAGING_BYTES = 1 << 20  # a multiple of PAGE
_O_DIRECT = getattr(os, "O_DIRECT", 0)


def _open_direct(path: Path) -> int | None:
    if not _O_DIRECT:
        return None
    try:
        return os.open(path, os.O_WRONLY | _O_DIRECT)
    except OSError as error:
        if error.errno == errno.EINVAL:  # the filesystem has no direct I/O
            return None
        raise


def write_all(fd: int, data: memoryview, offset: int) -> None:
    """`os.pwrite` until every byte of `data` is at `offset` (a write may be short)."""
    while data:
        written = os.pwrite(fd, data, offset)
        offset += written
        data = data[written:]


class UncachedWriter:
    """Bytes written one after the other from `offset` into the file `fd` is open on (`path`):
    whole pages by O_DIRECT, the rest through `fd`. `flush` before the file is read, synced or
    closed; `close` releases what this writer opened (never `fd`, its caller's)."""

    def __init__(self, path: Path, fd: int, offset: int) -> None:
        self._fd = fd
        self._direct = _open_direct(path)
        self._staging = mmap.mmap(-1, STAGING_BYTES) if self._direct is not None else None
        self._start = offset  # the file offset of the staging buffer's first byte
        self._staged = 0

    @property
    def direct(self) -> bool:
        """Whether whole pages still go past the page cache."""
        return self._direct is not None

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        if self._staging is not None and self._staged == 0 and self._start % PAGE:
            head = view[: PAGE - self._start % PAGE]  # up to the next page boundary, through the cache
            write_all(self._fd, head, self._start)
            self._start += len(head)
            view = view[len(head):]
        while view:
            if self._staging is None:  # no direct I/O here (or no longer)
                write_all(self._fd, view, self._start)
                self._start += len(view)
                return
            taken = min(len(view), STAGING_BYTES - self._staged)
            self._staging[self._staged : self._staged + taken] = view[:taken]
            self._staged += taken
            view = view[taken:]
            if self._staged == STAGING_BYTES:
                self._write_staged(STAGING_BYTES)

    def flush(self) -> None:
        """Write what is gathered: its whole pages direct, the last partial page through the cache."""
        if self._staging is None or not self._staged:
            return
        whole = self._staged - self._staged % PAGE
        if whole:
            self._write_staged(whole)
        if self._staged:
            write_all(self._fd, memoryview(self._staging)[: self._staged], self._start)
            self._start += self._staged
            self._staged = 0

    def close(self) -> None:
        if self._direct is not None:
            os.close(self._direct)
            self._direct = None
        if self._staging is not None:
            self._staging.close()
            self._staging = None

    def _write_staged(self, count: int) -> None:
        """The first `count` staged bytes (whole pages, at an aligned offset), then the rest moved to the front."""
        assert self._staging is not None and self._direct is not None
        block = memoryview(self._staging)[:count]
        try:
            written = 0
            while written < count:
                written += os.pwrite(self._direct, block[written:], self._start + written)
                if written % PAGE:  # a short write left the rest unaligned
                    break
        except OSError as error:
            if error.errno != errno.EINVAL:
                raise
            written = 0  # refused at the first write (some filesystems open but cannot write direct)
            os.close(self._direct)
            self._direct = None
        if written < count:
            write_all(self._fd, block[written:], self._start + written)
        block.release()
        self._start += count
        left = self._staged - count
        if left:
            self._staging.move(0, count, left)
        self._staged = left
        if self._direct is None:  # everything from now on through the cache
            if left:
                write_all(self._fd, memoryview(self._staging)[:left], self._start)
                self._start += left
            self._staging.close()
            self._staging, self._staged = None, 0
