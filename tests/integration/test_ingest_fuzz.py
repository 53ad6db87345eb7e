"""10,000 hypothesis-generated messages through the real broker into the real database.

The service must stay up, account for every message (applied, duplicate, or
kept in ``ingest_rejection``), and leave each faculty row exactly where the
ordering rules put it: the test replays the same messages through the pure
``parse`` and ``decide`` and compares.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from consultease.domain import DeskState, Rejection, UpdateKind, Verdict
from consultease.ordering import advance, decide
from consultease.payloads import parse
from consultease.tools.servers import MosquittoInstance
from tests.support.factories import add_many_faculty
from tests.support.ingest import (
    Publisher,
    private_broker,
    rejection_count,
    running_service,
    settings_for,
    wait_processed,
)

MESSAGES = 10_000
MAX_CLOCK_SKEW = 300.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoInstance]:
    with private_broker(tmp_path / "mosquitto") as instance:
        yield instance


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
STATUS_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(
            ["available", "AWAY", "Busy", "faculty_present", "faculty_absent", "gone"]
        )
        | JSON_VALUES,
        "version": st.integers(min_value=-5, max_value=2**64) | JSON_VALUES,
        "ts": st.integers(min_value=-(2**50), max_value=2**50) | JSON_VALUES,
        "desk_id": st.text(max_size=12) | JSON_VALUES,
        "faculty_id": st.integers(min_value=0, max_value=20) | JSON_VALUES,
        "present": st.booleans() | JSON_VALUES,
        "timestamp": st.integers(),
    },
)
PAYLOADS = st.integers(0, 49).flatmap(
    lambda n: (
        st.binary(min_size=4090, max_size=4200)  # now and then, too big
        if n == 0
        else st.one_of(
            st.binary(max_size=200),
            JSON_VALUES.map(json_bytes),
            STATUS_LIKE.map(json_bytes),
            st.sampled_from([b"online", b"offline", b" OFFLINE\n", b"on"]),
        )
    )
)


def topics(known_ids: list[int]) -> st.SearchStrategy[str]:
    kinds = st.sampled_from(["status", "status", "mac_status", "heartbeat", "availability"])
    faculty = st.one_of(
        st.sampled_from(known_ids).map(str),
        st.sampled_from(known_ids).map(str),
        st.integers(min_value=1, max_value=10**6).map(str),  # almost surely unknown
        st.sampled_from(["0", "007", "abc", "-3", "1.5", "99999999999999999999", "é"]),
    )
    return st.tuples(faculty, kinds).map(lambda t: f"consultease/faculty/{t[0]}/{t[1]}")


def generate(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` examples drawn by hypothesis (generation only, no shrinking)."""
    drawn: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(strategy)
    def collect(example: Any) -> None:
        drawn.append(example)

    while len(drawn) < count:
        collect()
    return drawn[:count]


@dataclass
class Row:
    """The model of one faculty row: what the ordering rules say it must be."""

    desk: DeskState
    status: str
    online: bool


def replay(
    messages: list[tuple[str, bytes]], rows: dict[int, Row], now: datetime
) -> collections.Counter[str]:
    """Apply ``messages`` to ``rows`` with the pure rules; count the verdicts."""
    counts: collections.Counter[str] = collections.Counter()
    for topic, payload in messages:
        item = parse(topic, payload)
        if isinstance(item, Rejection):
            counts["recorded"] += 1
            continue
        row = rows.get(item.faculty_id)
        outcome = decide(
            row.desk if row else None,
            item,
            now,
            max_clock_skew=timedelta(seconds=MAX_CLOCK_SKEW),
        )
        if outcome.verdict is Verdict.DUPLICATE:
            counts["duplicate"] += 1
            continue
        if not outcome.applied:
            counts["recorded"] += 1
            continue
        assert row is not None
        counts["applied"] += 1
        if item.kind is UpdateKind.STATUS:
            assert item.status is not None
            row.desk = advance(row.desk, item)
            row.status = item.status.value
            row.online = True
        else:
            row.online = item.kind is UpdateKind.HEARTBEAT or bool(item.online)
    return counts


def snapshot(db: psycopg.Connection[Any], ids: list[int]) -> dict[int, dict[str, Any]]:
    cur = db.execute("SELECT * FROM faculty WHERE id = ANY(%s) ORDER BY id", (ids,))
    assert cur.description is not None
    names = [c.name for c in cur.description]
    return {int(r[0]): dict(zip(names, r, strict=True)) for r in cur.fetchall()}


@pytest.mark.slow  # generating 10,000 examples takes hypothesis about half a minute
def test_ten_thousand_random_messages_are_each_applied_or_accounted_for(
    broker: MosquittoInstance, db: psycopg.Connection[Any], database_url: str
) -> None:
    ids = add_many_faculty(db, 6)
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    db.execute(
        "UPDATE faculty SET desk_version = 1000, desk_ts = %s, status = 'busy' WHERE id = ANY(%s)",
        (long_ago, ids[:2]),
    )
    db.execute("UPDATE faculty SET desk_ts = %s WHERE id = %s", (long_ago, ids[2]))
    before = snapshot(db, ids)
    messages = generate(st.tuples(topics(ids), PAYLOADS), MESSAGES)

    with running_service(
        settings_for(database_url, broker.url, max_clock_skew=MAX_CLOCK_SKEW),
        publish_state=False,
    ) as service:
        with Publisher(broker.url) as publisher:
            published = publisher.publish_all(messages, timeout=120)
        wait_processed(service, published, timeout=120)
        stats = service.stats
        assert not service.failed

    now_row = db.execute("SELECT now()").fetchone()
    assert now_row is not None
    model = {
        fid: Row(
            desk=DeskState(active=True, desk_version=r["desk_version"], desk_ts=r["desk_ts"]),
            status=r["status"],
            online=r["desk_online"],
        )
        for fid, r in before.items()
    }
    expected = replay(messages, model, now_row[0])

    recorded = rejection_count(db)
    assert published == MESSAGES
    assert stats.received == published
    assert stats.applied + stats.duplicate + recorded == published
    assert stats.stale + stats.rejected == recorded
    assert (stats.applied, stats.duplicate, recorded) == (
        expected["applied"],
        expected["duplicate"],
        expected["recorded"],
    )
    assert expected["applied"] > 100, "the generator should produce plenty of valid updates"

    after = snapshot(db, ids)
    for fid in ids:
        row, old, want = after[fid], before[fid], model[fid]
        assert {k: row[k] for k in ("name", "department", "email", "room", "active")} == {
            k: old[k] for k in ("name", "department", "email", "room", "active")
        }
        assert (row["status"], row["desk_online"], row["desk_version"], row["desk_ts"]) == (
            want.status,
            want.online,
            want.desk.desk_version,
            want.desk.desk_ts,
        ), f"faculty {fid}"
