"""Ordering rules 5a and 5b and the retained-snapshot rule for the unchanged ESP32
firmware (SPEC 3.4a): its offline queue and the broker's retained store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consultease.domain import (
    DeskState,
    DeskUpdate,
    Outcome,
    RejectReason,
    Source,
    Status,
    UpdateKind,
    Verdict,
)
from consultease.ordering import LEGACY_REBOOT_MARGIN, advance, decide
from consultease.payloads import parse

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SKEW = timedelta(seconds=300)
MINUTE_MS = 60_000


def legacy(
    uptime_ms: int | None,
    *,
    status: Status = Status.AWAY,
    retained: bool = False,
    kind: UpdateKind = UpdateKind.STATUS,
    online: bool | None = None,
) -> DeskUpdate:
    return DeskUpdate(
        faculty_id=3,
        kind=kind,
        status=status if kind is UpdateKind.STATUS else None,
        online=online,
        uptime_ms=uptime_ms,
        retained=retained,
    )


def stored(
    *,
    uptime_ms: int | None = None,
    applied_ago: timedelta = timedelta(seconds=1),
    source: Source = Source.DESK,
) -> DeskState:
    return DeskState(
        active=True,
        status_source=source,
        desk_uptime_ms=uptime_ms,
        desk_uptime_at=NOW - applied_ago if uptime_ms is not None else None,
    )


def decide_now(state: DeskState, incoming: DeskUpdate) -> Outcome:
    return decide(state, incoming, NOW, max_clock_skew=SKEW)


def test_a_queued_message_older_than_the_fresh_status_is_history() -> None:
    fresh = stored(uptime_ms=30 * MINUTE_MS)
    outcome = decide_now(fresh, legacy(25 * MINUTE_MS))
    assert (outcome.verdict, outcome.reason) == (Verdict.STALE, RejectReason.OFFLINE_QUEUE)


def test_a_later_status_of_the_same_boot_applies() -> None:
    assert decide_now(stored(uptime_ms=30 * MINUTE_MS), legacy(31 * MINUTE_MS)).applied


def test_a_status_after_a_reboot_applies_although_its_uptime_is_smaller() -> None:
    # Stored 10 minutes ago at 30 min of uptime; the desk rebooted since, and its
    # first status says 8 s of uptime: it cannot be from the boot before.
    state = stored(uptime_ms=30 * MINUTE_MS, applied_ago=timedelta(minutes=10))
    assert decide_now(state, legacy(8_000)).applied


def test_a_smaller_uptime_that_a_reboot_could_explain_applies() -> None:
    # 5 minutes since the stored status and a message of 5 minutes' uptime: a desk
    # rebooted just after the stored status could have sent it, so it is not history.
    state = stored(uptime_ms=30 * MINUTE_MS, applied_ago=timedelta(minutes=5))
    uptime = timedelta(minutes=5) + LEGACY_REBOOT_MARGIN
    assert decide_now(state, legacy(int(uptime.total_seconds() * 1000))).applied


def test_without_a_stored_uptime_every_legacy_status_applies() -> None:
    assert decide_now(stored(), legacy(5 * MINUTE_MS)).applied


def test_a_retained_status_applies_while_the_status_is_the_desks_own() -> None:
    assert decide_now(stored(source=Source.DESK), legacy(None, retained=True)).applied


def test_a_retained_status_never_overrides_an_admin_change() -> None:
    outcome = decide_now(stored(source=Source.ADMIN), legacy(None, retained=True))
    assert (outcome.verdict, outcome.reason) == (Verdict.STALE, RejectReason.RETAINED_SNAPSHOT)


def test_a_live_status_still_overrides_an_admin_change() -> None:
    assert decide_now(stored(source=Source.ADMIN), legacy(None)).applied


@pytest.mark.parametrize(
    ("kind", "online", "expected"),
    [
        (UpdateKind.HEARTBEAT, None, Verdict.DUPLICATE),
        (UpdateKind.AVAILABILITY, True, Verdict.DUPLICATE),
        (UpdateKind.AVAILABILITY, False, Verdict.APPLIED),
    ],
)
def test_retained_liveness_proves_nothing_but_a_retained_will_applies(
    kind: UpdateKind, online: bool | None, expected: Verdict
) -> None:
    incoming = legacy(None, retained=True, kind=kind, online=online)
    assert decide_now(stored(), incoming).verdict is expected


def test_advance_records_the_uptime_of_a_live_status_only() -> None:
    before = stored(uptime_ms=MINUTE_MS, applied_ago=timedelta(minutes=3))
    live = advance(before, legacy(4 * MINUTE_MS), now=NOW)
    assert (live.desk_uptime_ms, live.desk_uptime_at) == (4 * MINUTE_MS, NOW)
    kept = advance(before, legacy(None, retained=True), now=NOW)
    assert (kept.desk_uptime_ms, kept.desk_uptime_at) == (
        before.desk_uptime_ms,
        before.desk_uptime_at,
    )
    current = advance(before, DeskUpdate(faculty_id=3, status=Status.BUSY, version=7), now=NOW)
    assert (current.desk_uptime_ms, current.desk_uptime_at) == (None, None)


def test_the_firmware_payload_yields_its_uptime_and_name_but_never_a_clock() -> None:
    payload = (
        b'{"faculty_id":3,"faculty_name":"Dr. Ada","present":false,"status":"AWAY",'
        b'"timestamp":51234,"ntp_sync_status":"SYNCED","in_grace_period":false,'
        b'"detailed_status":"AWAY"}'
    )
    update = parse("consultease/faculty/3/status", payload)
    assert isinstance(update, DeskUpdate)
    assert (update.uptime_ms, update.claimed_name, update.ts) == (51234, "Dr. Ada", None)
    current = parse("consultease/faculty/3/status", b'{"status":"away","ts":1,"timestamp":5}')
    assert isinstance(current, DeskUpdate)
    assert current.uptime_ms is None
