"""The threads that overlap the cleaning's stages (lib/streams.py): what goes in comes out,
in order, and an error in a thread reaches the caller."""

from __future__ import annotations

import pytest

from dinum_pipelines.lib.streams import BackgroundSink, prefetched


def test_prefetched_batches_come_in_order_and_an_error_reaches_the_caller() -> None:
    assert list(prefetched(iter(range(10)), depth=1)) == list(range(10))

    def failing():
        yield 1
        raise ValueError("cut short")

    with pytest.raises(ValueError, match="cut short"):
        list(prefetched(failing()))


def test_a_sink_consumes_every_item_in_order_before_close_returns() -> None:
    seen: list[int] = []
    sink = BackgroundSink(seen.append, depth=1)
    for item in range(100):
        sink.put(item)
    sink.close()
    assert seen == list(range(100))


def test_a_sink_error_is_raised_by_the_next_put_or_by_close_and_later_items_are_dropped() -> None:
    seen: list[int] = []

    def consume(item: int) -> None:
        if item == 3:
            raise OSError("disk full")
        seen.append(item)

    sink = BackgroundSink(consume, depth=1)
    with pytest.raises(OSError, match="disk full"):
        for item in range(1000):
            sink.put(item)
    with pytest.raises(OSError, match="disk full"):
        sink.close()
    assert seen == [0, 1, 2]

    quiet = BackgroundSink(consume)
    quiet.put(3)
    quiet.close(raise_error=False)  # the caller is already failing: its own error is the one to see
