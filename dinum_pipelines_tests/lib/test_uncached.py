"""Large files written and read past the page cache (lib/uncached.py), and the catalog's uploads
hashed beside the writing (files.write_hashed): a file holds exactly the bytes written, and a
reader gives exactly the file, whatever the offsets and block sizes, on a filesystem with direct
I/O (this disk) and on one refusing it at open, at a write or at a read."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import zlib
from pathlib import Path

import pytest

from dinum_pipelines.lib import uncached
from dinum_pipelines.catalog.files import HASHED_BESIDE_BYTES, write_hashed
from dinum_pipelines.lib.uncached import PAGE, READ_BYTES, STAGING_BYTES, UncachedReader, UncachedWriter

def direct_stand_in(path: Path, flags: int = os.O_WRONLY) -> int:
    """An ordinary descriptor standing in for an O_DIRECT one (the tests of refusals patch the
    system calls made on it), so that they run on any filesystem."""
    return os.open(path, flags)


def write_in_blocks(path: Path, data: bytes, offset: int, sizes: list[int]) -> bool:
    """`data` written at `offset` of `path` in blocks of the given sizes (cycled); whether it went direct."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    writer = UncachedWriter(path, fd, offset)
    try:
        position, turn = 0, 0
        while position < len(data):
            size = sizes[turn % len(sizes)]
            writer.write(data[position : position + size])
            position, turn = position + size, turn + 1
        direct = writer.direct
        writer.flush()
        return direct
    finally:
        writer.close()  # and fd, which the writer took


@pytest.mark.parametrize(
    "offset, length, sizes",
    [
        (0, 3 * STAGING_BYTES, [STAGING_BYTES]),  # whole staging buffers, aligned
        (0, 3 * STAGING_BYTES + 1234, [65_536, 1_000_003]),  # a partial last page
        (1000, 2 * STAGING_BYTES + 17, [333_333]),  # a part starting mid-page
        (PAGE - 1, STAGING_BYTES, [1, PAGE, 7, STAGING_BYTES]),  # one byte before the boundary
        (5 * PAGE, 100, [100]),  # smaller than a page
        (12_345, 0, [1]),  # nothing
    ],
)
def test_the_file_holds_exactly_the_bytes_written(tmp_path: Path, offset: int, length: int, sizes: list[int]) -> None:
    data = random.Random(length + offset).randbytes(length)
    path = tmp_path / "data"
    path.write_bytes(b"\xaa" * offset)  # what is before the part stays
    direct = write_in_blocks(path, data, offset, sizes)
    assert path.read_bytes() == b"\xaa" * offset + data
    if length >= PAGE + (-offset % PAGE):
        assert direct, "whole pages must go past the page cache (pytest's tmp_path is on a disk with direct I/O in CI)"


def test_parts_meeting_mid_page_make_the_whole_file(tmp_path: Path) -> None:
    """udata's parts need not be page multiples: two writers share the page where they meet,
    in either order (parts arrive in any order)."""
    data = random.Random(3).randbytes(3 * STAGING_BYTES)
    bounds = [0, 1_000_001, 2_500_003, len(data)]
    path = tmp_path / "data"
    path.touch()
    for start, end in reversed(list(zip(bounds, bounds[1:]))):
        write_in_blocks(path, data[start:end], start, [262_144, 1_048_576])
    assert hashlib.sha1(path.read_bytes()).hexdigest() == hashlib.sha1(data).hexdigest()


def test_a_filesystem_without_direct_io_gets_every_byte_through_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A filesystem that refuses O_DIRECT at open (EINVAL: older tmpfs, some network filesystems)."""
    real_open = os.open

    def open_without_direct(path, flags, *args):
        if flags & os.O_DIRECT:
            raise OSError(22, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", open_without_direct)
    data = random.Random(5).randbytes(2 * STAGING_BYTES + 999)
    path = tmp_path / "data"
    path.write_bytes(b"\0" * 4321)
    assert write_in_blocks(path, data, 4321, [100_000]) is False
    assert path.read_bytes()[4321:] == data


def test_a_direct_write_refused_falls_back_to_the_cache_keeping_every_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Some filesystems open with O_DIRECT but refuse the writes (EINVAL): the bytes staged and
    the ones after go through the ordinary descriptor."""
    real_pwrite, direct_fds = os.pwrite, set()

    def open_direct(path: Path) -> int | None:
        fd = direct_stand_in(path)
        direct_fds.add(fd)
        return fd

    def pwrite(fd: int, data, offset: int) -> int:
        if fd in direct_fds:
            raise OSError(22, "Invalid argument")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(uncached, "_open_direct", open_direct)
    monkeypatch.setattr(os, "pwrite", pwrite)
    data = random.Random(7).randbytes(3 * STAGING_BYTES + 5)
    path = tmp_path / "data"
    assert write_in_blocks(path, data, 0, [700_000]) is False
    assert path.read_bytes() == data


def test_write_hashed_hashes_every_block_in_order_and_raises_the_write_error() -> None:
    blocks = [random.Random(i).randbytes(HASHED_BESIDE_BYTES + i) for i in range(4)] + [b"small"]
    written = bytearray()
    crc = 0

    def add_crc(view: memoryview) -> None:
        nonlocal crc
        crc = zlib.crc32(view, crc)

    for block in blocks:
        write_hashed(written.extend, block, add_crc)
    assert bytes(written) == b"".join(blocks)
    assert crc == zlib.crc32(b"".join(blocks))

    hashed = threading.Event()

    def failing_write(view: memoryview) -> None:
        raise OSError(28, "No space left on device")

    def slow_hash(view: memoryview) -> None:
        threading.Event().wait(0.05)
        hashed.set()

    with pytest.raises(OSError, match="No space left"):
        write_hashed(failing_write, blocks[0], slow_hash)
    assert hashed.is_set()  # the hashing thread was done with the block before the error came out


@pytest.mark.parametrize("read_size", [1, PAGE - 1, 1_000_003, READ_BYTES + 1, -1])
def test_the_reader_gives_exactly_the_file(tmp_path: Path, read_size: int) -> None:
    data = random.Random(read_size).randbytes(2 * READ_BYTES + 12_345 if read_size != 1 else 3 * PAGE + 5)
    path = tmp_path / "raw.csv"
    path.write_bytes(data)
    with UncachedReader(path) as reader:
        assert reader.direct, "pytest's tmp_path is on a disk with direct I/O in CI"
        pieces = []
        while piece := reader.read(read_size):
            pieces.append(piece)
            assert reader.tell() == sum(map(len, pieces))
            if read_size < 0:
                break
        assert reader.read(10) == b""
    assert b"".join(pieces) == data


def test_arrow_reads_a_csv_through_the_reader_as_through_the_path(tmp_path: Path) -> None:
    import pyarrow.csv as pacsv

    path = tmp_path / "communes.csv"
    rows = [f"{75000 + i:05d};Commune n°{i};{i * 1.5}".replace(".", ",") for i in range(200_000)]
    path.write_bytes(("code;nom;surface\n" + "\n".join(rows) + "\n").encode("cp1252"))
    options = dict(
        read_options=pacsv.ReadOptions(encoding="cp1252", block_size=1 << 20),
        parse_options=pacsv.ParseOptions(delimiter=";"),
        convert_options=pacsv.ConvertOptions(column_types={"code": "string", "surface": "string"}),
    )
    with UncachedReader(path) as source:
        through_reader = pacsv.read_csv(source, **options)
    assert through_reader.equals(pacsv.read_csv(path, **options))
    assert through_reader.num_rows == 200_000


def test_a_direct_read_refused_goes_on_through_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = random.Random(11).randbytes(3 * READ_BYTES + 77)
    path = tmp_path / "raw.csv"
    path.write_bytes(data)
    real_preadv, calls = os.preadv, []

    def preadv(fd: int, buffers, offset: int) -> int:
        calls.append(offset)
        if len(calls) == 2:  # the second block: refused, as a filesystem without direct reads does
            raise OSError(22, "Invalid argument")
        return real_preadv(fd, buffers, offset)

    monkeypatch.setattr(uncached, "_open_direct", direct_stand_in)
    monkeypatch.setattr(os, "preadv", preadv)
    with UncachedReader(path) as reader:
        assert reader.direct
        assert reader.read(-1) == data
        assert not reader.direct
