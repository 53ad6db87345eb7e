"""An ingest database login speaks for desks only (sql/006_hardening.sql):
it may not make a status look set by an admin, in the row or in the audit trail."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.support.factories import add_faculty, faculty_row
from tests.support.roles import login_in


def test_an_ingest_login_cannot_pose_as_an_admin(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db)
    db.execute("UPDATE faculty SET status_source = 'desk' WHERE id = %s", (faculty_id,))
    before = faculty_row(db, faculty_id)
    with (
        login_in(database_url, "consultease_ingest") as ingest_url,
        psycopg.connect(ingest_url, autocommit=True) as conn,
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="status_source"):
            conn.execute(
                "UPDATE faculty SET status = 'busy', status_source = 'admin' WHERE id = %s",
                (faculty_id,),
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="admin"):
            conn.execute(
                "INSERT INTO status_change (faculty_id, old_status, new_status,"
                " old_desk_online, new_desk_online, source)"
                " VALUES (%s, 'away', 'busy', false, false, 'admin')",
                (faculty_id,),
            )
        # What a desk update writes is still allowed.
        conn.execute(
            "UPDATE faculty SET status = 'available', status_source = 'desk' WHERE id = %s",
            (faculty_id,),
        )
        conn.execute(
            "INSERT INTO status_change (faculty_id, old_status, new_status,"
            " old_desk_online, new_desk_online, source)"
            " VALUES (%s, 'away', 'available', false, false, 'desk')",
            (faculty_id,),
        )
    row = faculty_row(db, faculty_id)
    assert (row["status"], row["status_source"], row["version"]) == (
        "available",
        "desk",
        before["version"] + 1,
    )
    sources = db.execute(
        "SELECT source FROM status_change WHERE faculty_id = %s", (faculty_id,)
    ).fetchall()
    assert sources == [("desk",)]


def test_an_admin_login_still_sets_the_status_as_admin(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db)
    db.execute("UPDATE faculty SET status_source = 'desk' WHERE id = %s", (faculty_id,))
    with (
        login_in(database_url, "consultease_admin") as admin_url,
        psycopg.connect(admin_url, autocommit=True) as conn,
    ):
        conn.execute(
            "UPDATE faculty SET status = 'busy', status_source = 'admin' WHERE id = %s",
            (faculty_id,),
        )
        conn.execute(
            "INSERT INTO status_change (faculty_id, old_status, new_status,"
            " old_desk_online, new_desk_online, source)"
            " VALUES (%s, 'away', 'busy', false, false, 'admin')",
            (faculty_id,),
        )
    assert faculty_row(db, faculty_id)["status_source"] == "admin"
