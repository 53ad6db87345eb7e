"""Admin operations through the ``consultease faculty`` CLI: optimistic locking,
clear one-line errors, audit rows, and SQL kept as data."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import psycopg
import pytest

from consultease.admin.faculty import FacultyAdmin
from consultease.cli import main
from consultease.domain import Status
from consultease.errors import VersionConflict
from tests.support.factories import add_faculty, faculty_row
from tests.support.notifications import NotificationRecorder


def run(database_url: str, *args: str) -> int:
    return main(["--database-url", database_url, *args])


def test_add_then_list_shows_the_row(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(
        database_url,
        "faculty",
        "add",
        "--name",
        "Dr. Grace Hopper",
        "--department",
        "Computer Science",
        "--email",
        "grace@uni.example",
        "--room",
        "B-12",
    )
    assert code == 0
    assert "added faculty 1 (Dr. Grace Hopper)" in capsys.readouterr().out
    assert run(database_url, "faculty", "list") == 0
    out = capsys.readouterr().out
    for text in ("Dr. Grace Hopper", "Computer Science", "B-12", "away"):
        assert text in out


def test_edit_with_stale_expect_version_exits_3_and_changes_nothing(
    database_url: str, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    faculty_id = add_faculty(db, room="A-1")
    assert (
        run(
            database_url,
            "faculty",
            "edit",
            str(faculty_id),
            "--room",
            "A-2",
            "--expect-version",
            "1",
        )
        == 0
    )
    before = faculty_row(db, faculty_id)
    code = run(
        database_url, "faculty", "edit", str(faculty_id), "--room", "A-3", "--expect-version", "1"
    )
    err = capsys.readouterr().err
    assert code == 3
    assert "current version is 2" in err
    assert len(err.strip().splitlines()) == 1
    assert faculty_row(db, faculty_id) == before


@pytest.mark.parametrize("command", [["remove"], ["set-status", "busy"]])
def test_other_versioned_commands_refuse_stale_versions(
    database_url: str, db: psycopg.Connection[Any], command: list[str]
) -> None:
    faculty_id = add_faculty(db)
    db.execute("UPDATE faculty SET room = 'moved' WHERE id = %s", (faculty_id,))
    before = faculty_row(db, faculty_id)
    code = run(
        database_url, "faculty", command[0], str(faculty_id), *command[1:], "--expect-version", "1"
    )
    assert code == 3
    assert faculty_row(db, faculty_id) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["edit", "999", "--room", "x"], "no faculty with id 999"),
        (["add", "--name", "X", "--department", "D", "--email", "nope"], "not a valid email"),
        (["add", "--name", " ", "--department", "D", "--email", "a@b.example"], "name must not"),
        (["set-status", "1", "sleeping"], "unknown status"),
        (["edit", "abc"], "not a whole number"),
    ],
)
def test_bad_input_gives_one_clear_line_and_nonzero_exit(
    database_url: str,
    db: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    add_faculty(db)
    try:
        code = run(database_url, "faculty", *args)
    except SystemExit as exc:  # argparse rejects malformed arguments itself
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code != 0
    assert message in err
    assert "Traceback" not in err


def test_duplicate_email_is_refused_case_insensitively(
    database_url: str, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    add_faculty(db, email="ada@uni.example")
    code = run(
        database_url,
        "faculty",
        "add",
        "--name",
        "Other",
        "--department",
        "D",
        "--email",
        "ADA@Uni.Example",
    )
    assert code == 1
    assert "already used" in capsys.readouterr().err
    assert db.execute("SELECT count(*) FROM faculty").fetchone() == (1,)


def test_unreachable_database_is_one_line_not_a_traceback() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "consultease",
            "faculty",
            "list",
            "--database-url",
            "postgresql://postgres@127.0.0.1:1/nothing",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("consultease: error:")


def test_set_status_records_admin_source_and_status_change(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db, status="away")
    assert run(database_url, "faculty", "set-status", str(faculty_id), "BUSY") == 0
    row = faculty_row(db, faculty_id)
    assert (row["status"], row["status_source"], row["version"]) == ("busy", "admin", 2)
    assert db.execute(
        "SELECT old_status, new_status, source FROM status_change WHERE faculty_id = %s",
        (faculty_id,),
    ).fetchall() == [("away", "busy", "admin")]


def test_reset_desk_clears_desk_ordering_without_bumping_version(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db)
    db.execute("UPDATE faculty SET desk_version = 99, desk_ts = now() WHERE id = %s", (faculty_id,))
    listen = NotificationRecorder(database_url)
    try:
        assert run(database_url, "faculty", "reset-desk", str(faculty_id)) == 0
        assert listen.drain() == []
    finally:
        listen.close()
    row = faculty_row(db, faculty_id)
    assert (row["desk_version"], row["desk_ts"], row["version"]) == (None, None, 1)


def test_remove_deactivates_and_keeps_history(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db)
    assert run(database_url, "faculty", "remove", str(faculty_id)) == 0
    assert faculty_row(db, faculty_id)["active"] is False


def test_every_admin_action_leaves_one_audit_row_with_before_and_after(
    database_url: str,
) -> None:
    admin = FacultyAdmin(database_url)
    try:
        view = admin.add(actor="alice", name="Dr. A", department="Physics", email="a@uni.example")
        admin.edit(view.id, actor="alice", room="P-1", expect_version=1)
        admin.set_status(view.id, Status.BUSY, actor="bob")
        with pytest.raises(VersionConflict) as refused:
            admin.edit(view.id, actor="carol", room="P-9", expect_version=1)
        latest = refused.value.latest
        assert latest is not None
        assert (latest.version, latest.room, latest.status) == (3, "P-1", Status.BUSY)
        admin.deactivate(view.id, actor="alice")
    finally:
        admin.close()
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT actor, action, before, after FROM audit_log ORDER BY id"
        ).fetchall()
        assert conn.execute("SELECT room FROM faculty").fetchone() == ("P-1",)
    assert [(r[0], r[1]) for r in rows] == [
        ("alice", "faculty.add"),
        ("alice", "faculty.edit"),
        ("bob", "faculty.set_status"),
        ("carol", "faculty.edit.conflict"),
        ("alice", "faculty.deactivate"),
    ]
    add, edit, status, conflict, deactivate = rows
    assert add[2] is None and add[3]["email"] == "a@uni.example"
    assert (edit[2]["room"], edit[3]["room"]) == (None, "P-1")
    assert (status[2]["status"], status[3]["status"]) == ("away", "busy")
    assert conflict[3]["expected_version"] == 1 and conflict[2]["version"] == 3
    assert (deactivate[2]["active"], deactivate[3]["active"]) == (True, False)


def test_list_prints_names_that_look_like_markup_literally(
    database_url: str, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    add_faculty(db, name="Dr. [bold]Brackets[/] [/]")
    assert run(database_url, "faculty", "list") == 0
    assert "Dr. [bold]Brackets[/] [/]" in capsys.readouterr().out
