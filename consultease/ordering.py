"""The ordering rules of SPEC section 4, as one pure function.

``decide`` reads no clock and does no I/O: the store passes the database's
``now()`` and the row it holds locked, and acts on the verdict.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypeVar

from consultease.domain import (
    APPLIED,
    DUPLICATE,
    STALE,
    DeskState,
    DeskUpdate,
    Outcome,
    RejectReason,
    UpdateKind,
    rejected,
)

_Ordered = TypeVar("_Ordered", int, datetime)


def decide(
    stored: DeskState | None,
    incoming: DeskUpdate,
    now: datetime,
    *,
    max_clock_skew: timedelta,
) -> Outcome:
    """Whether ``incoming`` may be applied over ``stored``.

    1. No active faculty: rejected (``unknown_faculty``).
    2. Device time more than ``max_clock_skew`` ahead of ``now``: rejected
       (``clock_skew``); exactly at the bound is accepted.
    3. Both versions known: higher applies, equal is a duplicate, lower is stale.
    4. Else both timestamps known: the same comparison on timestamps.
    5. Else (first message, legacy firmware, desk reset): applies.

    Heartbeats and availability messages only prove liveness; they are not
    ordered against status updates, so past rules 1 and 2 they apply.
    """
    if stored is None or not stored.active:
        return rejected(RejectReason.UNKNOWN_FACULTY)
    if incoming.ts is not None and incoming.ts - now > max_clock_skew:
        return rejected(RejectReason.CLOCK_SKEW)
    if incoming.kind is not UpdateKind.STATUS:
        return APPLIED
    if incoming.version is not None and stored.desk_version is not None:
        return _compare(incoming.version, stored.desk_version)
    if incoming.ts is not None and stored.desk_ts is not None:
        return _compare(incoming.ts, stored.desk_ts)
    return APPLIED


def _compare(incoming: _Ordered, stored: _Ordered) -> Outcome:
    if incoming > stored:
        return APPLIED
    if incoming == stored:
        return DUPLICATE
    return STALE


def advance(stored: DeskState, update: DeskUpdate) -> DeskState:
    """The stored ordering facts after ``update`` was applied (SPEC 4: applying
    sets ``desk_version`` and ``desk_ts`` to the update's own, even when absent)."""
    if update.kind is not UpdateKind.STATUS:
        return stored
    return DeskState(active=stored.active, desk_version=update.version, desk_ts=update.ts)
