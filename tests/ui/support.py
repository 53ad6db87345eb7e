"""Helpers for the kiosk tests: views to feed models, rows to seed, a running kiosk."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from pytestqt.qtbot import QtBot

from consultease.domain import FacultyView, Source, Status
from kiosk_ui.window import LISTENER_NAME, KioskWindow
from tests.support.factories import add_faculty

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def view(
    faculty_id: int,
    name: str,
    department: str = "Computer Science",
    *,
    status: str = "available",
    desk_online: bool = True,
    version: int = 1,
    room: str | None = "CS-101",
    active: bool = True,
    updated_at: datetime = T0,
    always_available: bool = False,
    status_since: datetime | None = None,
) -> FacultyView:
    return FacultyView(
        id=faculty_id,
        name=name,
        department=department,
        email=f"f{faculty_id}@uni.example",
        room=room,
        status=Status(status),
        status_source=Source.DESK,
        desk_online=desk_online,
        active=active,
        version=version,
        last_seen=None,
        updated_at=updated_at,
        always_available=always_available,
        status_since=status_since,
    )


PEOPLE: dict[str, list[tuple[str, str]]] = {
    "Computer Science": [
        ("Dr. Ada Lovelace", "CS-101"),
        ("Dr. Alan Turing", "CS-102"),
        ("Dr. Grace Hopper", "CS-103"),
        ("Dr. Barbara Liskov", "CS-201"),
        ("Dr. Donald Knuth", "CS-202"),
        ("Dr. Frances Allen", "CS-203"),
        ("Dr. Leslie Lamport", "CS-204"),
        ("Dr. Radia Perlman", "CS-205"),
    ],
    "Mathematics": [
        ("Dr. Emmy Noether", "M-110"),
        ("Dr. Srinivasa Ramanujan", "M-111"),
        ("Dr. Sofia Kovalevskaya", "M-112"),
        ("Dr. Kurt Gödel", "M-113"),
        ("Dr. Maryam Mirzakhani", "M-210"),
        ("Dr. Katherine Johnson", "M-211"),
        ("Dr. Terence Tao", "M-212"),
    ],
    "Physics": [
        ("Dr. Marie Curie", "P-001"),
        ("Dr. Richard Feynman", "P-002"),
        ("Dr. Lise Meitner", "P-003"),
        ("Dr. Chien-Shiung Wu", "P-004"),
        ("Dr. Paul Dirac", "P-101"),
        ("Dr. Vera Rubin", "P-102"),
        ("Dr. Subrahmanyan Chandrasekhar", "P-103"),
        ("Dr. Jocelyn Bell Burnell", "P-104"),
    ],
    "Electrical Engineering": [
        ("Dr. Nikola Tesla", "EE-310"),
        ("Dr. Hedy Lamarr", "EE-311"),
        ("Dr. Claude Shannon", "EE-312"),
        ("Dr. Mildred Dresselhaus", "EE-313"),
        ("Dr. Oliver Heaviside", "EE-314"),
        ("Dr. Edith Clarke", "EE-315"),
        ("Dr. José Moura", "EE-316"),
    ],
}
"""Thirty faculty over four departments, with rooms, for seeding and the screenshot."""

MIXED_STATES: tuple[tuple[str, bool], ...] = (
    ("available", True),
    ("busy", True),
    ("available", True),
    ("away", True),
    ("busy", False),  # offline desk: shown as offline whatever the status
    ("available", True),
    ("away", True),
)


def seed_board(db: psycopg.Connection[Any], count: int = 30) -> dict[str, int]:
    """Up to ``count`` realistic faculty over 4 departments, in mixed states.

    Returns name -> id. ``updated_at`` is spread over the last two hours.
    """
    ids: dict[str, int] = {}
    people = [(dept, name, room) for dept, rows in PEOPLE.items() for name, room in rows]
    for position, (department, name, room) in enumerate(people[:count]):
        status, online = MIXED_STATES[position % len(MIXED_STATES)]
        faculty_id = add_faculty(
            db, name=name, department=department, room=room, status=status, desk_online=online
        )
        with db.transaction():
            # The version trigger keeps updated_at on a bookkeeping-only update; as a
            # superuser we step around it to make the "updated … ago" texts varied.
            db.execute("SET LOCAL session_replication_role = replica")
            db.execute(
                "UPDATE faculty SET updated_at = now() - make_interval(mins => %s) WHERE id = %s",
                ((position * 37) % 150, faculty_id),
            )
        ids[name] = faculty_id
    return ids


def listener_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == LISTENER_NAME and t.is_alive()]


@contextmanager
def running_kiosk(
    qtbot: QtBot, database_url: str, *, size: tuple[int, int] = (1024, 600), **options: Any
) -> Iterator[KioskWindow]:
    """A shown kiosk whose first resync has arrived; closed (listener stopped) afterwards."""
    window = KioskWindow(database_url, **options)
    try:
        window.resize(*size)
        window.start()
        window.show()
        qtbot.waitExposed(window)
        qtbot.waitUntil(lambda: window.model.loaded and window.board.live, timeout=5000)
        yield window
    finally:
        window.close()
        window.deleteLater()
        assert not window.listener.connected
        assert listener_threads() == [], "the listener thread outlived the window"


def terminate_listener(db: psycopg.Connection[Any]) -> int:
    """Kill the kiosk's LISTEN connection on the server, as a network failure would."""
    row = db.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = %s AND datname = current_database()",
        (LISTENER_NAME,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def stale(minutes: int) -> datetime:
    return T0 - timedelta(minutes=minutes)


def seed_roster(db: psycopg.Connection[Any], count: int = 241) -> dict[str, int]:
    """The campus roster of ``consultease.tools.seed`` (241 faculty, 12 departments, the
    longest names); name -> id."""
    from consultease.tools.seed import campus_roster

    ids: dict[str, int] = {}
    with db.cursor() as cur:
        for entry in campus_roster(count):
            row = cur.execute(
                "INSERT INTO faculty (name, department, email, room, status, desk_online,"
                " always_available) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    entry.name,
                    entry.department,
                    entry.email,
                    entry.room,
                    entry.status,
                    entry.desk_online,
                    entry.always_available,
                ),
            ).fetchone()
            assert row is not None
            ids[entry.name] = int(row[0])
    return ids
