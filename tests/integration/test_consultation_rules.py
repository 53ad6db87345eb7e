"""The consultation rules in the database (SPEC 9.1): the trigger, the grants, and many
writers at once, against the real PostgreSQL."""

from __future__ import annotations

import itertools
import random
import threading
from collections import defaultdict
from typing import Any

import psycopg
import pytest

from consultease.consultation import ALLOWED_CHANGES, ClosedBy, ConsultationStatus
from consultease.db.consultations import Consultations
from consultease.db.students import Students
from consultease.domain import DeskResponse, ResponseType
from consultease.errors import ConsultEaseError, NotFound, TransitionRefused, ValidationError
from consultease.ingest.store import Store
from tests.support.factories import add_faculty
from tests.support.notifications import NotificationRecorder
from tests.support.roles import login_in


def insert_request(db: psycopg.Connection[Any], faculty_id: int, name: str = "Ana") -> int:
    row = db.execute(
        "INSERT INTO consultation (faculty_id, student_name, message) VALUES (%s, %s, 'hi') "
        "RETURNING id",
        (faculty_id, name),
    ).fetchone()
    assert row is not None
    return int(row[0])


def response(faculty_id: int, cid: int, kind: ResponseType) -> DeskResponse:
    return DeskResponse(
        faculty_id=faculty_id,
        consultation_id=cid,
        response=kind,
        topic=f"consultease/faculty/{faculty_id}/responses",
        payload=b"{}",
    )


# -- the trigger ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        (["accepted"], "pending"),
        (["declined"], "accepted"),
        (["accepted"], "expired"),
        (["expired"], "cancelled"),
        (["accepted", "completed"], "cancelled"),
        ([], "completed"),
    ],
)
def test_the_trigger_refuses_a_hand_written_invalid_update(
    db: psycopg.Connection[Any], path: list[str], refused: str
) -> None:
    fid = add_faculty(db)
    cid = insert_request(db, fid)
    for status in path:
        closer = None if status == "accepted" else "admin"
        db.execute(
            "UPDATE consultation SET status = %s, closed_by = %s WHERE id = %s",
            (status, closer, cid),
        )
    with pytest.raises(psycopg.errors.CheckViolation, match="not a valid transition"):
        db.execute(
            "UPDATE consultation SET status = %s, closed_by = 'admin' WHERE id = %s", (refused, cid)
        )


def test_a_request_starts_pending_and_the_database_keeps_its_clock_and_version(
    db: psycopg.Connection[Any],
) -> None:
    fid = add_faculty(db)
    with pytest.raises(psycopg.errors.CheckViolation, match="starts pending"):
        db.execute(
            "INSERT INTO consultation (faculty_id, student_name, message, status) "
            "VALUES (%s, 'A', 'x', 'accepted')",
            (fid,),
        )
    cid = insert_request(db, fid)
    db.execute("UPDATE consultation SET version = 99, delivered_at = now() WHERE id = %s", (cid,))
    assert db.execute("SELECT version FROM consultation WHERE id = %s", (cid,)).fetchone() == (1,)
    db.execute(
        "UPDATE consultation SET status = 'accepted', responded_at = NULL WHERE id = %s", (cid,)
    )
    row = db.execute(
        "SELECT version, responded_at IS NOT NULL, closed_at FROM consultation WHERE id = %s",
        (cid,),
    ).fetchone()
    assert row == (2, True, None), "the trigger stamps the answer and bumps the version once"


def test_one_open_request_per_student_per_lecturer(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    fid = add_faculty(db, status="available", desk_online=True)
    other = add_faculty(db, name="Dr. B", status="available", desk_online=True)
    with Consultations(database_url) as store:
        first = store.create_request(
            faculty_id=fid, student_name="Ana", student_id="S1", message="x"
        )
        with pytest.raises(ValidationError, match="already has an open request"):
            store.create_request(
                faculty_id=fid, student_name="Ana Other", student_id="s1", message="y"
            )
        store.create_request(faculty_id=other, student_name="Ana", student_id="S1", message="x")
        store.cancel(first.id)
        again = store.create_request(
            faculty_id=fid, student_name="Ana", student_id="S1", message="z"
        )
        assert again.status is ConsultationStatus.PENDING
        with pytest.raises(NotFound):
            store.create_request(faculty_id=10**9, student_name="A", message="x")
        db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (other,))
        with pytest.raises(ValidationError, match="is busy"):
            store.create_request(
                faculty_id=other, student_name="Bo", message="x", require_available=True
            )


# -- who may do what -----------------------------------------------------------------


def test_a_kiosk_login_creates_reads_and_cancels_only_its_own_requests(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    fid = add_faculty(db, status="available", desk_online=True)
    theirs = insert_request(db, fid, "Someone else")
    with (
        login_in(database_url, "consultease_kiosk") as kiosk_url,
        Consultations(kiosk_url) as kiosk,
        Students(database_url) as admin_students,
    ):
        mine = kiosk.create_request(faculty_id=fid, student_name="Ana", message="x")
        assert [c.id for c in kiosk.list_requests()] == [mine.id]
        with pytest.raises(NotFound):
            kiosk.get(theirs)
        with pytest.raises(NotFound):
            kiosk.cancel(theirs)
        assert kiosk.cancel(mine.id).closed_by is ClosedBy.STUDENT
        with psycopg.connect(kiosk_url) as conn:
            other = conn.execute(
                "INSERT INTO consultation (faculty_id, student_name, message) "
                "VALUES (%s, 'Bo', 'x') RETURNING id",
                (fid,),
            ).fetchone()
            conn.commit()
            assert other is not None
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(
                    "UPDATE consultation SET status = 'accepted' WHERE id = %s", (other[0],)
                )
            conn.rollback()
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(
                    "UPDATE consultation SET message = 'changed' WHERE id = %s", (other[0],)
                )
            conn.rollback()
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT * FROM student")
        admin_students.add(
            student_id="2021-1", name="Ana Cruz", rfid_uid="0004412345", actor="alice"
        )
        with Students(kiosk_url) as kiosk_students:
            card = kiosk_students.lookup_rfid("0004412345")
            assert card is not None and (card.student_id, card.name) == ("2021-1", "Ana Cruz")
            assert kiosk_students.lookup_rfid("9999") is None


def test_the_ingest_login_applies_answers_and_nothing_else(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    fid = add_faculty(db, status="available", desk_online=True)
    cid = insert_request(db, fid)
    with login_in(database_url, "consultease_ingest") as ingest_url:
        with Store(ingest_url, max_clock_skew=300) as store:
            outcomes = store.apply_batch([response(fid, cid, ResponseType.ACKNOWLEDGE)])
        assert outcomes[0].applied
        with psycopg.connect(ingest_url) as conn:
            for statement in (
                "UPDATE consultation SET message = 'x' WHERE id = %s",
                "UPDATE consultation SET student_name = 'x' WHERE id = %s",
                "DELETE FROM consultation WHERE id = %s",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement, (cid,))
                conn.rollback()
    with (
        login_in(database_url, "consultease_admin") as admin_url,
        psycopg.connect(admin_url) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("DELETE FROM consultation WHERE id = %s", (cid,))


# -- many writers at once ------------------------------------------------------------


def test_four_threads_of_random_events_leave_every_request_reachable_and_notified(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    """Requests, cancels, desk answers (through the ingest store), completions and
    expiries from 4 threads at once on 50 requests: every request ends in a state the
    rule reaches, every committed change was notified exactly once, in version order,
    and the notified status sequence of each request is a path of the rule."""
    faculty = [
        add_faculty(db, name=f"Dr. {i}", status="available", desk_online=True) for i in range(3)
    ]
    recorder = NotificationRecorder(database_url, "consultation_changed")
    created: list[tuple[int, int]] = []
    reserved = [0]
    lock = threading.Lock()
    errors: list[BaseException] = []
    refused: defaultdict[str, int] = defaultdict(int)

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        with (
            Consultations(database_url) as store,
            Store(database_url, max_clock_skew=300) as ingest,
        ):
            for step in range(120):
                with lock:
                    pool = list(created)
                    make = reserved[0] < 50 and (not pool or rnd.random() < 0.4)
                    if make:
                        reserved[0] += 1
                try:
                    if make:
                        fid = rnd.choice(faculty)
                        c = store.create_request(
                            faculty_id=fid, student_name=f"S{seed}-{step}", message="x"
                        )
                        with lock:
                            created.append((c.id, fid))
                        continue
                    cid, fid = rnd.choice(pool)
                    action = rnd.choice(["cancel", "ack", "busy", "complete", "expire", "wrong"])
                    if action == "cancel":
                        store.cancel(cid)
                    elif action == "complete":
                        store.complete(cid)
                    elif action == "expire":
                        ingest.expire_consultations(rnd.uniform(0.0, 0.3))
                    else:
                        kind = ResponseType.BUSY if action == "busy" else ResponseType.ACKNOWLEDGE
                        desk = (
                            fid
                            if action != "wrong"
                            else rnd.choice([f for f in faculty if f != fid])
                        )
                        ingest.apply_batch([response(desk, cid, kind)])
                except TransitionRefused as exc:
                    with lock:
                        refused[exc.reason] += 1
                except ConsultEaseError as exc:
                    errors.append(exc)
                except BaseException as exc:
                    errors.append(exc)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    notes: list[dict[str, Any]] = []
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        while batch := recorder.drain(timeout=0.5):
            notes.extend(batch)
    finally:
        recorder.close()
    assert not errors, errors[:3]
    assert len(created) == 50

    rows = {
        r[0]: r[1:]
        for r in db.execute(
            "SELECT id, status, version, responded_at IS NOT NULL, closed_by FROM consultation"
        ).fetchall()
    }
    assert sorted(rows) == sorted(cid for cid, _ in created)
    by_request: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for note in notes:
        by_request[note["id"]].append(note)
    moved = 0
    for cid, (status, version, responded, closer) in rows.items():
        seen = by_request[cid]
        assert [n["version"] for n in seen] == list(range(1, version + 1)), (
            f"request {cid}: every change notified once, in order"
        )
        assert seen[0]["op"] == "INSERT" and seen[0]["status"] == "pending"
        path = [n["status"] for n in seen]
        for old, new in itertools.pairwise(path):
            assert (ConsultationStatus(old), ConsultationStatus(new)) in ALLOWED_CHANGES, (
                f"request {cid}: {old} -> {new}"
            )
        assert path[-1] == status
        moved += len(path) - 1
        assert (closer is None) == (status in ("pending", "accepted"))
        assert responded == ("accepted" in path or "declined" in path)
        if status == "declined":
            assert closer == "desk"
        if status == "expired":
            assert closer == "system"
    assert moved > 20, "the threads really moved requests along"
    assert sum(refused.values()) > 0, "and some steps were refused by the rule"
    rejected = dict(
        db.execute("SELECT reason, count(*) FROM ingest_rejection GROUP BY reason").fetchall()
    )
    assert set(rejected) <= {"duplicate", "invalid_transition", "wrong_faculty"}
    assert rejected.get("wrong_faculty", 0) > 0
