"""The store: ordered apply under row locks, audit rows, rejections, retries."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from consultease.domain import (
    DeskUpdate,
    Inbound,
    Rejection,
    RejectReason,
    Status,
    UpdateKind,
    Verdict,
)
from consultease.errors import MessageRefused
from consultease.ingest.store import Store
from consultease.retry import RetryPolicy
from tests.support.factories import add_faculty, add_many_faculty, faculty_row, status_update
from tests.support.notifications import NotificationRecorder


@pytest.fixture(params=[True, False], ids=["pipeline", "one-round-trip-a-statement"])
def store(database_url: str, request: pytest.FixtureRequest) -> Iterator[Store]:
    with Store(database_url, max_clock_skew=300, pipeline=request.param) as s:
        yield s


def verdicts(outcomes: list[Any]) -> list[Verdict]:
    return [o.verdict for o in outcomes]


def test_applied_update_sets_status_and_bookkeeping(
    store: Store, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db)
    ts_ms = int(datetime.now(UTC).timestamp() * 1000)
    [outcome] = store.apply_batch([status_update(faculty_id, "busy", version=5, ts_ms=ts_ms)])
    assert outcome.verdict is Verdict.APPLIED
    row = faculty_row(db, faculty_id)
    assert (row["status"], row["desk_online"], row["desk_version"], row["status_source"]) == (
        "busy",
        True,
        5,
        "desk",
    )
    assert row["desk_ts"] == datetime.fromtimestamp(ts_ms / 1000, UTC)
    assert row["last_seen"] is not None
    assert row["version"] == 2


def test_stale_update_never_overwrites_newer_and_never_notifies(
    store: Store, db: psycopg.Connection[Any], database_url: str
) -> None:
    faculty_id = add_faculty(db)
    store.apply_batch([status_update(faculty_id, "busy", version=10)])
    before = faculty_row(db, faculty_id)
    listen = NotificationRecorder(database_url)
    try:
        outcomes = store.apply_batch(
            [
                status_update(faculty_id, "available", version=9),
                status_update(faculty_id, "away", version=10),
            ]
        )
        assert verdicts(outcomes) == [Verdict.STALE, Verdict.DUPLICATE]
        assert listen.drain(timeout=0.5) == []
    finally:
        listen.close()
    after = faculty_row(db, faculty_id)
    visible = [
        "name",
        "department",
        "email",
        "room",
        "status",
        "status_source",
        "desk_online",
        "active",
        "version",
    ]
    assert {k: after[k] for k in visible} == {k: before[k] for k in visible}


def test_stale_and_rejected_are_recorded_duplicates_are_not(
    store: Store, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db)
    far_future = int((datetime.now(UTC) + timedelta(days=1)).timestamp() * 1000)
    garbage = Rejection(
        topic="consultease/faculty/x/status",
        payload=b"\xff" * 5000,
        reason=RejectReason.INVALID_TOPIC,
        detail="not a number",
    )
    outcomes = store.apply_batch(
        [
            status_update(faculty_id, "busy", version=2),
            status_update(faculty_id, "busy", version=2),
            status_update(faculty_id, "away", version=1),
            status_update(faculty_id + 1000, "away", version=1),
            status_update(faculty_id, "away", version=3, ts_ms=far_future),
            garbage,
        ]
    )
    assert verdicts(outcomes) == [
        Verdict.APPLIED,
        Verdict.DUPLICATE,
        Verdict.STALE,
        Verdict.REJECTED,
        Verdict.REJECTED,
        Verdict.REJECTED,
    ]
    rows = db.execute(
        "SELECT reason, octet_length(payload) FROM ingest_rejection ORDER BY id"
    ).fetchall()
    assert rows == [
        ("stale", 2),
        ("unknown_faculty", 2),
        ("clock_skew", 2),
        ("invalid_topic", 4096),
    ]


def test_batch_is_decided_in_arrival_order_against_the_row_as_it_stands(
    store: Store, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db)
    outcomes = store.apply_batch(
        [
            status_update(faculty_id, "available", version=1),
            status_update(faculty_id, "busy", version=3),
            status_update(faculty_id, "away", version=2),  # stale by now
            status_update(faculty_id, "away", version=4),
        ]
    )
    assert verdicts(outcomes) == [Verdict.APPLIED, Verdict.APPLIED, Verdict.STALE, Verdict.APPLIED]
    row = faculty_row(db, faculty_id)
    assert (row["status"], row["desk_version"]) == ("away", 4)
    changes = db.execute(
        "SELECT old_status, new_status, desk_version FROM status_change "
        "WHERE faculty_id = %s ORDER BY id",
        (faculty_id,),
    ).fetchall()
    assert changes == [("away", "available", 1), ("available", "busy", 3), ("busy", "away", 4)]
    # The row was written once in this transaction: one version bump.
    assert row["version"] == 2


def test_heartbeat_touches_last_seen_and_brings_desk_online_without_changing_status(
    store: Store, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db, status="busy", desk_online=False)
    heartbeat = DeskUpdate(faculty_id=faculty_id, kind=UpdateKind.HEARTBEAT)
    store.apply_batch([heartbeat])
    row = faculty_row(db, faculty_id)
    assert (row["status"], row["desk_online"]) == ("busy", True)
    first_seen = row["last_seen"]
    version = row["version"]
    store.apply_batch([heartbeat])
    row = faculty_row(db, faculty_id)
    assert row["last_seen"] > first_seen
    assert row["version"] == version  # already online: bookkeeping only


def test_availability_offline_and_online(store: Store, db: psycopg.Connection[Any]) -> None:
    faculty_id = add_faculty(db)
    store.apply_batch([status_update(faculty_id, "available", version=1)])
    store.apply_batch(
        [DeskUpdate(faculty_id=faculty_id, kind=UpdateKind.AVAILABILITY, online=False)]
    )
    assert faculty_row(db, faculty_id)["desk_online"] is False
    store.apply_batch(
        [DeskUpdate(faculty_id=faculty_id, kind=UpdateKind.AVAILABILITY, online=True)]
    )
    row = faculty_row(db, faculty_id)
    assert (row["desk_online"], row["status"]) == (True, "available")
    online_changes = db.execute(
        "SELECT old_desk_online, new_desk_online FROM status_change WHERE faculty_id = %s "
        "ORDER BY id",
        (faculty_id,),
    ).fetchall()
    assert online_changes == [(False, True), (True, False), (False, True)]


def test_sweeper_takes_silent_desks_offline_by_the_database_clock(
    store: Store, db: psycopg.Connection[Any]
) -> None:
    silent, alive = add_faculty(db), add_faculty(db)
    store.apply_batch(
        [
            status_update(silent, "available", version=1),
            status_update(alive, "available", version=1),
        ]
    )
    db.execute(
        "UPDATE faculty SET last_seen = now() - interval '10 minutes' WHERE id = %s", (silent,)
    )
    assert store.mark_silent_desks_offline(90) == [silent]
    assert faculty_row(db, silent)["desk_online"] is False
    assert faculty_row(db, alive)["desk_online"] is True
    assert store.mark_silent_desks_offline(90) == []
    assert db.execute(
        "SELECT source FROM status_change WHERE faculty_id = %s AND NOT new_desk_online",
        (silent,),
    ).fetchall() == [("sweeper",)]


def test_store_survives_its_connection_being_killed(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db)
    with Store(database_url, max_clock_skew=300, application_name="store-under-test") as store:
        store.apply_batch([status_update(faculty_id, "busy", version=1)])
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'store-under-test'"
        )
        [outcome] = store.apply_batch([status_update(faculty_id, "available", version=2)])
    assert outcome.verdict is Verdict.APPLIED
    assert faculty_row(db, faculty_id)["status"] == "available"


def test_store_gives_up_cleanly_when_the_database_is_gone(db: psycopg.Connection[Any]) -> None:
    from consultease.errors import DatabaseUnavailable

    with (
        Store(
            "postgresql://postgres@127.0.0.1:1/none",
            max_clock_skew=300,
            retry=RetryPolicy(max_attempts=2, base_delay=0.01),
        ) as store,
        pytest.raises(DatabaseUnavailable, match="after 2 attempt"),
    ):
        store.apply_batch([status_update(1, "busy", version=1)])


@pytest.mark.slow
def test_eight_threads_applying_shuffled_batches_converge_to_highest_versions(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    faculty_ids = add_many_faculty(db, 20)
    rng = random.Random(20261122)
    statuses = list(Status)
    updates: list[Inbound] = []
    for i in range(2000):
        fid = faculty_ids[i % len(faculty_ids)]
        updates.append(status_update(fid, rng.choice(statuses), version=i + 1))
    updates += rng.sample(updates, k=200)  # 10% duplicates
    highest: dict[int, DeskUpdate] = {}
    for u in updates:
        assert isinstance(u, DeskUpdate) and u.version is not None
        if u.faculty_id not in highest or u.version > (highest[u.faculty_id].version or 0):
            highest[u.faculty_id] = u

    errors: list[BaseException] = []
    applied = [0] * 8

    def worker(n: int) -> None:
        local = list(updates)
        random.Random(n).shuffle(local)
        batch_rng = random.Random(1000 + n)
        try:
            with Store(
                database_url, max_clock_skew=300, retry=RetryPolicy(max_attempts=20)
            ) as store:
                i = 0
                while i < len(local):
                    size = batch_rng.randint(1, 64)
                    outcomes = store.apply_batch(local[i : i + size])
                    applied[n] += sum(o.applied for o in outcomes)
                    i += size
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    for fid, top in highest.items():
        row = faculty_row(db, fid)
        assert top.status is not None
        assert (row["status"], row["desk_version"]) == (top.status.value, top.version)
    not_real = db.execute(
        "SELECT count(*) FROM status_change WHERE old_status = new_status "
        "AND old_desk_online = new_desk_online"
    ).fetchone()
    assert not_real == (0,)
    assert sum(applied) >= len(faculty_ids)


@pytest.mark.parametrize("refused_by", ["client", "server"])
def test_a_batch_the_database_refuses_is_rolled_back_whole_and_the_next_one_applies(
    store: Store, db: psycopg.Connection[Any], refused_by: str
) -> None:
    """In pipeline mode the writes are sent with the COMMIT: a refusal found by psycopg
    (a NUL byte) or only by the server (a version past bigint) must still undo the
    whole batch, and leave the connection usable."""
    first, second = add_faculty(db), add_faculty(db)
    good = status_update(first, "busy", version=1)
    if refused_by == "client":
        bad: Inbound = Rejection(
            topic="consultease/faculty/\x00/status",
            payload=b"{}",
            reason=RejectReason.INVALID_TOPIC,
            detail="",
        )
    else:
        bad = status_update(second, "away", version=2**63)
    with pytest.raises(MessageRefused):
        store.apply_batch([good, bad])
    assert faculty_row(db, first)["status"] != "busy", "nothing of the batch committed"

    [outcome] = store.apply_batch([status_update(first, "away", version=2)])
    assert outcome.verdict is Verdict.APPLIED
    assert faculty_row(db, first)["status"] == "away"
