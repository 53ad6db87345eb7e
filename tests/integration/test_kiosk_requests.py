"""A kiosk's requests with a real kiosk login: what it may do, and its watcher."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from consultease.errors import NotFound, ValidationError
from consultease.live.consultations import (
    ConsultationChanged,
    ConsultationsResynced,
    ConsultationWatcher,
    WatcherEvent,
)
from consultease.live.requests import KioskRequests, NewRequest
from tests.support.factories import add_faculty
from tests.support.roles import login_in


def request_to(faculty_id: int, name: str = "Sam Student") -> NewRequest:
    return NewRequest(
        faculty_id=faculty_id,
        student_name=name,
        student_id="2021-0042",
        course_code="CS101",
        message="Question about assignment 3",
    )


class Events:
    def __init__(self) -> None:
        self.seen: list[WatcherEvent] = []
        self._lock = threading.Lock()

    def __call__(self, event: WatcherEvent) -> None:
        with self._lock:
            self.seen.append(event)

    def statuses(self, consultation_id: int) -> list[str]:
        with self._lock:
            return [
                e.view.status
                for e in self.seen
                if isinstance(e, ConsultationChanged) and e.view.id == consultation_id
            ]

    def wait_for(self, predicate: Any, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError(f"timed out; events: {self.seen}")


def test_a_kiosk_login_creates_reads_and_cancels_its_own_request_only(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    free = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    other = db.execute(
        "INSERT INTO consultation (faculty_id, student_name, message)"
        " VALUES (%s, 'Someone Else', 'Made elsewhere') RETURNING id",
        (free,),
    ).fetchone()
    assert other is not None
    with login_in(database_url, "consultease_kiosk") as kiosk_url:
        requests = KioskRequests(kiosk_url)
        try:
            made = requests.create(request_to(free))
            assert (made.status, made.faculty_name, made.room) == (
                "pending",
                "Dr. Ada Lovelace",
                "CS-101",
            )
            assert made.waited.total_seconds() >= 0
            with pytest.raises(NotFound):
                requests.get(int(other[0]))  # another login's request is not visible
            cancelled = requests.cancel(made.id)
            assert (cancelled.status, cancelled.closed_by) == ("cancelled", "student")
            assert cancelled.version == made.version + 1
        finally:
            requests.close()


def test_a_request_to_a_lecturer_who_is_not_available_is_refused_in_words(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    away = add_faculty(db, name="Dr. Alan Turing", status="away", desk_online=True)
    requests = KioskRequests(database_url)
    try:
        with pytest.raises(ValidationError, match=r"Dr\. Alan Turing is away"):
            requests.create(request_to(away))
    finally:
        requests.close()
    assert db.execute("SELECT count(*) FROM consultation").fetchone() == (0,)


def test_a_card_is_found_by_a_kiosk_login_and_an_unknown_one_is_none(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    db.execute(
        "INSERT INTO student (student_id, name, course_code, rfid_uid)"
        " VALUES ('2021-0042', 'Sam Student', 'BSCS', '0004567891')"
    )
    with login_in(database_url, "consultease_kiosk") as kiosk_url:
        requests = KioskRequests(kiosk_url)
        try:
            holder = requests.card_holder("0004567891")
            assert holder is not None
            assert (holder.student_name, holder.student_id, holder.course_code) == (
                "Sam Student",
                "2021-0042",
                "BSCS",
            )
            assert requests.card_holder("1234567890") is None
        finally:
            requests.close()


def test_the_watcher_of_a_kiosk_login_follows_its_request_to_the_end(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    free = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    with login_in(database_url, "consultease_kiosk") as kiosk_url:
        requests = KioskRequests(kiosk_url)
        events = Events()
        watcher = ConsultationWatcher(kiosk_url)
        watcher.subscribe(events)
        try:
            watcher.start()
            events.wait_for(lambda: watcher.connected)
            made = requests.create(request_to(free))
            watcher.watch(made.id)
            events.wait_for(lambda: events.statuses(made.id) == ["pending"])
            # The ingest service answers for the desk, and later the admin completes it.
            db.execute("UPDATE consultation SET status = 'accepted' WHERE id = %s", (made.id,))
            events.wait_for(lambda: events.statuses(made.id)[-1:] == ["accepted"])
            watcher.unwatch(made.id)
            db.execute(
                "UPDATE consultation SET status = 'completed', closed_by = 'admin' WHERE id = %s",
                (made.id,),
            )
            time.sleep(0.3)
            assert events.statuses(made.id) == ["pending", "accepted"]  # no longer followed
        finally:
            watcher.close()
            requests.close()
        assert not watcher.connected


def test_a_watcher_of_every_request_starts_from_the_open_ones_and_reports_new_ones(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    free = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    open_before = db.execute(
        "INSERT INTO consultation (faculty_id, student_name, message)"
        " VALUES (%s, 'First Student', 'Early') RETURNING id",
        (free,),
    ).fetchone()
    assert open_before is not None
    events = Events()
    with ConsultationWatcher(database_url, follow_all=True) as watcher:
        watcher.subscribe(events)
        events.wait_for(lambda: watcher.connected)
        # Subscribed after start: a resync comes on the next reconnect; rows change live.
        row = db.execute(
            "INSERT INTO consultation (faculty_id, student_name, message)"
            " VALUES (%s, 'Second Student', 'Later') RETURNING id",
            (free,),
        ).fetchone()
        assert row is not None
        events.wait_for(lambda: events.statuses(int(row[0])) == ["pending"])
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND datname = current_database()",
            (watcher.application_name,),
        )
        events.wait_for(
            lambda: any(
                isinstance(e, ConsultationsResynced)
                and {v.id for v in e.views} == {int(open_before[0]), int(row[0])}
                for e in events.seen
            ),
            timeout=5.0,
        )
