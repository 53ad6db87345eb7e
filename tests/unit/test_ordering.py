"""The ordering rules of SPEC section 4, rule by rule and as a property."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consultease.domain import (
    VERSION_LIMIT,
    DeskState,
    DeskUpdate,
    RejectReason,
    Status,
    UpdateKind,
    Verdict,
)
from consultease.ordering import advance, decide

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SKEW = timedelta(seconds=300)


def update(
    *,
    version: int | None = None,
    ts: datetime | None = None,
    status: Status = Status.AVAILABLE,
    kind: UpdateKind = UpdateKind.STATUS,
) -> DeskUpdate:
    return DeskUpdate(faculty_id=1, kind=kind, status=status, version=version, ts=ts)


def stored(
    *, version: int | None = None, ts: datetime | None = None, active: bool = True
) -> DeskState:
    return DeskState(active=active, desk_version=version, desk_ts=ts)


def verdict(state: DeskState | None, incoming: DeskUpdate) -> Verdict:
    return decide(state, incoming, NOW, max_clock_skew=SKEW).verdict


def test_unknown_faculty_is_rejected() -> None:
    outcome = decide(None, update(version=1), NOW, max_clock_skew=SKEW)
    assert outcome.verdict is Verdict.REJECTED
    assert outcome.reason is RejectReason.UNKNOWN_FACULTY


def test_inactive_faculty_is_rejected_as_unknown() -> None:
    outcome = decide(stored(active=False), update(version=5), NOW, max_clock_skew=SKEW)
    assert outcome.reason is RejectReason.UNKNOWN_FACULTY


def test_heartbeat_for_unknown_faculty_is_rejected() -> None:
    outcome = decide(None, update(kind=UpdateKind.HEARTBEAT), NOW, max_clock_skew=SKEW)
    assert outcome.reason is RejectReason.UNKNOWN_FACULTY


def test_timestamp_beyond_skew_is_rejected() -> None:
    far = NOW + SKEW + timedelta(milliseconds=1)
    outcome = decide(stored(), update(version=1, ts=far), NOW, max_clock_skew=SKEW)
    assert outcome.verdict is Verdict.REJECTED
    assert outcome.reason is RejectReason.CLOCK_SKEW


def test_timestamp_exactly_at_skew_bound_applies() -> None:
    assert verdict(stored(), update(version=1, ts=NOW + SKEW)) is Verdict.APPLIED


def test_clock_skew_is_checked_before_versions() -> None:
    # Even a higher version is refused when its clock runs far ahead.
    far = NOW + timedelta(days=365)
    outcome = decide(stored(version=1), update(version=2, ts=far), NOW, max_clock_skew=SKEW)
    assert outcome.reason is RejectReason.CLOCK_SKEW


def test_timestamp_in_the_past_is_not_skew() -> None:
    assert verdict(stored(), update(version=1, ts=NOW - timedelta(days=3))) is Verdict.APPLIED


@pytest.mark.parametrize(
    ("incoming", "current", "expected"),
    [
        (2, 1, Verdict.APPLIED),
        (1, 1, Verdict.DUPLICATE),
        (1, 2, Verdict.STALE),
        (0, 0, Verdict.DUPLICATE),
        (1, 0, Verdict.APPLIED),
        (0, 1, Verdict.STALE),
        (VERSION_LIMIT - 1, VERSION_LIMIT - 2, Verdict.APPLIED),
        (VERSION_LIMIT - 1, VERSION_LIMIT - 1, Verdict.DUPLICATE),
        (VERSION_LIMIT - 2, VERSION_LIMIT - 1, Verdict.STALE),
        (2**32, 2**32 - 1, Verdict.APPLIED),  # a reboot: boot_count + 1, seq from 0
    ],
)
def test_versions_decide_when_both_present(incoming: int, current: int, expected: Verdict) -> None:
    assert verdict(stored(version=current), update(version=incoming)) is expected


def test_version_wins_over_timestamp() -> None:
    # A newer version with an older device clock (clock reset) still applies.
    state = stored(version=5, ts=NOW)
    assert verdict(state, update(version=6, ts=NOW - timedelta(hours=1))) is Verdict.APPLIED
    assert verdict(state, update(version=4, ts=NOW + timedelta(seconds=1))) is Verdict.STALE


def test_stale_outcome_carries_stale_reason() -> None:
    outcome = decide(stored(version=9), update(version=3), NOW, max_clock_skew=SKEW)
    assert outcome.reason is RejectReason.STALE


@pytest.mark.parametrize(
    ("incoming_version", "stored_version"), [(None, 3), (3, None), (None, None)]
)
def test_timestamps_decide_when_a_version_is_missing(
    incoming_version: int | None, stored_version: int | None
) -> None:
    t0 = NOW - timedelta(seconds=10)
    state = stored(version=stored_version, ts=t0)
    assert verdict(state, update(version=incoming_version, ts=t0 + timedelta(milliseconds=1))) is (
        Verdict.APPLIED
    )
    assert verdict(state, update(version=incoming_version, ts=t0)) is Verdict.DUPLICATE
    assert verdict(state, update(version=incoming_version, ts=t0 - timedelta(seconds=1))) is (
        Verdict.STALE
    )


def test_first_message_applies() -> None:
    assert verdict(stored(), update(version=7, ts=NOW)) is Verdict.APPLIED


def test_legacy_message_without_version_or_ts_always_applies() -> None:
    assert verdict(stored(version=100, ts=NOW), update()) is Verdict.APPLIED


def test_missing_ts_on_one_side_applies() -> None:
    assert verdict(stored(ts=NOW), update(version=None, ts=None)) is Verdict.APPLIED
    assert verdict(stored(), update(ts=NOW - timedelta(days=1))) is Verdict.APPLIED


def test_after_desk_reset_any_version_applies() -> None:
    # reset-desk clears desk_version and desk_ts; a replacement unit starts at 0.
    assert verdict(stored(version=None, ts=None), update(version=0, ts=NOW)) is Verdict.APPLIED


@pytest.mark.parametrize("kind", [UpdateKind.HEARTBEAT, UpdateKind.AVAILABILITY])
def test_liveness_messages_are_not_ordered(kind: UpdateKind) -> None:
    assert verdict(stored(version=10, ts=NOW), update(kind=kind)) is Verdict.APPLIED


def test_advance_records_the_applied_update_ordering_facts() -> None:
    after = advance(stored(version=1, ts=NOW), update(version=2, ts=None))
    assert (after.desk_version, after.desk_ts) == (2, None)


def test_advance_ignores_liveness_messages() -> None:
    before = stored(version=1, ts=NOW)
    assert advance(before, update(kind=UpdateKind.HEARTBEAT)) == before


# -- property: any delivery order, any duplicates, the highest version wins -----


@given(
    versions=st.lists(
        st.integers(min_value=0, max_value=VERSION_LIMIT - 1), min_size=1, max_size=40, unique=True
    ),
    statuses=st.lists(st.sampled_from(list(Status)), min_size=40, max_size=40),
    duplicate_picks=st.lists(st.integers(min_value=0, max_value=39), max_size=20),
    seed=st.integers(),
)
def test_final_state_is_the_highest_version_whatever_the_delivery_order(
    versions: list[int], statuses: list[Status], duplicate_picks: list[int], seed: int
) -> None:
    updates = [
        update(version=v, status=statuses[i], ts=NOW - timedelta(seconds=i))
        for i, v in enumerate(versions)
    ]
    delivered = updates + [updates[i % len(updates)] for i in duplicate_picks]
    random.Random(seed).shuffle(delivered)

    state = stored()
    shown: Status | None = None
    for incoming in delivered:
        if decide(state, incoming, NOW, max_clock_skew=SKEW).applied:
            state = advance(state, incoming)
            shown = incoming.status

    highest = max(updates, key=lambda u: u.version or 0)
    assert state.desk_version == highest.version
    assert shown is highest.status


@given(
    first=st.integers(min_value=0, max_value=VERSION_LIMIT - 1),
    second=st.integers(min_value=0, max_value=VERSION_LIMIT - 1),
)
def test_exactly_one_of_two_distinct_versions_applies_over_the_other(
    first: int, second: int
) -> None:
    forward = verdict(stored(version=first), update(version=second))
    backward = verdict(stored(version=second), update(version=first))
    if first == second:
        assert forward is backward is Verdict.DUPLICATE
    else:
        assert {forward, backward} == {Verdict.APPLIED, Verdict.STALE}
