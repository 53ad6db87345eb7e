"""Consultation requests (SPEC 9), pure: the lifecycle rule and the desk's wire texts.

No I/O, no clock. ``transition`` is the one rule of 9.1 (``sql/007_consultation.sql``
enforces the same table in a trigger, ``consultation_transition_allowed_v1``);
``desk_message`` and ``cancellation_payload`` are the bytes of 9.2, exactly what the
installed desk firmware parses (``../shared/FIRMWARE.md``).
"""

from __future__ import annotations

import enum
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from consultease.domain import RejectReason
from consultease.errors import ValidationError

MAX_MESSAGE: Final = 500
MAX_STUDENT_NAME: Final = 100
MAX_STUDENT_ID: Final = 32
MAX_COURSE_CODE: Final = 32

DEFAULT_REQUEST_TIMEOUT: Final = 600.0
"""``CONSULTEASE_REQUEST_TIMEOUT``: seconds a request may stay pending before it expires."""

DESK_PACKET_LIMIT: Final = 1024
"""The firmware's PubSubClient buffer (config.h:146): a larger packet is dropped unseen."""


class ConsultationStatus(enum.StrEnum):
    """Where a request stands. Stored verbatim in ``consultation.status``."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    COMPLETED = "completed"

    @property
    def open(self) -> bool:
        """Pending or accepted: the student still has this request with this lecturer."""
        return self in OPEN_STATUSES

    @property
    def final(self) -> bool:
        return self in FINAL_STATUSES


OPEN_STATUSES: Final = frozenset({ConsultationStatus.PENDING, ConsultationStatus.ACCEPTED})
FINAL_STATUSES: Final = frozenset(set(ConsultationStatus) - OPEN_STATUSES)


class ConsultationEvent(enum.StrEnum):
    """What can happen to a request."""

    ACKNOWLEDGE = "acknowledge"
    """The desk's ACKNOWLEDGE (blue) button."""
    BUSY = "busy"
    """The desk's BUSY (red) button: declined, and the lecturer becomes busy."""
    CANCEL = "cancel"
    """The student (kiosk) or an admin withdraws it."""
    EXPIRE = "expire"
    """Pending for longer than the request timeout (the sweeper)."""
    COMPLETE = "complete"
    """The consultation took place (an admin or the lecturer closes it)."""


class ClosedBy(enum.StrEnum):
    """Who closed a request. Stored verbatim in ``consultation.closed_by``."""

    STUDENT = "student"
    DESK = "desk"
    ADMIN = "admin"
    SYSTEM = "system"


TRANSITIONS: Final[dict[tuple[ConsultationStatus, ConsultationEvent], ConsultationStatus]] = {
    (ConsultationStatus.PENDING, ConsultationEvent.ACKNOWLEDGE): ConsultationStatus.ACCEPTED,
    (ConsultationStatus.PENDING, ConsultationEvent.BUSY): ConsultationStatus.DECLINED,
    (ConsultationStatus.PENDING, ConsultationEvent.CANCEL): ConsultationStatus.CANCELLED,
    (ConsultationStatus.PENDING, ConsultationEvent.EXPIRE): ConsultationStatus.EXPIRED,
    (ConsultationStatus.ACCEPTED, ConsultationEvent.COMPLETE): ConsultationStatus.COMPLETED,
    (ConsultationStatus.ACCEPTED, ConsultationEvent.CANCEL): ConsultationStatus.CANCELLED,
}
"""Every valid (status, event) and where it leads; anything else is refused."""

EVENT_TARGET: Final[dict[ConsultationEvent, ConsultationStatus]] = {
    event: target for (_, event), target in TRANSITIONS.items()
}
"""The status each event leads to (each event has exactly one)."""

ALLOWED_CHANGES: Final = frozenset((old, new) for (old, _), new in TRANSITIONS.items())
"""The (old, new) status pairs the database trigger allows."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Refusal:
    """Why an event does not change a request: ``duplicate`` when the request is
    already where the event leads (a repeated button press, a second cancel),
    ``invalid_transition`` otherwise."""

    reason: RejectReason
    current: ConsultationStatus
    event: ConsultationEvent

    @property
    def detail(self) -> str:
        return f"{self.event.value} on a {self.current.value} request"


def transition(
    current: ConsultationStatus, event: ConsultationEvent
) -> ConsultationStatus | Refusal:
    """The status ``event`` moves a request in status ``current`` to, or why it does not."""
    target = TRANSITIONS.get((current, event))
    if target is not None:
        return target
    reason = (
        RejectReason.DUPLICATE
        if EVENT_TARGET[event] is current
        else RejectReason.INVALID_TRANSITION
    )
    return Refusal(reason=reason, current=current, event=event)


def closed_by(event: ConsultationEvent, *, actor: ClosedBy) -> ClosedBy | None:
    """What ``closed_by`` a transition by ``event`` records: nobody for an
    acceptance (the request stays open), the system for an expiry, the desk for
    its buttons, else ``actor``."""
    if event is ConsultationEvent.ACKNOWLEDGE:
        return None
    if event is ConsultationEvent.EXPIRE:
        return ClosedBy.SYSTEM
    if event is ConsultationEvent.BUSY:
        return ClosedBy.DESK
    return actor


# -- what a request and a student are made of --------------------------------------

_STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,31}")
_RFID_UID = re.compile(r"[0-9A-F]{4,32}")


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestFields:
    """What a student fills in, trimmed and checked (the same limits as the table's CHECKs)."""

    student_name: str
    student_id: str | None
    course_code: str | None
    message: str

    @classmethod
    def clean(
        cls,
        *,
        student_name: str,
        student_id: str | None = None,
        course_code: str | None = None,
        message: str,
    ) -> RequestFields:
        """Trim every field; the first problem raises ``ValidationError`` naming its field."""
        name = " ".join(student_name.split())
        if not name:
            raise ValidationError("the student's name must not be empty", field="student_name")
        if len(name) > MAX_STUDENT_NAME:
            raise ValidationError(
                f"the student's name is longer than {MAX_STUDENT_NAME} characters",
                field="student_name",
            )
        sid = (student_id or "").strip() or None
        if sid is not None and _STUDENT_ID.fullmatch(sid) is None:
            raise ValidationError(
                f"a student id is 1 to {MAX_STUDENT_ID} letters, digits or . _ / -: {sid!r}",
                field="student_id",
            )
        course = " ".join((course_code or "").split()) or None
        if course is not None and len(course) > MAX_COURSE_CODE:
            raise ValidationError(
                f"the course code is longer than {MAX_COURSE_CODE} characters", field="course_code"
            )
        text = message.strip()
        if not text:
            raise ValidationError("the message must not be empty", field="message")
        if len(text) > MAX_MESSAGE:
            raise ValidationError(
                f"the message is {len(text)} characters, at most {MAX_MESSAGE}", field="message"
            )
        return cls(student_name=name, student_id=sid, course_code=course, message=text)


def clean_student_id(text: str) -> str:
    """A student id as stored: trimmed, 1 to 32 letters, digits or ``. _ / -``."""
    sid = text.strip()
    if _STUDENT_ID.fullmatch(sid) is None:
        raise ValidationError(
            f"a student id is 1 to {MAX_STUDENT_ID} letters, digits or . _ / -: {sid!r}",
            field="student_id",
        )
    return sid


def normalize_rfid_uid(text: str) -> str:
    """A card UID as a USB reader types it (decimal digits or hex, any case), as
    stored: upper case, 4 to 32 characters of ``0-9A-F``."""
    uid = text.strip().upper()
    if _RFID_UID.fullmatch(uid) is None:
        raise ValidationError(
            f"an RFID card UID is 4 to 32 digits or hex letters: {text.strip()!r}",
            field="rfid_uid",
        )
    return uid


# -- the wire texts of SPEC 9.2 ------------------------------------------------------


def _one_line(text: str) -> str:
    """Control characters (newlines, tabs, NUL) become spaces: the desk shows one line
    per field and its parser splits on the text's own markers."""
    return "".join(" " if unicodedata.category(c) == "Cc" else c for c in text).strip()


def desk_message(
    *,
    consultation_id: int,
    student_name: str,
    student_id: str | None,
    message: str,
    topic_length: int = 0,
) -> str:
    """``CID:{id} From:{student_name} (SID:{student_id}): {message}``, ``SID:-`` when the
    student id is unknown.

    The desk's MQTT buffer is ``DESK_PACKET_LIMIT`` bytes for the whole PUBLISH packet
    (header, topic, packet id and payload), and a larger packet is dropped without a
    trace; give ``topic_length`` (bytes) and the message is cut, on a character
    boundary and marked with "…", so that the packet fits. Nothing else is ever cut.
    """
    sid = _one_line(student_id or "") or "-"
    head = f"CID:{consultation_id} From:{_one_line(student_name)} (SID:{sid}): "
    body = _one_line(message)
    text = head + body
    # fixed header (1) + remaining length (2 below 16 KiB) + topic length (2) + packet id (2)
    budget = DESK_PACKET_LIMIT - 7 - topic_length
    if topic_length and len(text.encode()) > budget:
        room = budget - len(head.encode()) - len("…".encode())
        cut = body.encode()[: max(room, 0)].decode("utf-8", errors="ignore")
        text = head + cut + "…"
    return text


def cancellation_payload(
    *,
    consultation_id: int,
    student_name: str,
    course_code: str | None,
    cancelled_at: datetime,
) -> bytes:
    """The ``…/cancellations`` JSON the firmware parses (ino:2041-2120)."""
    return json.dumps(
        {
            "type": "consultation_cancelled",
            "consultation_id": consultation_id,
            "student_name": student_name,
            "course_code": course_code,
            "cancelled_at": cancelled_at.astimezone(UTC).isoformat(),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
