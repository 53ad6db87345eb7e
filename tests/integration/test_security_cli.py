"""``consultease admin``, ``consultease audit`` and ``consultease desk`` through the CLI,
and hostile text in every field of the admin CLI: stored literally or refused,
never executed."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from consultease.admin.accounts import AdminAccounts
from consultease.broker.credentials import verify_password
from consultease.cli import main
from tests.support.ingest import REPO_ROOT
from tests.support.roles import login_in

GOOD = "amber-otter-lighthouse"
NEWER = "quiet-cedar-harbour-9"

HOSTILE = [
    "Robert'); DROP TABLE admin_user;--",
    "x' OR '1'='1",
    "$$; DELETE FROM audit_log; $$",
    "\\'; TRUNCATE faculty; --",
    '"; UPDATE admin_user SET locked_until = NULL; --',
    "[bold red]markup[/] %s %(x)s {0}",
]


def run(database_url: str, *args: str, stdin: str | None = None) -> int:
    if stdin is None:
        return main(["--database-url", database_url, *args])
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        return main(["--database-url", database_url, *args])
    finally:
        sys.stdin = saved


def tables_intact(db: psycopg.Connection[Any]) -> dict[str, int]:
    counts = {}
    for table in ("faculty", "admin_user", "audit_log", "status_change"):
        row = db.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        ).fetchone()
        assert row is not None
        counts[table] = int(row[0])
    return counts


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# -- admin create / passwd -------------------------------------------------------------


def test_admin_create_reads_the_password_from_stdin(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run(database_url, "admin", "create", "registrar", "--password-stdin", stdin=GOOD + "\n")
        == 0
    )
    assert "created admin registrar" in capsys.readouterr().out
    with AdminAccounts(database_url) as accounts:
        assert accounts.login("registrar", GOOD) == "registrar"


def test_admin_create_asks_twice_on_a_terminal(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = iter([GOOD, GOOD])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr(sys, "stdin", FakeTerminal())
    assert run(database_url, "admin", "create", "registrar", "--actor", "ops") == 0
    assert "created admin registrar" in capsys.readouterr().out


def test_admin_create_refuses_two_different_passwords(
    database_url: str,
    db: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    answers = iter([GOOD, GOOD + "x"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr(sys, "stdin", FakeTerminal())
    assert run(database_url, "admin", "create", "registrar") == 1
    assert "differ" in capsys.readouterr().err
    assert tables_intact(db)["admin_user"] == 0


def test_admin_create_without_a_terminal_says_to_use_password_stdin(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(database_url, "admin", "create", "registrar", stdin="") == 1
    err = capsys.readouterr().err
    assert "--password-stdin" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "too short"), ("password1234", "common"), ("QwertyUiop12", "common")],
)
def test_weak_passwords_are_one_clear_line_and_exit_1(
    database_url: str,
    db: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
    password: str,
    message: str,
) -> None:
    code = run(database_url, "admin", "create", "bob", "--password-stdin", stdin=password + "\n")
    err = capsys.readouterr().err
    assert code == 1
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert tables_intact(db)["admin_user"] == 0


def test_admin_passwd_changes_the_password_and_records_the_actor(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    assert run(database_url, "admin", "create", "alice", "--password-stdin", stdin=GOOD) == 0
    assert (
        run(
            database_url,
            "admin",
            "passwd",
            "ALICE",
            "--password-stdin",
            "--actor",
            "ops",
            stdin=NEWER,
        )
        == 0
    )
    with AdminAccounts(database_url) as accounts:
        assert accounts.login("alice", NEWER) == "alice"
    assert db.execute(
        "SELECT actor, target FROM audit_log WHERE action = 'admin.passwd'"
    ).fetchall() == [("ops", "admin:alice")]


def test_admin_passwd_for_an_unknown_user_fails_cleanly(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(database_url, "admin", "passwd", "nobody", "--password-stdin", stdin=NEWER) == 1
    assert "no admin named 'nobody'" in capsys.readouterr().err


def test_the_installed_entry_point_creates_an_admin(database_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "consultease", "admin", "create", "ops", "--password-stdin"],
        input=GOOD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={"CONSULTEASE_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert (result.returncode, result.stdout.strip()) == (0, "created admin ops")


# -- audit -----------------------------------------------------------------------------


def test_audit_prints_filtered_entries(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with AdminAccounts(database_url) as accounts:
        accounts.create("alice", GOOD, actor="cli:root")
        accounts.login("alice", GOOD)
        with pytest.raises(Exception, match="wrong username"):
            accounts.login("alice", "not-the-password-at-all")
    capsys.readouterr()

    assert run(database_url, "audit") == 0
    out = capsys.readouterr().out
    for text in ("admin.create", "admin.login", "admin.login.failed", "cli:root", "admin:alice"):
        assert text in out

    assert run(database_url, "audit", "--action", "admin.login", "--since", "1h") == 0
    out = capsys.readouterr().out
    assert "admin.login.failed" in out and "wrong_password" in out
    assert "admin.create" not in out

    assert run(database_url, "audit", "--actor", "CLI:ROOT", "--limit", "1") == 0
    out = capsys.readouterr().out
    assert "admin.create" in out and "admin.login" not in out

    assert run(database_url, "audit", "--since", "2999-01-01") == 0
    assert "no audit entries match" in capsys.readouterr().out


def test_audit_refuses_a_bad_since_in_one_line(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(database_url, "audit", "--since", "last tuesday") == 1
    err = capsys.readouterr().err
    assert "--since" in err and len(err.strip().splitlines()) == 1


# -- desk credentials -------------------------------------------------------------------


def test_desk_credentials_print_a_line_an_acl_and_the_password_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["desk", "credentials", "7"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line and not line.startswith("#")]
    password_line, *acl, password = lines
    username, encoded = password_line.split(":", 1)
    assert username == "desk-7"
    assert verify_password(encoded, password)
    assert acl[0] == "user desk-7"
    assert "topic read consultease/faculty/7/state" in acl
    assert out.count(password) == 1


def test_desk_credentials_install_into_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    files = ["--password-file", str(passwd), "--acl-file", str(acl)]
    assert main(["desk", "credentials", "--service", "ingest", *files]) == 0
    assert main(["desk", "credentials", "3", *files]) == 0
    password = capsys.readouterr().out.strip().splitlines()[-1]
    entries = dict(line.split(":", 1) for line in passwd.read_text().splitlines())
    assert set(entries) == {"consultease-ingest", "consultease-ingest-state", "desk-3"}
    assert verify_password(entries["desk-3"], password)
    assert "user desk-3\n" in acl.read_text()


def test_desk_broker_config_prints_the_shipped_files(capsys: pytest.CaptureFixture[str]) -> None:
    broker_dir = REPO_ROOT / "consultease" / "broker"
    assert main(["desk", "broker-config"]) == 0
    assert capsys.readouterr().out == (broker_dir / "mosquitto.conf").read_text()
    assert main(["desk", "broker-config", "--acl"]) == 0
    acl = capsys.readouterr().out
    assert "user consultease-ingest\n" in acl
    assert "user desk-1\ntopic write consultease/faculty/1/status\n" in acl


@pytest.mark.parametrize(
    "args",
    [["desk", "credentials"], ["desk", "credentials", "3", "--service", "ingest"]],
)
def test_desk_credentials_need_exactly_one_of_id_and_service(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 1
    assert "either a faculty id" in capsys.readouterr().err


# -- hostile text in every field ----------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_text_in_every_admin_cli_field_is_data_never_sql(
    database_url: str,
    db: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
    hostile: str,
) -> None:
    room = hostile[:100]
    email = "o'brien+" + "".join(c for c in hostile if c.isalnum())[:20] + "@uni.example"
    # faculty add / edit / set-status: every text field and the actor.
    assert (
        run(
            database_url,
            "faculty",
            "add",
            "--name",
            hostile,
            "--department",
            hostile,
            "--email",
            email,
            "--room",
            room,
            "--actor",
            hostile,
        )
        == 0
    )
    faculty_id = int(db.execute("SELECT max(id) FROM faculty").fetchone()[0])  # type: ignore[index]
    assert (
        run(
            database_url,
            "faculty",
            "edit",
            str(faculty_id),
            "--name",
            hostile + " 2",
            "--department",
            hostile + " 2",
            "--room",
            room[:90] + " 2",
            "--actor",
            hostile,
        )
        == 0
    )
    assert (
        run(database_url, "faculty", "set-status", str(faculty_id), "busy", "--actor", hostile) == 0
    )
    row = db.execute(
        "SELECT name, department, email, room, status FROM faculty WHERE id = %s", (faculty_id,)
    ).fetchone()
    assert row == (hostile + " 2", hostile + " 2", email, room[:90] + " 2", "busy")

    # admin create: a hostile username is refused; a hostile actor and password are data.
    assert run(database_url, "admin", "create", hostile, "--password-stdin", stdin=GOOD) == 1
    assert "username" in capsys.readouterr().err
    password = hostile + " and then some"
    assert (
        run(
            database_url,
            "admin",
            "create",
            "alice",
            "--password-stdin",
            "--actor",
            hostile,
            stdin=password,
        )
        == 0
    )
    assert run(database_url, "admin", "passwd", hostile, "--password-stdin", stdin=NEWER) == 1
    with AdminAccounts(database_url) as accounts:
        assert accounts.login("alice", password) == "alice"
        with pytest.raises(Exception, match="wrong username or password"):
            accounts.login(hostile, password)

    actors = {r[0] for r in db.execute("SELECT actor FROM audit_log").fetchall()}
    assert hostile in actors
    assert tables_intact(db) == {"faculty": 1, "admin_user": 1, "audit_log": 6, "status_change": 1}

    # audit filters: hostile text matches literally, and LIKE wildcards are not wildcards.
    capsys.readouterr()
    assert run(database_url, "audit", "--actor", hostile) == 0
    out = capsys.readouterr().out
    assert "faculty.add" in out and "admin.create" in out
    assert run(database_url, "audit", "--action", hostile) == 0
    assert "no audit entries match" in capsys.readouterr().out
    assert run(database_url, "audit", "--action", "%") == 0
    assert "no audit entries match" in capsys.readouterr().out
    assert tables_intact(db)["audit_log"] == 6


# -- a login without the admin role ----------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["faculty", "add", "--name", "M", "--department", "X", "--email", "m@x.example"],
        ["audit"],
        ["admin", "create", "mallory", "--password-stdin"],
    ],
)
def test_a_kiosk_login_gets_one_line_naming_the_admin_role(
    database_url: str,
    db: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
    args: list[str],
) -> None:
    with login_in(database_url, "consultease_kiosk") as kiosk_url:
        code = run(kiosk_url, *args, stdin=GOOD)
    err = capsys.readouterr().err
    assert code == 5
    assert "permission denied" in err and "consultease_admin role" in err
    assert len(err.strip().splitlines()) == 1
    assert tables_intact(db) == {"faculty": 0, "admin_user": 0, "audit_log": 0, "status_change": 0}
