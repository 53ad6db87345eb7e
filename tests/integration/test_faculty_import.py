"""``consultease faculty add --id N`` and ``faculty import FILE.csv`` keep the ids that
existing desk units have compiled in (SPEC 3.4a)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from consultease.cli import main
from tests.support.factories import add_faculty
from tests.support.roles import login_in

CSV = """id,name,department,email,room
3,Dr. Ada Lovelace,Computer Science,ada@uni.example,CS-101
7,Dr. Alan Turing,Mathematics,alan@uni.example,
12,Dr. Grace Hopper,Computer Science,grace@uni.example,CS-204
"""


def run(database_url: str, *args: str) -> int:
    return main(["--database-url", database_url, *args])


def rows(db: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT id, name, department, email, room FROM faculty ORDER BY id"
    ).fetchall()


def audit_actions(db: psycopg.Connection[Any]) -> list[str]:
    return [r[0] for r in db.execute("SELECT action FROM audit_log ORDER BY id").fetchall()]


def test_import_creates_exactly_the_given_ids_and_a_second_import_changes_nothing(
    database_url: str,
    db: psycopg.Connection[Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "faculty.csv"
    path.write_text(CSV)
    assert run(database_url, "faculty", "import", str(path)) == 0
    out = capsys.readouterr().out
    assert "created: 3 (3, 7, 12)" in out
    assert [r[0] for r in rows(db)] == [3, 7, 12]
    assert rows(db)[1] == (7, "Dr. Alan Turing", "Mathematics", "alan@uni.example", None)
    before = (rows(db), audit_actions(db))

    assert run(database_url, "faculty", "import", str(path)) == 0
    out = capsys.readouterr().out
    assert "created: 0" in out and "updated: 0" in out
    assert "skipped (unchanged): 3 (3, 7, 12)" in out
    assert (rows(db), audit_actions(db)) == before

    # A generated id never collides with an imported one.
    assert run(database_url, "faculty", "add", "--name", "New", "--department", "X",
               "--email", "new@uni.example") == 0  # fmt: skip
    assert [r[0] for r in rows(db)] == [3, 7, 12, 13]


def test_import_updates_a_changed_row_and_audits_it(
    database_url: str,
    db: psycopg.Connection[Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "faculty.csv"
    path.write_text(CSV)
    assert run(database_url, "faculty", "import", str(path)) == 0
    path.write_text(CSV.replace("CS-204", "CS-999"))
    capsys.readouterr()
    assert run(database_url, "faculty", "import", str(path)) == 0
    out = capsys.readouterr().out
    assert "updated: 1 (12)" in out and "skipped (unchanged): 2 (3, 7)" in out
    assert rows(db)[2][4] == "CS-999"
    assert audit_actions(db) == ["faculty.add"] * 3 + ["faculty.edit"]


def test_a_bad_line_is_named_with_its_number_and_nothing_is_written(
    database_url: str,
    db: psycopg.Connection[Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "faculty.csv"
    path.write_text(
        CSV + "x9,Dr. Bad,Physics,bad@uni.example,\n15,Dr. Worse,Physics,not-an-email,\n"
    )
    assert run(database_url, "faculty", "import", str(path)) != 0
    err = capsys.readouterr().err
    assert "line 5: id must be a positive integer" in err
    assert "line 6: not a valid email address" in err
    assert "Traceback" not in err
    assert rows(db) == []
    assert audit_actions(db) == []


def test_an_email_taken_by_another_faculty_fails_the_whole_file(
    database_url: str,
    db: psycopg.Connection[Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    existing = add_faculty(db, email="alan@uni.example")
    path = tmp_path / "faculty.csv"
    path.write_text(CSV)
    assert run(database_url, "faculty", "import", str(path)) != 0
    err = capsys.readouterr().err
    assert f"line 3: email alan@uni.example is already used by faculty {existing}" in err
    assert [r[0] for r in rows(db)] == [existing]


def test_add_with_id_keeps_it_as_an_admin_login_and_refuses_a_taken_one(
    database_url: str, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with login_in(database_url, "consultease_admin") as admin_url:
        args = ("faculty", "add", "--department", "CS", "--id", "42")
        assert run(admin_url, *args, "--name", "Dr. A", "--email", "a@uni.example") == 0
        assert "added faculty 42 (Dr. A)" in capsys.readouterr().out
        assert run(admin_url, *args, "--name", "Dr. B", "--email", "b@uni.example") != 0
        assert "faculty id 42 is already taken" in capsys.readouterr().err
        no_id = ("faculty", "add", "--department", "CS", "--name", "Dr. C")
        assert run(admin_url, *no_id, "--email", "c@uni.example") == 0
    assert [r[0] for r in rows(db)] == [42, 43]
