"""SPEC 5.1 and 5.3: the row version and the notification live in the database."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from consultease.domain import Status, shown_status
from tests.support.factories import add_faculty, faculty_row
from tests.support.notifications import NotificationRecorder


@pytest.fixture
def listen(database_url: str) -> Iterator[NotificationRecorder]:
    recorder = NotificationRecorder(database_url)
    yield recorder
    recorder.close()


def test_insert_starts_at_version_1_and_notifies(
    db: psycopg.Connection[Any], listen: NotificationRecorder
) -> None:
    faculty_id = add_faculty(db)
    assert faculty_row(db, faculty_id)["version"] == 1
    [note] = listen.drain()
    assert (note["op"], note["id"], note["version"]) == ("INSERT", faculty_id, 1)


def test_client_cannot_choose_the_insert_version(db: psycopg.Connection[Any]) -> None:
    row = db.execute(
        "INSERT INTO faculty (name, department, email, version) "
        "VALUES ('X', 'Y', 'x@uni.example', 99) RETURNING version"
    ).fetchone()
    assert row == (1,)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("name", "Dr. Grace Hopper"),
        ("department", "Mathematics"),
        ("email", "grace@uni.example"),
        ("room", "B-2"),
        ("status", "busy"),
        ("status_source", "desk"),
        ("desk_online", True),
        ("active", False),
        ("always_available", True),
    ],
)
def test_plain_update_of_visible_column_bumps_version_once_and_notifies(
    db: psycopg.Connection[Any], listen: NotificationRecorder, column: str, value: object
) -> None:
    faculty_id = add_faculty(db)
    listen.drain()
    before = faculty_row(db, faculty_id)
    db.execute(f"UPDATE faculty SET {column} = %s WHERE id = %s", (value, faculty_id))
    after = faculty_row(db, faculty_id)
    assert after["version"] == before["version"] + 1
    assert after["updated_at"] > before["updated_at"]
    [note] = listen.drain()
    assert (note["op"], note["id"], note["version"]) == ("UPDATE", faculty_id, after["version"])


@pytest.mark.parametrize(
    "assignment",
    [
        "last_seen = now()",
        "desk_version = 42",
        "desk_ts = now()",
        "last_seen = now(), desk_version = 7, desk_ts = now()",
        "status = status",  # unchanged value
    ],
)
def test_bookkeeping_update_bumps_nothing_and_notifies_nothing(
    db: psycopg.Connection[Any], listen: NotificationRecorder, assignment: str
) -> None:
    faculty_id = add_faculty(db)
    listen.drain()
    before = faculty_row(db, faculty_id)
    db.execute(f"UPDATE faculty SET {assignment} WHERE id = %s", (faculty_id,))
    after = faculty_row(db, faculty_id)
    assert after["version"] == before["version"]
    assert after["updated_at"] == before["updated_at"]
    assert listen.drain() == []


def test_client_cannot_set_version_by_hand(
    db: psycopg.Connection[Any], listen: NotificationRecorder
) -> None:
    faculty_id = add_faculty(db)
    listen.drain()
    db.execute("UPDATE faculty SET version = 1000 WHERE id = %s", (faculty_id,))
    assert faculty_row(db, faculty_id)["version"] == 1
    db.execute("UPDATE faculty SET version = 1000, status = 'busy' WHERE id = %s", (faculty_id,))
    assert faculty_row(db, faculty_id)["version"] == 2
    assert [n["version"] for n in listen.drain()] == [2]


def test_every_change_in_a_sequence_bumps_by_exactly_one(
    db: psycopg.Connection[Any], listen: NotificationRecorder
) -> None:
    faculty_id = add_faculty(db)
    listen.drain()
    for status in ["available", "busy", "away", "available", "busy"]:
        db.execute("UPDATE faculty SET status = %s WHERE id = %s", (status, faculty_id))
    assert faculty_row(db, faculty_id)["version"] == 6
    assert [n["version"] for n in listen.drain()] == [2, 3, 4, 5, 6]


def test_delete_notifies(db: psycopg.Connection[Any], listen: NotificationRecorder) -> None:
    faculty_id = add_faculty(db)
    listen.drain()
    db.execute("DELETE FROM faculty WHERE id = %s", (faculty_id,))
    [note] = listen.drain()
    assert (note["op"], note["id"], note["version"]) == ("DELETE", faculty_id, 1)


def test_notification_only_on_commit(database_url: str, listen: NotificationRecorder) -> None:
    with psycopg.connect(database_url) as conn:
        faculty_id = add_faculty(conn)
        conn.commit()
        listen.drain()
        conn.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (faculty_id,))
        assert listen.drain(timeout=0.2) == []
        conn.rollback()
    assert listen.drain(timeout=0.2) == []


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("status", "sleeping"),
        ("status_source", "robot"),
        ("desk_version", -1),
        ("name", "   "),
        ("email", "not-an-email"),
    ],
)
def test_constraints_refuse_bad_values(
    db: psycopg.Connection[Any], column: str, value: object
) -> None:
    faculty_id = add_faculty(db)
    with pytest.raises(psycopg.errors.IntegrityError):
        db.execute(f"UPDATE faculty SET {column} = %s WHERE id = %s", (value, faculty_id))


def test_email_is_unique_case_insensitively(db: psycopg.Connection[Any]) -> None:
    add_faculty(db, email="Ada@Uni.example")
    with pytest.raises(psycopg.errors.UniqueViolation):
        add_faculty(db, email="ada@uni.EXAMPLE")


def test_sql_and_python_agree_on_the_shown_status_for_every_combination(
    db: psycopg.Connection[Any],
) -> None:
    for status, online, always in itertools.product(Status, (True, False), (True, False)):
        row = db.execute(
            "SELECT faculty_shown_status_v1(%s, %s, %s)", (status.value, online, always)
        ).fetchone()
        assert row == (shown_status(status, desk_online=online, always_available=always),)


def test_status_since_moves_exactly_when_the_shown_status_changes(
    db: psycopg.Connection[Any],
) -> None:
    faculty_id = add_faculty(db, status="away", desk_online=True)
    inserted = faculty_row(db, faculty_id)
    assert inserted["status_since"] == inserted["created_at"]

    def since_after(assignment: str) -> object:
        db.execute(f"UPDATE faculty SET {assignment} WHERE id = %s", (faculty_id,))
        return faculty_row(db, faculty_id)["status_since"]

    start = inserted["status_since"]
    assert since_after("room = 'Z-9'") == start, "a room edit is not a status change"
    assert since_after("last_seen = now()") == start
    available = since_after("status = 'available'")
    assert available > start
    assert since_after("desk_online = false") > available  # now offline
    offline = faculty_row(db, faculty_id)["status_since"]
    assert since_after("status = 'busy'") == offline, "still shown offline"
    assert since_after("always_available = true") > offline  # shown available again
    flagged = faculty_row(db, faculty_id)["status_since"]
    assert since_after("desk_online = true, status = 'away'") == flagged, "still available"
    row = faculty_row(db, faculty_id)
    assert row["version"] == inserted["version"] + 6


def test_a_client_cannot_set_status_since_by_hand(db: psycopg.Connection[Any]) -> None:
    faculty_id = add_faculty(db)
    before = faculty_row(db, faculty_id)["status_since"]
    db.execute(
        "UPDATE faculty SET status_since = now() - interval '3 days' WHERE id = %s", (faculty_id,)
    )
    assert faculty_row(db, faculty_id)["status_since"] == before
