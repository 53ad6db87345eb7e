"""Rows for tests, inserted with plain SQL so tests do not depend on admin code."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from consultease.domain import DeskUpdate, Status, UpdateKind


def add_faculty(
    conn: psycopg.Connection[Any],
    *,
    name: str = "Dr. Ada Lovelace",
    department: str = "Computer Science",
    email: str | None = None,
    room: str | None = "CS-101",
    status: str = "away",
    desk_online: bool = False,
) -> int:
    row = conn.execute(
        "INSERT INTO faculty (name, department, email, room, status, desk_online) "
        "VALUES (%s, %s, coalesce(%s, 'f' || nextval(pg_get_serial_sequence('faculty','id'))"
        " || '@uni.example'), %s, %s, %s) RETURNING id",
        (name, department, email, room, status, desk_online),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_many_faculty(conn: psycopg.Connection[Any], count: int) -> list[int]:
    return [
        add_faculty(conn, name=f"Lecturer {i:04d}", email=f"lecturer{i}@uni.example")
        for i in range(count)
    ]


def status_update(
    faculty_id: int,
    status: Status | str,
    *,
    version: int | None = None,
    ts_ms: int | None = None,
) -> DeskUpdate:
    return DeskUpdate(
        faculty_id=faculty_id,
        kind=UpdateKind.STATUS,
        status=Status(status),
        version=version,
        ts=datetime.fromtimestamp(ts_ms / 1000, UTC) if ts_ms is not None else None,
        topic=f"consultease/faculty/{faculty_id}/status",
        payload=b"{}",
    )


def faculty_row(conn: psycopg.Connection[Any], faculty_id: int) -> dict[str, Any]:
    cur = conn.execute("SELECT * FROM faculty WHERE id = %s", (faculty_id,))
    row = cur.fetchone()
    assert row is not None, f"no faculty {faculty_id}"
    assert cur.description is not None
    return dict(zip([c.name for c in cur.description], row, strict=True))
