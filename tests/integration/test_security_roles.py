"""Least-privilege database roles (sql/003_roles.sql), checked on the real server.

Roles are cluster-wide and tests may run at once, so every LOGIN role a test
makes has a unique name and is dropped at the end; the three group roles
themselves are shared and never dropped.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import sql

from consultease.admin.accounts import AdminAccounts
from consultease.admin.faculty import FacultyAdmin
from consultease.db.migrate import upgrade
from consultease.domain import Status, Verdict
from consultease.ingest.store import Store
from tests.support.factories import add_faculty, faculty_row, status_update
from tests.support.notifications import NotificationRecorder
from tests.support.pg import with_database
from tests.support.roles import login_in, url_as

GROUPS = ("consultease_ingest", "consultease_kiosk", "consultease_admin")


@contextmanager
def acting_as(database_url: str, group: str) -> Iterator[psycopg.Connection[Any]]:
    """A superuser connection narrowed to ``group`` with SET ROLE."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(group)))
        yield conn


def test_the_three_roles_exist_as_nologin_groups(db: psycopg.Connection[Any]) -> None:
    rows = dict(
        db.execute(
            "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY(%s)", (list(GROUPS),)
        ).fetchall()
    )
    assert rows == dict.fromkeys(GROUPS, False)


# -- kiosk -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE faculty SET status = 'busy'",
        "UPDATE faculty SET name = 'Mallory'",
        "INSERT INTO faculty (name, department, email) VALUES ('M', 'X', 'm@x.example')",
        "DELETE FROM faculty",
        "INSERT INTO status_change (faculty_id, old_status, new_status, old_desk_online,"
        " new_desk_online, source) VALUES (1, 'away', 'busy', false, false, 'admin')",
        "SELECT * FROM admin_user",
        "SELECT * FROM audit_log",
    ],
)
def test_kiosk_role_may_change_nothing_and_read_no_accounts(
    database_url: str, db: psycopg.Connection[Any], statement: str
) -> None:
    add_faculty(db)
    before = faculty_row(db, 1)
    with (
        acting_as(database_url, "consultease_kiosk") as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(statement)
    assert faculty_row(db, 1) == before


def test_kiosk_role_reads_faculty_and_hears_notifications(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db, name="Dr. Kiosk Reader")
    with login_in(database_url, "consultease_kiosk") as kiosk_url:
        recorder = NotificationRecorder(kiosk_url)
        try:
            with psycopg.connect(kiosk_url) as conn:
                assert conn.execute("SELECT name FROM faculty").fetchall() == [
                    ("Dr. Kiosk Reader",)
                ]
            db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (faculty_id,))
            payloads = recorder.drain(timeout=2)
        finally:
            recorder.close()
    assert [(p["id"], p["status"]) for p in payloads] == [(faculty_id, "busy")]


# -- ingest ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("name", "Mallory"),
        ("department", "Evil"),
        ("email", "mallory@evil.example"),
        ("room", "nowhere"),
        ("active", False),
        ("version", 99),
        ("created_at", None),
    ],
)
def test_ingest_role_cannot_change_what_an_admin_owns(
    database_url: str, db: psycopg.Connection[Any], column: str, value: object
) -> None:
    faculty_id = add_faculty(db)
    before = faculty_row(db, faculty_id)
    with (
        acting_as(database_url, "consultease_ingest") as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(
            sql.SQL("UPDATE faculty SET {} = %s WHERE id = %s").format(sql.Identifier(column)),
            (value, faculty_id),
        )
    assert faculty_row(db, faculty_id) == before


def test_ingest_role_changes_status_and_desk_columns(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db)
    with acting_as(database_url, "consultease_ingest") as conn:
        conn.execute(
            "UPDATE faculty SET status = 'available', status_source = 'desk', desk_online = true,"
            " desk_version = 7, desk_ts = now(), last_seen = now() WHERE id = %s",
            (faculty_id,),
        )
        for statement in (
            "INSERT INTO faculty (name, department, email) VALUES ('M', 'X', 'm@x.example')",
            "DELETE FROM faculty",
            "DELETE FROM status_change",
            "SELECT * FROM admin_user",
            "INSERT INTO audit_log (actor, action) VALUES ('ingest', 'forged')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    row = faculty_row(db, faculty_id)
    assert (row["status"], row["desk_online"], row["desk_version"], row["version"]) == (
        "available",
        True,
        7,
        2,
    )


def test_store_applies_batches_when_logged_in_as_an_ingest_role(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db)
    db.execute("UPDATE faculty SET desk_online = true WHERE id = %s", (faculty_id,))
    with (
        login_in(database_url, "consultease_ingest") as ingest_url,
        Store(ingest_url, max_clock_skew=300) as store,
    ):
        outcomes = store.apply_batch(
            [
                status_update(faculty_id, Status.BUSY, version=5),
                status_update(faculty_id, Status.AWAY, version=4),  # stale: recorded
                status_update(999_999, Status.BUSY, version=1),  # unknown: recorded
            ]
        )
        db.execute(
            "UPDATE faculty SET last_seen = now() - interval '1 hour' WHERE id = %s",
            (faculty_id,),
        )
        swept = store.mark_silent_desks_offline(60)
    assert [o.verdict for o in outcomes] == [Verdict.APPLIED, Verdict.STALE, Verdict.REJECTED]
    assert swept == [faculty_id]
    row = faculty_row(db, faculty_id)
    assert (row["status"], row["desk_version"], row["desk_online"]) == ("busy", 5, False)
    reasons = db.execute("SELECT reason FROM ingest_rejection ORDER BY id").fetchall()
    assert reasons == [("stale",), ("unknown_faculty",)]
    changes = db.execute("SELECT source FROM status_change ORDER BY id").fetchall()
    assert changes == [("desk",), ("sweeper",)]


# -- admin -------------------------------------------------------------------------


def test_admin_role_runs_faculty_admin_and_accounts_but_cannot_rewrite_history(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    with login_in(database_url, "consultease_admin") as admin_url:
        admin = FacultyAdmin(admin_url)
        accounts = AdminAccounts(admin_url)
        try:
            view = admin.add(
                actor="ops", name="Dr. Role", department="Security", email="role@uni.example"
            )
            admin.edit(view.id, actor="ops", room="S-1")
            admin.set_status(view.id, Status.BUSY, actor="ops")
            admin.reset_desk(view.id, actor="ops")
            admin.deactivate(view.id, actor="ops")
            accounts.create("roleadmin", "violet-lantern-harbour", actor="ops")
            assert accounts.login("roleadmin", "violet-lantern-harbour") == "roleadmin"
        finally:
            admin.close()
            accounts.close()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            for statement in (
                "UPDATE audit_log SET actor = 'someone else'",
                "DELETE FROM audit_log",
                "DELETE FROM faculty",
                "DELETE FROM admin_user",
                "UPDATE status_change SET new_status = 'away'",
                "INSERT INTO ingest_rejection (topic, payload, reason) VALUES ('t', '', 'r')",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
    actions = [r[0] for r in db.execute("SELECT action FROM audit_log ORDER BY id").fetchall()]
    assert actions == [
        "faculty.add",
        "faculty.edit",
        "faculty.set_status",
        "faculty.reset_desk",
        "faculty.deactivate",
        "admin.create",
        "admin.login",
    ]


def test_every_role_may_read_the_migration_ledger(database_url: str) -> None:
    for group in GROUPS:
        with acting_as(database_url, group) as conn:
            row = conn.execute("SELECT max(version) FROM schema_migration").fetchone()
            assert row is not None and row[0] >= 3


# -- the migration itself ------------------------------------------------------------


def test_migrations_run_for_an_owner_that_may_not_create_roles(pg_admin_url: str) -> None:
    """A database owned by an ordinary login: every migration still applies, the
    grants reach the existing groups, and missing roles are skipped, not fatal."""
    owner = f"ce_test_owner_{uuid.uuid4().hex[:10]}"
    dbname = f"ce_test_owned_{uuid.uuid4().hex[:10]}"
    password = secrets.token_urlsafe(16)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOCREATEROLE PASSWORD {}").format(
                sql.Identifier(owner), sql.Literal(password)
            )
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(dbname), sql.Identifier(owner)
            )
        )
    owner_url = url_as(with_database(pg_admin_url, dbname), owner, password)
    try:
        assert "003_roles.sql" in upgrade(owner_url)
        with psycopg.connect(owner_url, autocommit=True) as conn:
            granted = conn.execute(
                "SELECT has_column_privilege('consultease_ingest', 'faculty', 'status', 'UPDATE'),"
                " has_column_privilege('consultease_ingest', 'faculty', 'name', 'UPDATE'),"
                " has_table_privilege('consultease_kiosk', 'faculty', 'SELECT')"
            ).fetchone()
            assert granted == (True, False, True)
            skipped = conn.execute(
                "SELECT consultease_grant_v1(%s, 'GRANT SELECT ON faculty TO %%I')",
                (f"ce_test_missing_{uuid.uuid4().hex[:10]}",),
            ).fetchone()
            assert skipped == (False,)
            # A table a later migration adds is readable by admins, by default privileges.
            conn.execute("CREATE TABLE later_table (id int)")
            later = conn.execute(
                "SELECT has_table_privilege('consultease_admin', 'later_table', 'SELECT'),"
                " has_table_privilege('consultease_kiosk', 'later_table', 'SELECT')"
            ).fetchone()
            assert later == (True, False)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(owner)))
