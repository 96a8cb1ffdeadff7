"""Large files written and read past the page cache (O_DIRECT), whole aligned pages at a time.

Some files are written once and read once, or not read right away: the raw file a download
stores (read once, by the clean step), and the files a catalog stores (downloaded later, behind
nginx, from the disk). Going through the page cache gains them nothing and evicts what other
readers use (object stores such as MinIO write objects with O_DIRECT for that reason). It is also
what such a file cost: on a VM that backs new pages on demand, every new page-cache page is a
fault taken by the host. `dd` of 4.2 GB into a new file took 3.0-7.3 s, 2.8-7.2 s of it the
kernel's, against 2.2-2.7 s and 0.35-0.55 s with O_DIRECT; reading an uncached file, 2.9-6.2 s
against 2.8-2.9 s (bench/README.md). In the pipeline at 30M rows, the catalog's writes were 16 s
of one core, the download's 4 GB about 6 s.

`UncachedWriter` gathers bytes into a page-aligned buffer (O_DIRECT needs aligned addresses,
offsets and sizes) and writes from it. What cannot be aligned goes through the page cache by an
ordinary descriptor on the same file, which the kernel keeps coherent with the direct writes: the
head of a part that starts mid-page, and the last partial page. A page is only ever written one
way by one writer, and two parts meeting mid-page both write that page through the cache.
`UncachedReader` reads a file from start to end into such a buffer. Where O_DIRECT is refused
(some filesystems: EINVAL at open or at a read or write), everything goes through the cache, as
before. Durability is unchanged: the writer's caller fsyncs its descriptor, which flushes the
device's cache for the direct writes too.
"""

from __future__ import annotations

import errno
import io
import mmap
import os
from pathlib import Path

PAGE = 4096  # O_DIRECT's alignment on every Linux block device we run on (512 or 4096)
STAGING_BYTES = 1 << 20  # a multiple of PAGE
READ_BYTES = 8 << 20  # a multiple of PAGE: what UncachedReader asks the disk for at a time
_O_DIRECT = getattr(os, "O_DIRECT", 0)


def _open_direct(path: Path, flags: int = os.O_WRONLY) -> int | None:
    """A second descriptor on `path` with O_DIRECT, or None where it cannot be had (EINVAL: the
    filesystem has no direct I/O). The caller's ordinary descriptor does the work then, and any
    other error is its to meet: this one never leaves the caller's descriptor unclosed."""
    if not _O_DIRECT:
        return None
    try:
        return os.open(path, flags | _O_DIRECT)
    except OSError:
        return None


def _release(buffer: mmap.mmap) -> None:
    """Unmap a buffer now, or when the last view of it goes (one may still be held by the
    traceback of a failed write, which is being raised)."""
    try:
        buffer.close()
    except BufferError:
        pass


def write_all(fd: int, data: memoryview, offset: int) -> None:
    """`os.pwrite` until every byte of `data` is at `offset` (a write may be short)."""
    while data:
        written = os.pwrite(fd, data, offset)
        offset += written
        data = data[written:]


class UncachedWriter:
    """Bytes written one after the other from `offset` into the file `fd` is open on (`path`):
    whole pages by O_DIRECT, the rest through `fd`, which the writer takes (`close` closes it).
    `flush` before the file is read or synced (through `fd`); `close` drops what is not flushed."""

    def __init__(self, path: Path, fd: int, offset: int) -> None:
        self.fd: int | None = fd
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
            write_all(self.fd, head, self._start)
            self._start += len(head)
            view = view[len(head):]
        while view:
            if self._staging is None:  # no direct I/O here (or no longer)
                write_all(self.fd, view, self._start)
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
            write_all(self.fd, memoryview(self._staging)[: self._staged], self._start)
            self._start += self._staged
            self._staged = 0

    def close(self) -> None:
        if self._direct is not None:
            os.close(self._direct)
            self._direct = None
        if self._staging is not None:
            _release(self._staging)
            self._staging = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _write_staged(self, count: int) -> None:
        """The first `count` staged bytes (whole pages, at an aligned offset), then the rest moved to the front."""
        assert self._staging is not None and self._direct is not None
        with memoryview(self._staging)[:count] as block:
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
                write_all(self.fd, block[written:], self._start + written)
        self._start += count
        left = self._staged - count
        if left:
            self._staging.move(0, count, left)
        self._staged = left
        if self._direct is None:  # everything from now on through the cache
            if left:
                write_all(self.fd, memoryview(self._staging)[:left], self._start)
                self._start += left
            _release(self._staging)
            self._staging, self._staged = None, 0


class UncachedReader(io.RawIOBase):
    """A file read once from start to end, past the page cache where the filesystem allows it:
    a stream for a reader such as Arrow's CSV reader. Blocks of READ_BYTES are read at aligned
    offsets into a page-aligned buffer, and `read` copies out of it."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.name = str(path)
        direct = _open_direct(path, os.O_RDONLY)
        self._fd = direct if direct is not None else os.open(path, os.O_RDONLY)
        self._direct = direct is not None
        self._buffer = mmap.mmap(-1, READ_BYTES)
        self._start = 0  # the file offset of the buffer's first byte
        self._filled = 0
        self._taken = 0

    @property
    def direct(self) -> bool:
        return self._direct

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._start + self._taken

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        pieces = []
        while size > 0:
            if self._taken == self._filled and not self._fill():
                break
            end = min(self._filled, self._taken + size)
            pieces.append(self._buffer[self._taken : end])
            size -= end - self._taken
            self._taken = end
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def readinto(self, target) -> int:  # type: ignore[override]
        view = memoryview(target).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return b"".join(iter(lambda: self.read(READ_BYTES), b""))

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
            _release(self._buffer)
        super().close()

    def _fill(self) -> int:
        """The next block into the buffer; its size (0 at the end of the file)."""
        self._start += self._filled
        self._taken = self._filled = 0
        try:
            self._filled = os.preadv(self._fd, [self._buffer], self._start)
        except OSError as error:
            if not self._direct or error.errno != errno.EINVAL:
                raise
            # Refused (a filesystem that opens with O_DIRECT but cannot read so, or an offset a
            # short read left unaligned): the rest through the page cache.
            os.close(self._fd)
            self._fd, self._direct = os.open(self.name, os.O_RDONLY), False
            self._filled = os.preadv(self._fd, [self._buffer], self._start)
        return self._filled
