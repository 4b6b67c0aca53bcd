"""Running an iterator a few items ahead of its consumer, in a thread.

Video decoding (PyAV's decoder and its RGB conversion) runs in C without holding the GIL, so a thread that decodes
the next frames while the main thread detects faces and runs the model uses a second core: on 2 cores the decoding
time mostly disappears behind the rest. At most ``depth`` items wait at any time, so memory stays bounded.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(items: Iterable[T], depth: int) -> Iterator[T]:
    """Yield ``items`` in order, produced by a thread that keeps at most ``depth`` of them waiting.

    An exception raised by ``items`` is raised here, at the item where it happened. When the consumer stops early
    (an exception, ``break``, ``close()``), the thread is told to stop and joined before this generator returns,
    so nothing still reads from ``items``' source (an open video file) afterwards. ``depth`` < 1 is a ValueError.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
    waiting: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            put(_Failed(error))
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = waiting.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()
