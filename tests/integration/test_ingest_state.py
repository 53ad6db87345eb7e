"""The state publisher fed by a real FacultyListener on a real database (SPEC 3.4).

Publishing is recorded instead of sent, so these tests pin down which
retained messages go out for which committed change; the round trip through
a broker is in test_ingest.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from consultease.db.readmodel import load_views
from consultease.ingest.state_publisher import StatePublisher, state_payload, state_topic
from consultease.live.listener import FacultyListener
from tests.support.factories import add_faculty
from tests.support.ingest import wait_until


class Recorder:
    """A ``Publish`` that keeps what would have been sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent: list[tuple[str, bytes]] = []

    def __call__(self, topic: str, payload: bytes) -> None:
        with self._lock:
            self.sent.append((topic, payload))

    def last(self, faculty_id: int) -> bytes | None:
        with self._lock:
            for topic, payload in reversed(self.sent):
                if topic == state_topic(faculty_id):
                    return payload
        return None

    def state(self, faculty_id: int) -> dict[str, Any] | None:
        payload = self.last(faculty_id)
        return json.loads(payload) if payload else None

    def count(self, faculty_id: int) -> int:
        with self._lock:
            return sum(1 for topic, _ in self.sent if topic == state_topic(faculty_id))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def publisher(database_url: str, recorder: Recorder) -> Iterator[StatePublisher]:
    counted: list[int] = []
    publisher = StatePublisher(recorder, on_published=counted.append)
    listener = FacultyListener(
        database_url, poll_interval=0.1, application_name="ce-test-state-publisher"
    )
    publisher.attach(listener)
    listener.start()
    yield publisher
    publisher.close(timeout=2)
    assert sum(counted) == len(recorder.sent)


def test_on_start_every_active_faculty_state_is_published(
    db: psycopg.Connection[Any], database_url: str, recorder: Recorder
) -> None:
    first = add_faculty(db, status="busy", desk_online=True)
    second = add_faculty(db)
    gone = add_faculty(db)
    db.execute("UPDATE faculty SET active = false WHERE id = %s", (gone,))
    publisher = StatePublisher(recorder)
    listener = FacultyListener(database_url, application_name="ce-test-state-start")
    publisher.attach(listener)
    listener.start()
    try:
        wait_until(lambda: recorder.last(first) and recorder.last(second), timeout=5)
    finally:
        publisher.close(timeout=2)
    [view] = load_views(db, [first])
    assert recorder.last(first) == state_payload(view)
    assert recorder.state(first) == {
        "status": "busy",
        "desk_online": True,
        "version": view.version,
        "updated_at": view.updated_at.isoformat(),
        "always_available": False,
    }
    assert recorder.count(gone) == 0, "an inactive faculty has no state to show"


def test_every_committed_change_is_published_from_any_source(
    db: psycopg.Connection[Any], recorder: Recorder, publisher: StatePublisher
) -> None:
    faculty_id = add_faculty(db, status="away")
    wait_until(lambda: recorder.state(faculty_id), timeout=5, message="the first state")
    db.execute("UPDATE faculty SET status = 'available' WHERE id = %s", (faculty_id,))
    wait_until(
        lambda: (recorder.state(faculty_id) or {}).get("status") == "available",
        timeout=5,
        message="the admin's change",
    )
    db.execute("UPDATE faculty SET desk_online = true WHERE id = %s", (faculty_id,))
    wait_until(
        lambda: (recorder.state(faculty_id) or {}).get("desk_online") is True,
        timeout=5,
        message="the desk coming online",
    )
    state = recorder.state(faculty_id)
    assert state is not None and state["version"] == 3


def test_bookkeeping_alone_publishes_nothing(
    db: psycopg.Connection[Any], recorder: Recorder, publisher: StatePublisher
) -> None:
    faculty_id = add_faculty(db)
    wait_until(lambda: recorder.count(faculty_id) == 1, timeout=5, message="the first state")
    db.execute(
        "UPDATE faculty SET last_seen = now(), desk_version = 9 WHERE id = %s", (faculty_id,)
    )
    db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (faculty_id,))
    wait_until(
        lambda: (recorder.state(faculty_id) or {}).get("version") == 2,
        timeout=5,
        message="the status change",
    )
    assert recorder.count(faculty_id) == 2, "the bookkeeping update sent nothing"


def test_removed_and_deactivated_faculty_are_cleared(
    db: psycopg.Connection[Any], recorder: Recorder, publisher: StatePublisher
) -> None:
    deactivated = add_faculty(db)
    deleted = add_faculty(db)
    wait_until(
        lambda: recorder.last(deactivated) and recorder.last(deleted),
        timeout=5,
        message="their states",
    )
    db.execute("UPDATE faculty SET active = false WHERE id = %s", (deactivated,))
    db.execute("DELETE FROM faculty WHERE id = %s", (deleted,))
    wait_until(
        lambda: recorder.last(deactivated) == b"" and recorder.last(deleted) == b"",
        timeout=5,
        message="empty retained payloads",
    )


def test_an_always_available_lecturer_is_published_as_available_with_the_flag(
    db: psycopg.Connection[Any], recorder: Recorder, publisher: StatePublisher
) -> None:
    faculty_id = add_faculty(db, status="away", desk_online=False)
    wait_until(lambda: recorder.state(faculty_id), timeout=5, message="the first state")
    db.execute("UPDATE faculty SET always_available = true WHERE id = %s", (faculty_id,))
    wait_until(
        lambda: (recorder.state(faculty_id) or {}).get("always_available") is True,
        timeout=5,
        message="the flag",
    )
    state = recorder.state(faculty_id)
    assert state is not None
    # What the board shows, while desk_online keeps telling the truth about the desk.
    assert (state["status"], state["desk_online"], state["version"]) == ("available", False, 2)


def test_several_changes_of_a_row_committed_together_are_published_once(
    db: psycopg.Connection[Any], recorder: Recorder, publisher: StatePublisher
) -> None:
    faculty_id = add_faculty(db, status="away")
    other = add_faculty(db, status="away")
    wait_until(
        lambda: recorder.count(faculty_id) == 1 and recorder.count(other) == 1,
        timeout=5,
        message="the first states",
    )
    with db.transaction():  # one batch of the ingest service: one commit, many rows
        for status in ("available", "busy", "away", "busy"):
            db.execute("UPDATE faculty SET status = %s WHERE id = %s", (status, faculty_id))
        db.execute("UPDATE faculty SET status = 'available' WHERE id = %s", (other,))
    wait_until(
        lambda: (
            (recorder.state(faculty_id) or {}).get("version") == 5
            and (recorder.state(other) or {}).get("version") == 2
        ),
        timeout=5,
        message="the committed rows",
    )
    assert recorder.count(faculty_id) == 2, "four changes in one commit: one state message"
    assert recorder.count(other) == 2
