"""``consultease consultation …``, ``consultease student …`` and what ``consultease
health`` says about requests: one line per error, the exit codes, nothing lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from tests.support.factories import add_faculty
from tests.support.ingest import REPO_ROOT


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consultease", *args],
        check=False,
        cwd=REPO_ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("CONSULTEASE_")},
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("consultease: error: ")
    assert "Traceback" not in done.stderr
    return lines[0].removeprefix("consultease: error: ")


def test_request_list_complete_and_the_errors_each_in_one_line(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    fid = add_faculty(db)
    url = ["--database-url", database_url]
    done = cli(
        "consultation",
        "request",
        str(fid),
        "--student-name",
        "Ana Cruz",
        "--student-id",
        "2021-7",
        "--course",
        "CS 1",
        "--message",
        "Grade query",
        *url,
    )
    assert done.returncode == 0, done.stderr
    cid = int(done.stdout)

    bad = cli("consultation", "request", "999", "--student-name", "A", "--message", "x", *url)
    assert bad.returncode == 1 and one_error_line(bad) == "no active faculty with id 999"
    long = cli(
        "consultation", "request", str(fid), "--student-name", "B", "--message", "x" * 501, *url
    )
    assert long.returncode == 1
    assert one_error_line(long) == "the message is 501 characters, at most 500"
    twice = cli(
        "consultation",
        "request",
        str(fid),
        "--student-name",
        "Ana C.",
        "--student-id",
        "2021-7",
        "--message",
        "again",
        *url,
    )
    assert one_error_line(twice) == "this student already has an open request with this lecturer"

    listing = cli("consultation", "list", "--open", "--faculty", str(fid), *url)
    assert listing.returncode == 0, listing.stderr
    assert "Ana Cruz" in listing.stdout and "pending" in listing.stdout

    early = cli("consultation", "complete", str(cid), *url)
    assert early.returncode == 3
    assert one_error_line(early) == (
        f"consultation request {cid} is pending: it cannot be completed"
    )
    db.execute("UPDATE consultation SET status = 'accepted' WHERE id = %s", (cid,))
    assert cli("consultation", "complete", str(cid), "--actor", "bob", *url).returncode == 0
    assert db.execute(
        "SELECT status, closed_by FROM consultation WHERE id = %s", (cid,)
    ).fetchone() == ("completed", "admin")
    assert db.execute(
        "SELECT actor FROM audit_log WHERE action = 'consultation.complete'"
    ).fetchall() == [("bob",)]
    missing = cli("consultation", "cancel", "12345", *url)
    assert missing.returncode == 1
    assert one_error_line(missing) == "no consultation request with id 12345"
    nodb = subprocess.run(
        [sys.executable, "-m", "consultease", "consultation", "list"],
        check=False,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("CONSULTEASE_")},
    )
    assert nodb.returncode == 2 and one_error_line(nodb).startswith("no database configured")


def test_students_are_added_imported_all_or_nothing_and_listed(
    database_url: str, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    url = ["--database-url", database_url]
    added = cli(
        "student", "add", "--student-id", "2021-1", "--name", "Ana Cruz", "--rfid", "00ab12cd", *url
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "added student 2021-1 (Ana Cruz), card 00AB12CD"
    again = cli(
        "student", "add", "--student-id", "2021-2", "--name", "Other", "--rfid", "00AB12CD", *url
    )
    assert one_error_line(again) == "this RFID card is already registered to a student"

    good = tmp_path / "students.csv"
    good.write_text(
        "student_id,name,course_code,rfid_uid\n"
        "2021-1,Ana M. Cruz,BSCS,00AB12CD\n"
        "2021-3,Ben Reyes,,0011223344\n"
    )
    done = cli("student", "import", str(good), *url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"imported {good}: 1 added, 1 updated"

    bad = tmp_path / "bad.csv"
    bad.write_text("student_id,name,course_code,rfid_uid\n2021-4,Carla,,\n2021-5,,,\n")
    refused = cli("student", "import", str(bad), *url)
    assert refused.returncode == 1
    assert one_error_line(refused) == "line 3: the student's name must not be empty"
    clash = tmp_path / "clash.csv"
    clash.write_text("student_id,name,course_code,rfid_uid\n2021-6,Dan,,0011223344\n")
    assert one_error_line(cli("student", "import", str(clash), *url)) == (
        "line 2: this RFID card is already registered to a student"
    )
    assert db.execute(
        "SELECT student_id, name, rfid_uid FROM student ORDER BY student_id"
    ).fetchall() == [
        ("2021-1", "Ana M. Cruz", "00AB12CD"),
        ("2021-3", "Ben Reyes", "0011223344"),
    ], "nothing of a refused file was written"
    listing = cli("student", "list", *url)
    assert "Ana M. Cruz" in listing.stdout and "0011223344" in listing.stdout
    assert one_error_line(cli("student", "import", str(tmp_path / "none.csv"), *url)).startswith(
        "cannot read"
    )
    actions = [r[0] for r in db.execute("SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["student.add", "student.import"]


def test_health_lists_undelivered_and_overdue_requests(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    fid = add_faculty(db, status="available", desk_online=True)
    ids = [
        int(
            db.execute(
                "INSERT INTO consultation (faculty_id, student_name, message) "
                "VALUES (%s, %s, 'x') RETURNING id",
                (fid, name),
            ).fetchone()[0]
        )  # type: ignore[index]
        for name in ("Fresh", "Unsent", "Forgotten")
    ]
    # No ingest service runs: age two of them by hand (triggers off for this session).
    db.execute("SET session_replication_role = replica")
    db.execute(
        "UPDATE consultation SET created_at = now() - interval '2 minutes' WHERE id = %s", (ids[1],)
    )
    db.execute(
        "UPDATE consultation SET created_at = now() - interval '2 hours', "
        "delivered_at = now() - interval '2 hours' WHERE id = %s",
        (ids[2],),
    )
    db.execute("SET session_replication_role = DEFAULT")
    done = cli(
        "health", "--json", "--database-url", database_url, "--mqtt-url", "mqtt://127.0.0.1:1"
    )
    report = json.loads(done.stdout)
    consultations = report["consultations"]
    assert consultations["open"] == {"pending": 3, "accepted": 0}
    assert [r["id"] for r in consultations["undelivered"]] == [ids[1]]
    assert [r["id"] for r in consultations["overdue"]] == [ids[2]]
