"""Consultation requests end to end (SPEC 9): CLI -> database -> dispatcher -> a desk
subscribed exactly as the installed firmware is, and the desk's buttons back through
the broker and the ingest service. Each test runs its own mosquitto, so the message
counts are exact."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from consultease.config import Settings
from consultease.tools.servers import MosquittoInstance
from tests.support.factories import add_faculty, faculty_row
from tests.support.firmware_desk import FirmwareDesk
from tests.support.ingest import (
    REPO_ROOT,
    private_broker,
    running_service,
    unique_client_id,
    wait_until,
)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoInstance]:
    with private_broker(tmp_path / "mosquitto") as instance:
        yield instance


def settings(database_url: str, mqtt_url: str, **overrides: Any) -> Settings:
    return Settings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        mqtt_client_id=unique_client_id(),
        **overrides,
    )


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


def request(database_url: str, faculty_id: int, **fields: str) -> int:
    args = ["consultation", "request", str(faculty_id), "--database-url", database_url]
    for key, value in {
        "student_name": "Juan Dela Cruz",
        "message": "Thesis draft",
        **fields,
    }.items():
        args += [f"--{key.replace('_', '-')}", value]
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


def consultation(db: psycopg.Connection[Any], cid: int) -> dict[str, Any]:
    cur = db.execute("SELECT * FROM consultation WHERE id = %s", (cid,))
    row = cur.fetchone()
    assert row is not None
    return dict(zip([c.name for c in cur.description or ()], row, strict=True))


def rejections(db: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    rows = db.execute(
        "SELECT reason, topic FROM ingest_rejection WHERE topic LIKE '%%/responses' ORDER BY id"
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def test_a_cli_request_reaches_a_firmware_desk_and_a_qos0_acknowledge_accepts_it_within_a_second(
    broker: MosquittoInstance, database_url: str, db: psycopg.Connection[Any]
) -> None:
    fid = add_faculty(db, status="available", desk_online=True)
    with (
        running_service(settings(database_url, broker.url, request_timeout=8.0)) as service,
        FirmwareDesk(broker.url, fid) as desk,
    ):
        cid = request(
            database_url,
            fid,
            student_name="Maria Santos",
            student_id="2021-0042",
            course="CS 101",
            message="Can we go over problem 3?",
        )
        wait_until(lambda: desk.received()[0], timeout=5, message="the request on the desk")
        assert desk.received()[0] == [
            f"CID:{cid} From:Maria Santos (SID:2021-0042): Can we go over problem 3?"
        ]
        assert consultation(db, cid)["delivered_at"] is not None

        pressed = time.monotonic()
        desk.respond("ACKNOWLEDGE", str(cid))
        wait_until(
            lambda: consultation(db, cid)["status"] == "accepted",
            timeout=1.0,
            interval=0.01,
            message="the request accepted",
        )
        assert time.monotonic() - pressed < 1.0
        row = consultation(db, cid)
        assert row["responded_at"] is not None and row["closed_by"] is None
        assert faculty_row(db, fid)["status"] == "available", "an ACKNOWLEDGE leaves the status"
        # The SID is "-" when the student gave none.
        other = request(database_url, fid, student_name="Ben")
        wait_until(lambda: len(desk.received()[0]) == 2, timeout=5, message="the second request")
        assert desk.received()[0][1] == f"CID:{other} From:Ben (SID:-): Thesis draft"
        time.sleep(0.5)
        assert len(desk.received()[0]) == 2, "each request reaches the desk once"

        # The service's metrics: time to answer, messages the desk got, requests by state.
        sample = service.metrics.registry.get_sample_value
        assert sample("consultease_consultation_answer_seconds_count") == 1
        assert sample("consultease_consultation_desk_messages_total", {"kind": "request"}) == 2
        wait_until(
            lambda: (
                sample("consultease_consultation_requests", {"state": "pending"}) == 1
                and sample("consultease_consultation_requests", {"state": "accepted"}) == 1
            ),
            timeout=5,
            message="the sweeper's request gauges",
        )
        assert sample("consultease_consultation_undelivered") == 0


def test_busy_declines_and_makes_the_lecturer_busy_and_every_bad_answer_is_recorded(
    broker: MosquittoInstance, database_url: str, db: psycopg.Connection[Any]
) -> None:
    fid = add_faculty(db, status="available", desk_online=True)
    other_fid = add_faculty(db, name="Dr. Grace Hopper", status="available", desk_online=True)
    with (
        running_service(settings(database_url, broker.url)),
        FirmwareDesk(broker.url, fid) as desk,
    ):
        cid = request(database_url, fid)
        theirs = request(database_url, other_fid)
        wait_until(lambda: desk.received()[0], timeout=5, message="the request on the desk")

        desk.respond("busy", cid)  # any case, an integer CID (ESP32_MQTT_TEMPLATE)
        wait_until(
            lambda: consultation(db, cid)["status"] == "declined",
            timeout=3,
            message="the request declined",
        )
        assert consultation(db, cid)["closed_by"] == "desk"
        lecturer = faculty_row(db, fid)
        assert (lecturer["status"], lecturer["status_source"]) == ("busy", "desk")
        change = db.execute(
            "SELECT old_status, new_status, source FROM status_change WHERE faculty_id = %s "
            "ORDER BY id DESC LIMIT 1",
            (fid,),
        ).fetchone()
        assert change == ("available", "busy", "desk")

        version = consultation(db, cid)["version"]
        desk.respond("BUSY", str(cid))  # the same button again
        desk.respond("ACKNOWLEDGE", str(theirs))  # another desk's request
        desk.respond("ACKNOWLEDGE", "999999")  # nobody's
        desk.respond("ACKNOWLEDGE", str(cid))  # no longer pending
        desk.respond("TEST", "0")  # the template's test message
        wait_until(
            lambda: len(rejections(db)) == 5,
            timeout=5,
            message=lambda: f"five rejections, have {rejections(db)}",
        )
        assert [r for r, _ in rejections(db)] == [
            "duplicate",
            "wrong_faculty",
            "unknown_consultation",
            "invalid_transition",
            "unknown_response",
        ]
        assert consultation(db, cid)["version"] == version, "nothing changed the request"
        assert consultation(db, theirs)["status"] == "pending", "nor the other desk's"


def test_a_request_waits_for_an_offline_desk_and_an_unanswered_one_expires_with_a_cancellation(
    broker: MosquittoInstance, database_url: str, db: psycopg.Connection[Any]
) -> None:
    fid = add_faculty(db, status="available", desk_online=False)
    with running_service(settings(database_url, broker.url, request_timeout=4.0)):
        cid = request(database_url, fid, course="IT 202")
        wait_until(
            lambda: consultation(db, cid)["delivered_at"] is not None,
            timeout=5,
            message="the first (unheard) delivery",
        )
        time.sleep(0.5)
        desk = FirmwareDesk(broker.url, fid).connect()  # the desk comes back: fresh session
        try:
            assert desk.received() == ([], []), "nothing is kept for a clean session"
            desk.status(present=True)  # what the firmware sends after every connect
            wait_until(lambda: desk.received()[0], timeout=5, message="the request redelivered")
            assert desk.received()[0] == [f"CID:{cid} From:Juan Dela Cruz (SID:-): Thesis draft"]
            assert consultation(db, cid)["delivery_attempts"] == 2

            wait_until(lambda: desk.received()[1], timeout=10, message="the cancellation")
            row = consultation(db, cid)
            assert (row["status"], row["closed_by"]) == ("expired", "system")
            assert desk.received()[1] == [
                {
                    "type": "consultation_cancelled",
                    "consultation_id": cid,
                    "student_name": "Juan Dela Cruz",
                    "course_code": "IT 202",
                    "cancelled_at": row["closed_at"].isoformat(),
                }
            ]
            assert (row["closed_at"] - row["created_at"]).total_seconds() >= 4.0
        finally:
            desk.disconnect()


def test_a_lecturer_back_from_away_gets_the_pending_requests_again(
    broker: MosquittoInstance, database_url: str, db: psycopg.Connection[Any]
) -> None:
    fid = add_faculty(db, status="available", desk_online=True)
    with running_service(settings(database_url, broker.url)), FirmwareDesk(broker.url, fid) as desk:
        desk.status(present=False)  # away: the firmware drops requests now
        wait_until(lambda: faculty_row(db, fid)["status"] == "away", timeout=5, message="away")
        cid = request(database_url, fid)
        wait_until(lambda: desk.received()[0], timeout=5, message="the first delivery")
        desk.status(present=True)
        wait_until(lambda: len(desk.received()[0]) == 2, timeout=5, message="the redelivery")
        assert desk.received()[0] == [f"CID:{cid} From:Juan Dela Cruz (SID:-): Thesis draft"] * 2


def test_a_cancel_from_the_cli_reaches_the_desk_once_and_is_audited(
    broker: MosquittoInstance, database_url: str, db: psycopg.Connection[Any]
) -> None:
    fid = add_faculty(db, status="available", desk_online=True)
    with running_service(settings(database_url, broker.url)), FirmwareDesk(broker.url, fid) as desk:
        cid = request(database_url, fid)
        wait_until(lambda: desk.received()[0], timeout=5, message="the request")
        done = cli(
            "consultation", "cancel", str(cid), "--actor", "alice", "--database-url", database_url
        )
        assert done.returncode == 0, done.stderr
        wait_until(lambda: desk.received()[1], timeout=5, message="the cancellation")
        assert [c["consultation_id"] for c in desk.received()[1]] == [cid]
        again = cli("consultation", "cancel", str(cid), "--database-url", database_url)
        assert again.returncode == 3
        assert again.stderr.strip() == (
            f"consultease: error: consultation request {cid} is already cancelled"
        )
        audit = db.execute(
            "SELECT actor, action, target FROM audit_log WHERE target = %s ORDER BY id",
            (f"consultation:{cid}",),
        ).fetchall()
        assert audit == [
            (audit[0][0], "consultation.request", f"consultation:{cid}"),
            ("alice", "consultation.cancel", f"consultation:{cid}"),
        ]
        time.sleep(0.5)
        assert len(desk.received()[1]) == 1


def test_two_ingest_services_send_each_request_to_the_desk_once(
    broker: MosquittoInstance, database_url: str, db: psycopg.Connection[Any]
) -> None:
    fid = add_faculty(db, status="available", desk_online=True)
    with (
        running_service(settings(database_url, broker.url), publish_state=False),
        running_service(settings(database_url, broker.url), publish_state=False),
        FirmwareDesk(broker.url, fid) as desk,
    ):
        with psycopg.connect(database_url, autocommit=True) as conn:
            ids = [
                int(
                    conn.execute(
                        "INSERT INTO consultation (faculty_id, student_name, message) "
                        "VALUES (%s, %s, 'hello') RETURNING id",
                        (fid, f"Student {i}"),
                    ).fetchone()[0]
                )  # type: ignore[index]
                for i in range(20)
            ]
        wait_until(lambda: len(desk.received()[0]) >= 20, timeout=10, message="20 requests")
        time.sleep(1.0)
        got = [int(m.split()[0].removeprefix("CID:")) for m in desk.received()[0]]
        assert sorted(got) == ids, "each request exactly once, from either service"


def test_a_request_whose_notification_was_lost_is_sent_when_the_dispatcher_reconnects(
    broker: MosquittoInstance, database_url: str, db: psycopg.Connection[Any]
) -> None:
    """Notifications are hints: after its LISTEN connection comes back, the dispatcher
    scans everything, so a request committed while nobody listened still goes out."""
    fid = add_faculty(db, status="available", desk_online=True)
    with running_service(settings(database_url, broker.url)), FirmwareDesk(broker.url, fid) as desk:
        first = request(database_url, fid, student_name="Ana")  # the dispatcher is up
        wait_until(lambda: desk.received()[0], timeout=5, message="the first request")
        # A request the dispatcher never hears of: no trigger runs for this session.
        db.execute("SET session_replication_role = replica")
        cid = insert_silently(db, fid)
        db.execute("SET session_replication_role = DEFAULT")
        time.sleep(1.0)
        assert len(desk.received()[0]) == 1, "no notification, no message (until a rescan)"
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'consultease-dispatch-listen'"
        )
        wait_until(
            lambda: len(desk.received()[0]) == 2, timeout=5, message="the request after resync"
        )
        assert desk.received()[0] == [
            f"CID:{first} From:Ana (SID:-): Thesis draft",
            f"CID:{cid} From:Juan Dela Cruz (SID:-): Thesis draft",
        ]


def insert_silently(db: psycopg.Connection[Any], faculty_id: int) -> int:
    row = db.execute(
        "INSERT INTO consultation (faculty_id, student_name, message) "
        "VALUES (%s, 'Juan Dela Cruz', 'Thesis draft') RETURNING id",
        (faculty_id,),
    ).fetchone()
    assert row is not None
    return int(row[0])
