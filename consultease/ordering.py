"""The ordering rules of SPEC section 4, as one pure function.

``decide`` reads no clock and does no I/O: the store passes the database's
``now()`` and the row it holds locked, and acts on the verdict.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, TypeVar

from consultease.domain import (
    APPLIED,
    DUPLICATE,
    STALE,
    DeskState,
    DeskUpdate,
    Outcome,
    RejectReason,
    Source,
    UpdateKind,
    Verdict,
    rejected,
)

_Ordered = TypeVar("_Ordered", int, datetime)

LEGACY_REBOOT_MARGIN: Final = timedelta(seconds=30)
"""How long a legacy desk's status may take from its making to the database (rule 5a):
a message whose uptime exceeds the time since the stored status by more than this was
made before any reboot since, so its uptime can be compared with the stored one."""


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
    5a. Else a legacy status (uptime, no version, no clock) older by the desk's own
        uptime than the legacy status last applied live, and made in the same boot
        (its uptime exceeds the time since then by more than ``LEGACY_REBOOT_MARGIN``,
        so no reboot came between): stale, reason ``offline_queue``. This is the
        firmware's offline queue, drained after the fresh status on reconnect.
    5b. Else a retained status (a broker snapshot of unknown age, SPEC 3.4a) applies
        only while the status is the desk's own (``status_source`` desk: no admin
        change since the desk last spoke live); otherwise stale, reason
        ``retained_snapshot``.
    5. Else (first message, legacy firmware, desk reset): applies.

    Heartbeats and availability messages only prove liveness; they are not
    ordered against status updates, so past rules 1 and 2 they apply, except that a
    retained one proves nothing: a retained heartbeat or ``online`` is a duplicate
    (it changes nothing), a retained ``offline`` (a last will) applies.
    """
    if stored is None or not stored.active:
        return rejected(RejectReason.UNKNOWN_FACULTY)
    if incoming.ts is not None and incoming.ts - now > max_clock_skew:
        return rejected(RejectReason.CLOCK_SKEW)
    if incoming.kind is not UpdateKind.STATUS:
        if incoming.retained and (incoming.kind is UpdateKind.HEARTBEAT or incoming.online):
            return DUPLICATE
        return APPLIED
    return _decide_status(stored, incoming, now)


def _decide_status(stored: DeskState, incoming: DeskUpdate, now: datetime) -> Outcome:
    """Rules 3 to 5 for a status update."""
    if incoming.version is not None and stored.desk_version is not None:
        return _compare(incoming.version, stored.desk_version)
    if incoming.ts is not None and stored.desk_ts is not None:
        return _compare(incoming.ts, stored.desk_ts)
    if _queued_before_stored(stored, incoming, now):
        return rejected(RejectReason.OFFLINE_QUEUE, verdict=Verdict.STALE)
    if incoming.retained and stored.status_source is not Source.DESK:
        return rejected(RejectReason.RETAINED_SNAPSHOT, verdict=Verdict.STALE)
    return APPLIED


def _queued_before_stored(stored: DeskState, incoming: DeskUpdate, now: datetime) -> bool:
    """Rule 5a: ``incoming`` was made before the stored legacy status, in the same boot."""
    if (
        incoming.version is not None
        or incoming.ts is not None
        or incoming.uptime_ms is None
        or stored.desk_uptime_ms is None
        or stored.desk_uptime_at is None
        or incoming.uptime_ms >= stored.desk_uptime_ms
    ):
        return False
    since_stored = max(now - stored.desk_uptime_at, timedelta(0))
    return timedelta(milliseconds=incoming.uptime_ms) > since_stored + LEGACY_REBOOT_MARGIN


def _compare(incoming: _Ordered, stored: _Ordered) -> Outcome:
    if incoming > stored:
        return APPLIED
    if incoming == stored:
        return DUPLICATE
    return STALE


def advance(stored: DeskState, update: DeskUpdate, *, now: datetime | None = None) -> DeskState:
    """The stored ordering facts after ``update`` was applied (SPEC 4: applying
    sets ``desk_version`` and ``desk_ts`` to the update's own, even when absent).
    A live legacy status also records its uptime and ``now``; a retained one leaves
    them, since its age is unknown."""
    if update.kind is not UpdateKind.STATUS:
        return stored
    uptime_ms, uptime_at = stored.desk_uptime_ms, stored.desk_uptime_at
    if not update.retained:
        uptime_ms = update.uptime_ms
        uptime_at = now if update.uptime_ms is not None else None
        uptime_ms = uptime_ms if uptime_at is not None else None
    return DeskState(
        active=stored.active,
        desk_version=update.version,
        desk_ts=update.ts,
        status_source=Source.DESK,
        desk_uptime_ms=uptime_ms,
        desk_uptime_at=uptime_at,
    )
