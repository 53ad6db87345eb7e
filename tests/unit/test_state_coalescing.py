"""The state publisher's coalescing and link rules, with a recording ``Publish``.

The publisher's worker is real (a thread); only the broker is replaced by a
function that records, and can hold the worker inside a publish so that
events pile up behind it the way they do behind a slow broker.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from consultease.domain import FacultyView, Source, Status
from consultease.ingest.state_publisher import StatePublisher, state_topic
from consultease.live.listener import FacultyChanged, FacultyRemoved, Resynced


def view(faculty_id: int, version: int, status: Status = Status.AVAILABLE) -> FacultyView:
    return FacultyView(
        id=faculty_id,
        name=f"Dr. {faculty_id}",
        department="Physics",
        email=f"f{faculty_id}@example.edu",
        room=None,
        status=status,
        status_source=Source.DESK,
        desk_online=True,
        active=True,
        version=version,
        last_seen=None,
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


class Broker:
    """Records publishes; ``hold()`` makes the next publish wait until ``release()``."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._gate = threading.Event()
        self._gate.set()
        self.entered = threading.Event()

    def __call__(self, topic: str, payload: bytes) -> None:
        self.entered.set()
        self._gate.wait(10)
        with self._lock:
            self.sent.append((topic, payload))

    def hold(self) -> None:
        self.entered.clear()
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def count(self) -> int:
        with self._lock:
            return len(self.sent)

    def versions(self, faculty_id: int) -> list[int | None]:
        with self._lock:
            return [
                json.loads(payload)["version"] if payload else None
                for topic, payload in self.sent
                if topic == state_topic(faculty_id)
            ]


def wait_for(predicate: Callable[[], object], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def broker() -> Broker:
    return Broker()


@pytest.fixture
def publisher(broker: Broker) -> Iterator[StatePublisher]:
    publisher = StatePublisher(broker)
    publisher.start()
    yield publisher
    broker.release()
    publisher.close(timeout=5)


def test_changes_behind_a_slow_publish_go_out_once_per_row_newest_first_wins(
    broker: Broker, publisher: StatePublisher
) -> None:
    publisher.handle(FacultyChanged(view=view(1, 1)))
    wait_for(lambda: broker.count() == 1)
    broker.hold()
    publisher.handle(FacultyChanged(view=view(2, 1)))
    assert broker.entered.wait(10), "the worker is inside the held publish"
    for version in range(2, 50):  # a backlog of one row's versions, and of another row
        publisher.handle(FacultyChanged(view=view(1, version)))
        publisher.handle(FacultyChanged(view=view(3, version)))
    broker.release()
    wait_for(lambda: broker.versions(1)[-1:] == [49] and broker.versions(3)[-1:] == [49])
    assert broker.versions(1) == [1, 49]
    assert broker.versions(3) == [49]
    assert broker.versions(2) == [1]


def test_an_older_row_never_replaces_a_newer_one(broker: Broker, publisher: StatePublisher) -> None:
    broker.hold()
    publisher.handle(FacultyChanged(view=view(9, 1)))
    assert broker.entered.wait(10)
    publisher.handle(FacultyChanged(view=view(7, 5)))
    publisher.handle(FacultyChanged(view=view(7, 4)))
    broker.release()
    wait_for(lambda: broker.versions(7) == [5])
    time.sleep(0.1)
    assert broker.versions(7) == [5]


def test_a_version_already_published_is_not_sent_again(
    broker: Broker, publisher: StatePublisher
) -> None:
    publisher.handle(FacultyChanged(view=view(1, 3)))
    wait_for(lambda: broker.versions(1) == [3])
    publisher.handle(Resynced(views=(view(1, 3), view(2, 1))))
    wait_for(lambda: broker.versions(2) == [1])
    assert broker.versions(1) == [3]


def test_resync_clears_rows_that_are_gone_and_removal_clears_at_once(
    broker: Broker, publisher: StatePublisher
) -> None:
    publisher.handle(Resynced(views=(view(1, 1), view(2, 1), view(3, 1))))
    wait_for(lambda: broker.count() == 3)
    publisher.handle(FacultyRemoved(faculty_id=3))
    wait_for(lambda: broker.versions(3) == [1, None])
    publisher.handle(Resynced(views=(view(1, 1),)))
    wait_for(lambda: broker.versions(2) == [1, None])
    assert broker.versions(1) == [1]


def test_nothing_is_sent_while_the_link_is_down_and_everything_after_it_comes_up(
    broker: Broker, publisher: StatePublisher
) -> None:
    publisher.handle(Resynced(views=(view(1, 1), view(2, 1))))
    wait_for(lambda: broker.count() == 2)
    publisher.link_down()
    publisher.handle(FacultyChanged(view=view(1, 2)))
    publisher.handle(FacultyRemoved(faculty_id=2))
    time.sleep(0.2)
    assert broker.count() == 2, "held while the broker is away"
    publisher.link_up()
    wait_for(lambda: broker.versions(1) == [1, 2] and broker.versions(2) == [1, None])
    publisher.link_up()  # a second reconnect republishes what is current, unchanged or not
    wait_for(lambda: broker.versions(1) == [1, 2, 2])
    assert broker.versions(2) == [1, None], "a cleared row stays cleared"


def test_close_sends_what_is_due_and_stops_the_thread(broker: Broker) -> None:
    publisher = StatePublisher(broker, thread_name="ce-test-state-close")
    publisher.start()
    publisher.handle(FacultyChanged(view=view(4, 2)))
    publisher.close(timeout=5)
    assert broker.versions(4) == [2]
    assert not any(t.name == "ce-test-state-close" for t in threading.enumerate())
