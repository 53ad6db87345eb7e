"""Admin accounts and the audit trail against the real database: argon2 hashes,
the lockout kept in the database on the database clock, one audit row per action."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from argon2 import PasswordHasher

from consultease.admin.accounts import AdminAccounts, TooManyAttempts
from consultease.admin.faculty import FacultyAdmin
from consultease.admin.passwords import PasswordRejected
from consultease.domain import Status
from consultease.errors import AuthenticationError, NotFound, ValidationError, VersionConflict
from tests.support.ingest import REPO_ROOT

GOOD = "amber-otter-lighthouse"
NEWER = "quiet-cedar-harbour-9"
WRONG = "wrong username or password"
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
"""Cheap argon2 for tests about counting and auditing; production defaults are
exercised by the hashing and rehashing tests."""


@pytest.fixture
def accounts(database_url: str) -> Iterator[AdminAccounts]:
    accounts = AdminAccounts(database_url, hasher=FAST)
    yield accounts
    accounts.close()


def audit_rows(db: psycopg.Connection[Any], after_id: int = 0) -> list[dict[str, Any]]:
    cur = db.execute(
        "SELECT id, actor, action, target, before, after FROM audit_log WHERE id > %s ORDER BY id",
        (after_id,),
    )
    assert cur.description is not None
    names = [c.name for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def last_audit_id(db: psycopg.Connection[Any]) -> int:
    row = db.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()
    assert row is not None
    return int(row[0])


def account(db: psycopg.Connection[Any], username: str) -> dict[str, Any]:
    cur = db.execute("SELECT * FROM admin_user WHERE lower(username) = lower(%s)", (username,))
    row = cur.fetchone()
    assert row is not None and cur.description is not None
    return dict(zip([c.name for c in cur.description], row, strict=True))


class NewAuditRows:
    """The audit rows written since the previous call."""

    def __init__(self, db: psycopg.Connection[Any]) -> None:
        self.db = db
        self.mark = last_audit_id(db)

    def one(self, action: str) -> dict[str, Any]:
        """Exactly one new row, with this action."""
        rows = audit_rows(self.db, self.mark)
        assert [r["action"] for r in rows] == [action]
        self.mark = rows[0]["id"]
        return rows[0]


def fail(accounts: AdminAccounts, username: str, times: int) -> list[str]:
    """Wrong passwords, each from a source of its own (the account's limit, not a
    source's back-off, is what these tests count)."""
    messages = []
    for _ in range(times):
        with pytest.raises(AuthenticationError) as caught:
            accounts.login(username, "not-the-password-at-all", source=f"test-{uuid.uuid4()}")
        messages.append(str(caught.value))
    return messages


def login_in_subprocess(database_url: str, username: str, password: str) -> str:
    """A login from a brand-new process: what a restarted kiosk would see."""
    script = (
        "import sys\n"
        "from consultease.admin.accounts import AdminAccounts\n"
        "from consultease.errors import AuthenticationError\n"
        "accounts = AdminAccounts(sys.argv[1])\n"
        "try:\n"
        "    print('ok', accounts.login(sys.argv[2], sys.stdin.read()))\n"
        "except AuthenticationError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, database_url, username],
        input=password,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=True,
    )
    return result.stdout.strip()


# -- creating and logging in ---------------------------------------------------------


def test_there_is_no_default_account(accounts: AdminAccounts) -> None:
    assert accounts.count() == 0
    with pytest.raises(AuthenticationError, match=r"^wrong username or password$"):
        accounts.login("admin", "admin")


def test_create_stores_an_argon2id_hash_never_the_password(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    accounts = AdminAccounts(database_url)  # the production parameters
    accounts.create("Registrar", GOOD, actor="setup")
    row = account(db, "registrar")
    assert row["username"] == "Registrar"
    assert row["password_hash"].startswith("$argon2id$")
    assert GOOD not in row["password_hash"]
    assert accounts.login("REGISTRAR", GOOD) == "Registrar"
    trail = json.dumps([r["before"] for r in audit_rows(db)] + [r["after"] for r in audit_rows(db)])
    assert GOOD not in trail
    assert "argon2" not in trail
    accounts.close()


def test_usernames_are_unique_whatever_their_case(accounts: AdminAccounts) -> None:
    accounts.create("alice", GOOD, actor="setup")
    with pytest.raises(ValidationError, match="already exists") as caught:
        accounts.create("ALICE", NEWER, actor="setup")
    assert caught.value.field == "username"


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "too short"), ("Password1234", "common"), ("QWERTYUIOP12", "common")],
)
def test_weak_passwords_are_refused_and_nothing_is_written(
    accounts: AdminAccounts, db: psycopg.Connection[Any], password: str, message: str
) -> None:
    with pytest.raises(PasswordRejected, match=message):
        accounts.create("bob", password, actor="setup")
    assert accounts.count() == 0
    assert audit_rows(db) == []


def test_unknown_users_get_the_same_answer_and_leave_an_audit_row(
    accounts: AdminAccounts, db: psycopg.Connection[Any]
) -> None:
    accounts.create("alice", GOOD, actor="setup")
    mark = last_audit_id(db)
    with pytest.raises(AuthenticationError) as unknown:
        accounts.login("mallory", GOOD)
    with pytest.raises(AuthenticationError) as wrong:
        accounts.login("alice", "not-the-password-at-all")
    assert str(unknown.value) == str(wrong.value) == "wrong username or password"
    rows = audit_rows(db, mark)
    assert [(r["actor"], r["action"], r["target"]) for r in rows] == [
        ("mallory", "admin.login.failed", "admin:mallory"),
        ("alice", "admin.login.failed", "admin:alice"),
    ]
    assert rows[0]["after"]["reason"] == "unknown_user"
    assert accounts.count() == 1


def test_login_rehashes_when_the_hasher_parameters_changed(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    weak = AdminAccounts(
        database_url, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    weak.create("alice", GOOD, actor="setup")
    weak.close()
    old_hash = account(db, "alice")["password_hash"]
    assert "m=8,t=1,p=1" in old_hash

    strong = AdminAccounts(database_url)
    assert strong.login("alice", GOOD) == "alice"
    new_hash = account(db, "alice")["password_hash"]
    assert new_hash != old_hash
    assert not PasswordHasher().check_needs_rehash(new_hash)
    assert audit_rows(db)[-1]["after"]["rehashed"] is True
    assert strong.login("alice", GOOD) == "alice"
    assert audit_rows(db)[-1]["after"]["rehashed"] is False
    strong.close()


# -- lockout ---------------------------------------------------------------------------


def test_five_wrong_passwords_lock_the_account_for_a_minute_even_across_processes(
    accounts: AdminAccounts, database_url: str, db: psycopg.Connection[Any]
) -> None:
    accounts.create("alice", GOOD, actor="setup")
    # Locked or not, the answer is the same: it never says the account exists.
    assert fail(accounts, "alice", 6) == [WRONG] * 6

    row = account(db, "alice")
    assert row["failed_attempts"] == 5
    within = db.execute(
        "SELECT %s - now() BETWEEN interval '50 seconds' AND interval '1 minute'",
        (row["locked_until"],),
    ).fetchone()
    assert within == (True,)

    # The right password fails while locked: here, in a new object, in a new process.
    with pytest.raises(AuthenticationError, match=f"^{WRONG}$"):
        accounts.login("alice", GOOD)
    with AdminAccounts(database_url) as fresh, pytest.raises(AuthenticationError):
        fresh.login("alice", GOOD)
    assert login_in_subprocess(database_url, "alice", GOOD) == WRONG
    assert account(db, "alice")["locked_until"] == row["locked_until"]

    # A minute passes, on the database clock.
    db.execute(
        "UPDATE admin_user SET locked_until = now() - interval '1 second',"
        " first_failed_at = first_failed_at - interval '16 minutes'"
    )
    # (the three refused right passwords came from this machine: it waits a second too)
    db.execute("UPDATE admin_login_source SET blocked_until = now()")
    assert login_in_subprocess(database_url, "alice", GOOD) == "ok alice"
    row = account(db, "alice")
    assert (row["failed_attempts"], row["first_failed_at"], row["locked_until"]) == (0, None, None)


def test_failures_spread_over_more_than_fifteen_minutes_do_not_lock(
    accounts: AdminAccounts, db: psycopg.Connection[Any]
) -> None:
    accounts.create("alice", GOOD, actor="setup")
    fail(accounts, "alice", 4)
    db.execute("UPDATE admin_user SET first_failed_at = first_failed_at - interval '16 minutes'")
    assert fail(accounts, "alice", 4) == ["wrong username or password"] * 4
    row = account(db, "alice")
    assert (row["failed_attempts"], row["locked_until"]) == (4, None)
    assert accounts.login("alice", GOOD) == "alice"


def test_a_successful_login_resets_the_count(
    accounts: AdminAccounts, db: psycopg.Connection[Any]
) -> None:
    accounts.create("alice", GOOD, actor="setup")
    fail(accounts, "alice", 4)
    accounts.login("alice", GOOD)
    fail(accounts, "alice", 4)
    assert account(db, "alice")["locked_until"] is None


def test_parallel_guesses_cannot_get_past_the_limit(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    with AdminAccounts(database_url, hasher=FAST) as setup:
        setup.create("alice", GOOD, actor="setup")
    mark = last_audit_id(db)
    errors: list[str] = []

    def guess() -> None:
        with AdminAccounts(database_url, hasher=FAST) as accounts:
            try:
                accounts.login("alice", "not-the-password-at-all", source=f"t-{uuid.uuid4()}")
            except AuthenticationError as exc:
                errors.append(str(exc))

    threads = [threading.Thread(target=guess) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(errors) == 10
    assert errors == [WRONG] * 10
    assert account(db, "alice")["failed_attempts"] == 5
    reasons = [r["after"]["reason"] for r in audit_rows(db, mark)]
    assert sorted(reasons) == ["locked"] * 5 + ["wrong_password"] * 5


def test_changing_the_password_lifts_a_lock_and_retires_the_old_password(
    accounts: AdminAccounts, db: psycopg.Connection[Any]
) -> None:
    accounts.create("alice", GOOD, actor="setup")
    fail(accounts, "alice", 5)
    with pytest.raises(PasswordRejected, match="differ"):
        accounts.change_password("alice", GOOD, actor="ops")
    accounts.change_password("ALICE", NEWER, actor="ops")
    with pytest.raises(AuthenticationError, match="wrong username or password"):
        accounts.login("alice", GOOD)
    assert accounts.login("alice", NEWER) == "alice"
    with pytest.raises(NotFound):
        accounts.change_password("nobody", NEWER, actor="ops")


# -- the audit trail ------------------------------------------------------------------


def test_every_admin_action_leaves_exactly_one_audit_row_with_before_and_after(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    accounts = AdminAccounts(database_url, hasher=FAST)
    admin = FacultyAdmin(database_url)

    one_row = NewAuditRows(db).one
    try:
        accounts.create("alice", GOOD, actor="cli:root")
        row = one_row("admin.create")
        assert (row["actor"], row["target"], row["before"]) == ("cli:root", "admin:alice", None)
        assert row["after"]["username"] == "alice"

        assert accounts.login("alice", GOOD) == "alice"
        row = one_row("admin.login")
        assert (row["actor"], row["before"]["failed_attempts"]) == ("alice", 0)

        with pytest.raises(AuthenticationError):
            accounts.login("alice", "not-the-password-at-all")
        row = one_row("admin.login.failed")
        assert row["before"]["failed_attempts"] == 0
        assert row["after"]["failed_attempts"] == 1
        assert row["after"]["reason"] == "wrong_password"

        accounts.change_password("alice", NEWER, actor="alice")
        row = one_row("admin.passwd")
        assert row["before"]["failed_attempts"] == 1
        assert row["after"]["failed_attempts"] == 0
        assert row["before"]["password_changed_at"] != row["after"]["password_changed_at"]

        view = admin.add(actor="alice", name="Dr. A", department="CS", email="a@uni.example")
        row = one_row("faculty.add")
        assert (row["target"], row["before"], row["after"]["name"]) == (
            f"faculty:{view.id}",
            None,
            "Dr. A",
        )

        admin.edit(view.id, actor="alice", room="B-2")
        row = one_row("faculty.edit")
        assert (row["before"]["room"], row["after"]["room"]) == (None, "B-2")
        assert (row["before"]["version"], row["after"]["version"]) == (1, 2)

        admin.set_status(view.id, Status.BUSY, actor="alice")
        row = one_row("faculty.set_status")
        assert (row["before"]["status"], row["after"]["status"]) == ("away", "busy")

        admin.reset_desk(view.id, actor="alice")
        one_row("faculty.reset_desk")

        # A version conflict leaves its own row and changes nothing else.
        before = db.execute("SELECT * FROM faculty WHERE id = %s", (view.id,)).fetchone()
        with pytest.raises(VersionConflict):
            admin.edit(view.id, actor="alice", name="Dr. Stale", expect_version=1)
        row = one_row("faculty.edit.conflict")
        assert row["after"]["expected_version"] == 1
        assert db.execute("SELECT * FROM faculty WHERE id = %s", (view.id,)).fetchone() == before

        admin.deactivate(view.id, actor="alice")
        row = one_row("faculty.deactivate")
        assert (row["before"]["active"], row["after"]["active"]) == (True, False)
    finally:
        accounts.close()
        admin.close()

    everything = db.execute("SELECT before::text, after::text FROM audit_log").fetchall()
    text = " ".join(str(part) for row in everything for part in row)
    for secret in (GOOD, NEWER, "$argon2", "password_hash"):
        assert secret not in text


# -- back-off per source -----------------------------------------------------------------


def test_a_source_backs_off_after_three_failures_for_any_username(
    accounts: AdminAccounts, db: psycopg.Connection[Any]
) -> None:
    accounts.create("alice", GOOD, actor="setup")
    for username in ("mallory", "alice", "nobody"):
        with pytest.raises(AuthenticationError, match=f"^{WRONG}$"):
            accounts.login(username, "not-the-password-at-all", source="kiosk-7")
    # Now the source waits, whoever it names, even with the right password, and
    # the wait counts against nothing (the account is not touched).
    with pytest.raises(
        TooManyAttempts, match=r"^too many failed logins from here; try again in 1 s$"
    ):
        accounts.login("alice", GOOD, source="kiosk-7")
    assert account(db, "alice")["failed_attempts"] == 1
    row = db.execute(
        "SELECT failures, blocked_until - last_failed_at FROM admin_login_source"
        " WHERE source = 'kiosk-7'"
    ).fetchone()
    assert row == (3, timedelta(seconds=1))
    # Another source is not held up, and alice gets in from there.
    assert accounts.login("alice", GOOD, source="office-pc") == "alice"

    # Each further failure doubles the wait; the wait ends on the database clock.
    for expected in (2, 4, 8):
        db.execute("UPDATE admin_login_source SET blocked_until = now() WHERE source = 'kiosk-7'")
        with pytest.raises(AuthenticationError, match=f"^{WRONG}$"):
            accounts.login("alice", "not-the-password-at-all", source="kiosk-7")
        waited = db.execute(
            "SELECT blocked_until - last_failed_at FROM admin_login_source WHERE source = 'kiosk-7'"
        ).fetchone()
        assert waited == (timedelta(seconds=expected),)
    db.execute("UPDATE admin_login_source SET blocked_until = now() WHERE source = 'kiosk-7'")
    assert accounts.login("alice", GOOD, source="kiosk-7") == "alice"
    assert db.execute(
        "SELECT failures, blocked_until FROM admin_login_source WHERE source = 'kiosk-7'"
    ).fetchone() == (0, None)


def test_an_attacker_locks_a_real_admin_out_for_a_minute_at_most(
    accounts: AdminAccounts, db: psycopg.Connection[Any]
) -> None:
    accounts.create("alice", GOOD, actor="setup")
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            accounts.login("alice", "guess", source="attacker")
    # The attacker's source now waits; its further tries count nowhere.
    for _ in range(20):
        with pytest.raises(TooManyAttempts):
            accounts.login("alice", "guess", source="attacker")
    row = account(db, "alice")
    assert (row["failed_attempts"], row["locked_until"]) == (3, None)
    assert accounts.login("alice", GOOD, source="alice-desk") == "alice"
