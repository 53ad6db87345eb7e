"""Field-level admin edits (``FacultyAdmin.edit_fields`` and the ``expect_*`` checks):
a conflict only on the fields an edit changed, decided under the row lock, versioned
and audited; the CLI keeps its strict whole-row ``--expect-version``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from consultease.admin.faculty import FacultyAdmin, FieldEdit
from consultease.cli import main
from consultease.domain import Status
from consultease.errors import FieldConflict, ValidationError, VersionConflict
from consultease.ingest.store import Store
from tests.support.factories import add_faculty, faculty_row, status_update


@pytest.fixture
def admin(database_url: str) -> Iterator[FacultyAdmin]:
    with FacultyAdmin(database_url) as faculty_admin:
        yield faculty_admin


def audit_rows(db: psycopg.Connection[Any], faculty_id: int) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT actor, action, before, after FROM audit_log WHERE target = %s ORDER BY id",
        (f"faculty:{faculty_id}",),
    ).fetchall()


def test_a_desk_status_change_never_makes_a_room_edit_conflict(
    admin: FacultyAdmin, db: psycopg.Connection[Any], database_url: str
) -> None:
    faculty_id = add_faculty(db, room="CS-101", status="away", desk_online=True)
    opened = admin.get(faculty_id)
    # While the admin types, the desk reports the lecturer back (through the real store).
    with Store(database_url, max_clock_skew=300) as store:
        [outcome] = store.apply_batch([status_update(faculty_id, "available", version=5)])
    assert outcome.applied
    saved = admin.edit_fields(
        faculty_id,
        actor="alice",
        edits={"room": FieldEdit(base=opened.room, value="CS-999")},
        based_on_version=opened.version,
    )
    assert (saved.room, saved.status, saved.version) == ("CS-999", Status.AVAILABLE, 3)
    row = faculty_row(db, faculty_id)
    assert (row["room"], row["status"], row["status_source"]) == ("CS-999", "available", "desk")
    [(actor, action, before, after)] = audit_rows(db, faculty_id)
    assert (actor, action) == ("alice", "faculty.edit")
    assert (before["room"], after["room"], after["version"]) == ("CS-101", "CS-999", 3)


def test_an_edit_writes_only_its_fields_so_a_concurrent_edit_of_another_field_stands(
    admin: FacultyAdmin, db: psycopg.Connection[Any], database_url: str
) -> None:
    faculty_id = add_faculty(db, name="Dr. Ada Lovelace", department="Mathematics", room="M-1")
    opened = admin.get(faculty_id)
    # Meanwhile the CLI moves her to another department.
    assert (
        main(
            [
                "--database-url",
                database_url,
                "faculty",
                "edit",
                str(faculty_id),
                "--department",
                "Computer Science",
                "--actor",
                "bob",
            ]
        )
        == 0
    )
    saved = admin.edit_fields(
        faculty_id,
        actor="alice",
        edits={
            "name": FieldEdit(base=opened.name, value="Dr. Augusta Ada King"),
            "room": FieldEdit(base=opened.room, value="CS-1"),
        },
    )
    assert (saved.name, saved.department, saved.room) == (
        "Dr. Augusta Ada King",
        "Computer Science",
        "CS-1",
    )
    assert saved.version == opened.version + 2
    actions = [(actor, action) for actor, action, _, _ in audit_rows(db, faculty_id)]
    assert actions == [("bob", "faculty.edit"), ("alice", "faculty.edit")]


def test_a_field_changed_meanwhile_refuses_the_whole_edit_names_it_and_is_audited(
    admin: FacultyAdmin, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db, name="Dr. Alan Turing", room="CS-102")
    opened = admin.get(faculty_id)
    db.execute("UPDATE faculty SET room = 'CS-300' WHERE id = %s", (faculty_id,))
    before = faculty_row(db, faculty_id)
    with pytest.raises(FieldConflict) as caught:
        admin.edit_fields(
            faculty_id,
            actor="alice",
            edits={
                "name": FieldEdit(base=opened.name, value="Dr. A. M. Turing"),
                "room": FieldEdit(base=opened.room, value="CS-999"),
            },
            based_on_version=opened.version,
        )
    conflict = caught.value
    assert conflict.fields == ("room",)
    assert conflict.exit_code == 3
    assert conflict.latest is not None and conflict.latest.room == "CS-300"
    assert "room changed since the edit began" in str(conflict)
    assert faculty_row(db, faculty_id) == before, "nothing written, not even the name"
    [(actor, action, audit_before, audit_after)] = audit_rows(db, faculty_id)
    assert (actor, action) == ("alice", "faculty.edit.conflict")
    assert audit_before["room"] == "CS-300"
    assert audit_after["conflicting_fields"] == ["room"]
    assert audit_after["based_on"] == {"name": "Dr. Alan Turing", "room": "CS-102"}
    assert audit_after["based_on_version"] == opened.version
    assert audit_after["attempted"] == {"name": "Dr. A. M. Turing", "room": "CS-999"}


def test_reapplying_against_the_current_values_merges_and_keeps_their_other_change(
    admin: FacultyAdmin, db: psycopg.Connection[Any]
) -> None:
    """The issue's scenario: name and room edited; department changed meanwhile; the
    admin's room conflicts with a room change; reapply keeps the new department."""
    faculty_id = add_faculty(db, name="Dr. Ada Lovelace", department="Mathematics", room="M-1")
    opened = admin.get(faculty_id)
    admin.edit(faculty_id, actor="bob", department="Computer Science", room="M-2")
    mine = {"name": "Dr. Augusta Ada King", "room": "CS-1"}
    with pytest.raises(FieldConflict) as caught:
        admin.edit_fields(
            faculty_id,
            actor="alice",
            edits={f: FieldEdit(base=getattr(opened, f), value=v) for f, v in mine.items()},
        )
    latest = caught.value.latest
    assert latest is not None
    saved = admin.edit_fields(
        faculty_id,
        actor="alice",
        edits={f: FieldEdit(base=getattr(latest, f), value=v) for f, v in mine.items()},
    )
    assert (saved.name, saved.department, saved.room) == (
        "Dr. Augusta Ada King",
        "Computer Science",
        "CS-1",
    )
    rows = audit_rows(db, faculty_id)
    assert [(a, b) for a, b, _, _ in rows] == [
        ("bob", "faculty.edit"),
        ("alice", "faculty.edit.conflict"),
        ("alice", "faculty.edit"),
    ]
    _, _, before, after = rows[-1]
    assert before["department"] == after["department"] == "Computer Science"


def test_the_same_change_made_by_someone_else_is_not_a_conflict(
    admin: FacultyAdmin, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db, room="A-1")
    opened = admin.get(faculty_id)
    db.execute("UPDATE faculty SET room = 'B-2' WHERE id = %s", (faculty_id,))
    saved = admin.edit_fields(
        faculty_id, actor="alice", edits={"room": FieldEdit(base=opened.room, value="B-2")}
    )
    assert saved.room == "B-2"
    assert audit_rows(db, faculty_id) == [], "nothing changed, so nothing to audit"


def test_clearing_the_room_and_bad_values_are_checked_like_every_edit(
    admin: FacultyAdmin, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db, room="A-1")
    opened = admin.get(faculty_id)
    before = faculty_row(db, faculty_id)
    with pytest.raises(ValidationError) as bad_email:
        admin.edit_fields(
            faculty_id, actor="alice", edits={"email": FieldEdit(base=opened.email, value="nope")}
        )
    assert bad_email.value.field == "email"
    with pytest.raises(ValidationError) as unknown:
        admin.edit_fields(
            faculty_id, actor="alice", edits={"status": FieldEdit(base="a", value="b")}
        )
    assert "not an editable field: status" in str(unknown.value)
    assert faculty_row(db, faculty_id) == before
    cleared = admin.edit_fields(
        faculty_id, actor="alice", edits={"room": FieldEdit(base="A-1", value="  ")}
    )
    assert cleared.room is None and faculty_row(db, faculty_id)["room"] is None


def test_set_status_by_hand_conflicts_only_when_the_status_itself_moved(
    admin: FacultyAdmin, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db, status="away", desk_online=True)
    opened = admin.get(faculty_id)
    db.execute("UPDATE faculty SET room = 'elsewhere' WHERE id = %s", (faculty_id,))
    saved = admin.set_status(
        faculty_id, Status.AVAILABLE, actor="alice", expect_status=opened.status
    )
    assert (saved.status, saved.room) == (Status.AVAILABLE, "elsewhere")
    db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (faculty_id,))
    with pytest.raises(FieldConflict) as caught:
        admin.set_status(faculty_id, Status.AWAY, actor="alice", expect_status=Status.AVAILABLE)
    assert caught.value.fields == ("status",)
    assert faculty_row(db, faculty_id)["status"] == "busy"


def test_taking_off_the_board_ignores_unrelated_changes_but_not_a_stale_whole_row_version(
    admin: FacultyAdmin, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db)
    version = admin.get(faculty_id).version
    db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (faculty_id,))
    with pytest.raises(VersionConflict) as strict:
        admin.deactivate(faculty_id, actor="cli", expect_version=version)
    assert not isinstance(strict.value, FieldConflict)
    gone = admin.deactivate(faculty_id, actor="alice", expect_active=True)
    assert gone.active is False
    back = admin.reactivate(faculty_id, actor="alice", expect_active=False)
    assert back.active is True


def test_the_cli_edit_keeps_the_strict_whole_row_check_even_for_a_desk_change(
    database_url: str, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    faculty_id = add_faculty(db, room="A-1", desk_online=True)
    db.execute("UPDATE faculty SET status = 'available' WHERE id = %s", (faculty_id,))
    code = main(
        [
            "--database-url",
            database_url,
            "faculty",
            "edit",
            str(faculty_id),
            "--room",
            "A-2",
            "--expect-version",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 3
    assert len(err.strip().splitlines()) == 1 and "current version is 2" in err
    assert faculty_row(db, faculty_id)["room"] == "A-1"


def test_the_always_available_flag_is_set_from_the_cli_audited_and_shown_as_available(
    database_url: str, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    faculty_id = add_faculty(db, status="away", desk_online=False)

    def edit(*flags: str) -> int:
        return main(["--database-url", database_url, "faculty", "edit", str(faculty_id), *flags])

    assert edit("--always-available", "--actor", "carol") == 0
    assert f"faculty {faculty_id} (Dr. Ada Lovelace) is available" in capsys.readouterr().out
    row = faculty_row(db, faculty_id)
    assert (row["always_available"], row["desk_online"], row["status"]) == (True, False, "away")
    assert row["version"] == 2
    assert edit("--no-always-available", "--expect-version", "2") == 0
    assert "is offline, version 3" in capsys.readouterr().out
    flags = [
        (actor, before["always_available"], after["always_available"])
        for actor, action, before, after in audit_rows(db, faculty_id)
        if action == "faculty.edit"
    ]
    assert flags == [("carol", False, True), (flags[1][0], True, False)]
