"""fe_adapter.data.ahead.read_ahead: the items in order, produced in a thread at most ``depth`` ahead, errors raised
where they happened, the thread stopped when the consumer stops."""

from __future__ import annotations

import threading
import time

import pytest

from fe_adapter.data.ahead import read_ahead


def _counted(count: int, produced: list[int], delay: float = 0.0, fail_at: int | None = None):
    for item in range(count):
        if delay:
            time.sleep(delay)
        if item == fail_at:
            raise RuntimeError(f"item {item} is unreadable")
        produced.append(item)
        yield item


def test_items_come_in_order_and_at_most_depth_ahead():
    produced: list[int] = []
    seen, ahead = [], []
    for item in read_ahead(_counted(50, produced), depth=3):
        time.sleep(0.002)  # a slower consumer: the producer fills the queue
        ahead.append(len(produced) - len(seen))
        seen.append(item)
    assert seen == list(range(50))
    # waiting in the queue (3), the one being handed over, and the one produced and blocked in put
    assert max(ahead) <= 3 + 2, ahead


def test_the_source_runs_alongside_the_consumer():
    """While the consumer still holds the first item, the thread makes the next ones on its own (run in turn, no
    item would be made until the consumer asks). No clock limit: the wait is only a guard against hanging."""
    produced: list[int] = []
    items = read_ahead(_counted(10, produced), depth=2)
    assert next(items) == 0
    deadline = time.monotonic() + 30
    while len(produced) < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert produced[:3] == [0, 1, 2]
    items.close()


def test_an_error_is_raised_at_its_item():
    seen = []
    with pytest.raises(RuntimeError, match="item 4 is unreadable"):
        for item in read_ahead(_counted(10, [], fail_at=4), depth=2):
            seen.append(item)
    assert seen == [0, 1, 2, 3]


def test_stopping_early_stops_the_thread():
    produced: list[int] = []
    before = threading.active_count()
    items = read_ahead(_counted(1000, produced, delay=0.001), depth=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()  # as a break or an exception in the consumer's loop does
    assert threading.active_count() == before
    stopped_at = len(produced)
    time.sleep(0.05)
    assert len(produced) == stopped_at <= 3 + 2 + 1


@pytest.mark.parametrize("depth", [0, -1, 1.5, True])
def test_depth_must_be_a_positive_integer(depth):
    with pytest.raises(ValueError, match="depth must be an integer >= 1"):
        next(read_ahead(iter([1]), depth))
