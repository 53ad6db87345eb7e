"""The ingest queue is bounded by bytes as well as count, and a refused payload
is cut to what ``ingest_rejection`` keeps before it is queued (issue 13, item 4)."""

from __future__ import annotations

import threading

import pytest

from consultease.domain import MAX_PAYLOAD_BYTES, Rejection, RejectReason
from consultease.ingest.buffer import ITEM_OVERHEAD, ByteBoundedQueue, Empty, Full
from consultease.payloads import parse


def test_put_refuses_an_item_that_would_pass_the_byte_limit() -> None:
    q: ByteBoundedQueue[str] = ByteBoundedQueue(max_items=100, max_bytes=3 * (1000 + ITEM_OVERHEAD))
    for name in "abc":
        q.put(name, 1000, timeout=0)
    assert q.nbytes() == 3 * (1000 + ITEM_OVERHEAD)
    with pytest.raises(Full):
        q.put("d", 1, timeout=0)
    assert q.get(timeout=0) == "a"
    q.put("d", 1000, timeout=0)
    assert [q.get_nowait() for _ in range(3)] == ["b", "c", "d"]
    assert q.nbytes() == 0


def test_put_refuses_past_the_count_limit_even_for_tiny_items() -> None:
    q: ByteBoundedQueue[int] = ByteBoundedQueue(max_items=2, max_bytes=10**9)
    q.put(1, 0, timeout=0)
    q.put(2, 0, timeout=0)
    with pytest.raises(Full):
        q.put(3, 0, timeout=0)


def test_one_item_bigger_than_the_limit_still_passes_an_empty_queue() -> None:
    q: ByteBoundedQueue[str] = ByteBoundedQueue(max_items=10, max_bytes=100)
    q.put("huge", 10_000, timeout=0)
    with pytest.raises(Full):
        q.put("next", 0, timeout=0)
    assert q.get(timeout=0) == "huge"


def test_a_blocked_put_goes_on_once_the_consumer_takes() -> None:
    q: ByteBoundedQueue[int] = ByteBoundedQueue(max_items=1, max_bytes=10**6)
    q.put(1, 10, timeout=0)
    done = threading.Event()

    def produce() -> None:
        q.put(2, 10)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    assert not done.wait(0.05)
    assert q.get() == 1
    producer.join(5)
    assert done.is_set() and q.get_nowait() == 2


def test_empty_queue_raises_empty() -> None:
    q: ByteBoundedQueue[int] = ByteBoundedQueue(max_items=1)
    with pytest.raises(Empty):
        q.get_nowait()
    with pytest.raises(Empty):
        q.get(timeout=0)


@pytest.mark.parametrize(
    "payload",
    [b"x" * (1024 * 1024), b"{" + b" " * 10_000, b"\xff" * 5000],
)
def test_a_refused_payload_keeps_only_what_the_rejection_table_stores(payload: bytes) -> None:
    item = parse("consultease/faculty/4/status", payload)
    assert isinstance(item, Rejection)
    assert item.reason is RejectReason.OVERSIZED
    assert item.payload == payload[:MAX_PAYLOAD_BYTES]


def test_a_small_refused_payload_is_kept_whole() -> None:
    item = parse("consultease/faculty/4/status", b"not json")
    assert isinstance(item, Rejection) and item.payload == b"not json"
