"""The vocabulary of the system: plain, frozen values with no I/O.

Everything that crosses a boundary (MQTT -> store, store -> listener,
listener -> kiosk) is one of these.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

VERSION_LIMIT = 2**63
"""Desk versions live in ``0 <= v < VERSION_LIMIT`` (a PostgreSQL bigint)."""

MAX_PAYLOAD_BYTES = 4096
TOPIC_ROOT = "consultease"


class Status(enum.StrEnum):
    """What a lecturer is, as far as students are concerned."""

    AVAILABLE = "available"
    AWAY = "away"
    BUSY = "busy"


class Source(enum.StrEnum):
    """Who made the last change of ``status``."""

    DESK = "desk"
    ADMIN = "admin"


class UpdateKind(enum.StrEnum):
    """The desk-to-system message kinds of SPEC section 3."""

    STATUS = "status"
    HEARTBEAT = "heartbeat"
    AVAILABILITY = "availability"
    RESPONSE = "response"
    """A lecturer's answer to a consultation request (``DeskResponse``, SPEC 9.2)."""


class Verdict(enum.StrEnum):
    """What became of one incoming update."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    REJECTED = "rejected"


class RejectReason(enum.StrEnum):
    """Why a message was not applied. Stored verbatim in ``ingest_rejection.reason``."""

    UNKNOWN_FACULTY = "unknown_faculty"
    CLOCK_SKEW = "clock_skew"
    STALE = "stale"
    # Malformed input, decided by the parser before the database is asked.
    INVALID_TOPIC = "invalid_topic"
    OVERSIZED = "oversized"
    INVALID_ENCODING = "invalid_encoding"
    INVALID_JSON = "invalid_json"
    NOT_OBJECT = "not_object"
    INVALID_FIELD = "invalid_field"
    UNKNOWN_STATUS = "unknown_status"
    VERSION_OUT_OF_RANGE = "version_out_of_range"
    FACULTY_MISMATCH = "faculty_mismatch"
    # Desk answers to consultation requests (SPEC 9.2).
    UNKNOWN_RESPONSE = "unknown_response"
    UNKNOWN_CONSULTATION = "unknown_consultation"
    WRONG_FACULTY = "wrong_faculty"
    INVALID_TRANSITION = "invalid_transition"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, kw_only=True, slots=True)
class DeskUpdate:
    """One well-formed message from a desk unit.

    ``status`` is set for ``STATUS`` updates, ``online`` for ``AVAILABILITY``;
    a ``HEARTBEAT`` carries neither. ``version`` and ``ts`` are absent for
    legacy firmware. ``topic`` and ``payload`` are kept so that a rejection
    can be recorded as received.
    """

    faculty_id: int
    kind: UpdateKind = UpdateKind.STATUS
    status: Status | None = None
    online: bool | None = None
    version: int | None = None
    ts: datetime | None = None
    desk_id: str | None = None
    topic: str = ""
    payload: bytes = b""


class ResponseType(enum.StrEnum):
    """The desk's two buttons, as ``response_type`` on ``…/responses`` names them."""

    ACKNOWLEDGE = "ACKNOWLEDGE"
    BUSY = "BUSY"


@dataclass(frozen=True, kw_only=True, slots=True)
class DeskResponse:
    """A lecturer's answer to a consultation request, from the desk's buttons
    (SPEC 9.2): ``consultation_id`` is the CID the desk was shown."""

    faculty_id: int
    consultation_id: int
    response: ResponseType
    topic: str = ""
    payload: bytes = b""
    kind: UpdateKind = UpdateKind.RESPONSE


@dataclass(frozen=True, kw_only=True, slots=True)
class Rejection:
    """A message that could not even be parsed into a ``DeskUpdate``."""

    topic: str
    payload: bytes
    reason: RejectReason
    detail: str = ""


Inbound = DeskUpdate | DeskResponse | Rejection
"""What the ingest service hands to the store: parsed updates, desk answers to
consultation requests, and parse failures."""


@dataclass(frozen=True, kw_only=True, slots=True)
class DeskState:
    """The stored facts ``decide`` compares an update with."""

    active: bool
    desk_version: int | None = None
    desk_ts: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    """The verdict on one update, with a reason when it was not applied."""

    verdict: Verdict
    reason: RejectReason | None = None

    @property
    def applied(self) -> bool:
        return self.verdict is Verdict.APPLIED


APPLIED = Outcome(verdict=Verdict.APPLIED)
DUPLICATE = Outcome(verdict=Verdict.DUPLICATE)
STALE = Outcome(verdict=Verdict.STALE, reason=RejectReason.STALE)


def rejected(reason: RejectReason) -> Outcome:
    return Outcome(verdict=Verdict.REJECTED, reason=reason)


OFFLINE = "offline"
"""What the kiosk shows instead of a status when the desk is offline."""


@dataclass(frozen=True, kw_only=True, slots=True)
class FacultyView:
    """One faculty row as readers see it (kiosk, state publisher, CLI)."""

    id: int
    name: str
    department: str
    email: str
    room: str | None
    status: Status
    status_source: Source
    desk_online: bool
    active: bool
    version: int
    last_seen: datetime | None
    updated_at: datetime
    always_available: bool = False
    """Set by an admin for a lecturer without a working desk: shown as available."""
    status_since: datetime | None = None
    """When ``shown_status`` last changed (kept by the database); ``None`` when unknown."""

    @property
    def shown_status(self) -> str:
        """What the board shows; the same rule as ``faculty_shown_status_v1`` in SQL."""
        return shown_status(
            self.status, desk_online=self.desk_online, always_available=self.always_available
        )


def shown_status(status: Status, *, desk_online: bool, always_available: bool) -> str:
    """``available`` for an always-available lecturer; else ``offline`` when the desk is
    offline, whatever the last status; else the status."""
    if always_available:
        return Status.AVAILABLE.value
    return status.value if desk_online else OFFLINE
