"""The ingest service's in-memory queue, bounded by count and by bytes.

A count alone does not bound memory: 10,000 messages of 1 MB each are 10 GB.
``put`` blocks while either limit would be passed (the MQTT network thread then
stops reading, so the broker keeps the rest, as it keeps them during an outage);
one item larger than the byte limit is still taken when the queue is empty, so
nothing can wedge it. Each item is charged its own size plus ``ITEM_OVERHEAD``
(the Python objects around it), so even empty payloads count.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Final, Generic, TypeVar

DEFAULT_QUEUE_BYTES: Final = 16 * 1024 * 1024
"""Bytes of queued messages before reading from the broker pauses (16 MiB)."""
ITEM_OVERHEAD: Final = 512
"""Bytes charged per queued item beyond its payload and topic: the delivery, the
parsed update and their fields (measured with tracemalloc, rounded up)."""

T = TypeVar("T")


class Full(Exception):
    """``put`` timed out: the queue stayed full."""


class Empty(Exception):
    """``get`` timed out, or ``get_nowait`` found nothing."""


class ByteBoundedQueue(Generic[T]):
    """A FIFO for one or more producers and consumers, bounded by ``max_items``
    and ``max_bytes``. Thread-safe."""

    def __init__(self, *, max_items: int, max_bytes: int = DEFAULT_QUEUE_BYTES) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be at least 1, got {max_items}")
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: collections.deque[tuple[T, int]] = collections.deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)

    def qsize(self) -> int:
        return len(self._items)

    def nbytes(self) -> int:
        """Bytes charged for what is queued now."""
        return self._bytes

    def _fits(self, size: int) -> bool:
        if not self._items:
            return True
        return len(self._items) < self.max_items and self._bytes + size <= self.max_bytes

    def put(self, item: T, size: int, *, timeout: float | None = None) -> None:
        """Queue ``item`` costing ``size`` bytes (plus ``ITEM_OVERHEAD``); block while
        it does not fit, at most ``timeout`` seconds (then ``Full``)."""
        cost = max(size, 0) + ITEM_OVERHEAD
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._not_full:
            while not self._fits(cost):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise Full
                self._not_full.wait(left)
            self._items.append((item, cost))
            self._bytes += cost
            self._not_empty.notify()

    def get(self, *, timeout: float | None = None) -> T:
        """The oldest item; block while there is none, at most ``timeout`` (then ``Empty``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._not_empty:
            while not self._items:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise Empty
                self._not_empty.wait(left)
            return self._take()

    def get_nowait(self) -> T:
        with self._lock:
            if not self._items:
                raise Empty
            return self._take()

    def _take(self) -> T:
        item, cost = self._items.popleft()
        self._bytes -= cost
        self._not_full.notify_all()
        return item
