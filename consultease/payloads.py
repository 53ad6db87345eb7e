"""Pure parsing of desk messages (SPEC 3.1-3.3): topic + bytes -> ``DeskUpdate`` | ``Rejection``.

No I/O, no clock, no logging: ``parse`` never raises, whatever the bytes.
Every malformed input becomes a ``Rejection`` naming its ``RejectReason``,
which the store records in ``ingest_rejection``.

Accepted on ``consultease/faculty/{id}/status``:

- current format: ``{"status": "available"|"away"|"busy", "version": int,
  "ts": epoch ms, "desk_id": str}`` (status case-insensitive, the others optional);
- legacy ESP32 format: ``{"faculty_id": 3, "present": true, "status": "AVAILABLE",
  "timestamp": 51234, ...}``. ``timestamp`` is uptime, not a clock, and is ignored;
  when ``status`` is absent, ``present`` decides between available and away.

On ``…/mac_status``: ``{"status": "faculty_present"|"faculty_absent", ...}``.
On ``…/heartbeat``: any JSON object. On ``…/availability``: plain ``online``/``offline``.
On ``…/responses`` (SPEC 9.2, the firmware's P6): ``{"response_type": "ACKNOWLEDGE"|"BUSY",
"message_id": "<CID>", ...}`` (any case; the CID a string of digits or an integer) ->
``DeskResponse``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from consultease.domain import (
    MAX_PAYLOAD_BYTES,
    TOPIC_ROOT,
    VERSION_LIMIT,
    DeskResponse,
    DeskUpdate,
    Rejection,
    RejectReason,
    ResponseType,
    Status,
    UpdateKind,
)

FACULTY_TOPIC_PREFIX: Final = f"{TOPIC_ROOT}/faculty/"
STATUS_SUFFIX: Final = "status"
MAC_STATUS_SUFFIX: Final = "mac_status"
HEARTBEAT_SUFFIX: Final = "heartbeat"
AVAILABILITY_SUFFIX: Final = "availability"
RESPONSES_SUFFIX: Final = "responses"
STATE_SUFFIX: Final = "state"
"""System -> desk (SPEC 3.4); never parsed here."""
MESSAGES_SUFFIX: Final = "messages"
CANCELLATIONS_SUFFIX: Final = "cancellations"
"""System -> desk (SPEC 9.2): consultation requests and their cancellations."""

INBOUND_SUFFIXES: Final = (
    STATUS_SUFFIX,
    HEARTBEAT_SUFFIX,
    AVAILABILITY_SUFFIX,
    MAC_STATUS_SUFFIX,
    RESPONSES_SUFFIX,
)
"""The desk -> system topic suffixes the ingest service subscribes to."""

_ID_LIMIT: Final = 2**63
"""Faculty ids are PostgreSQL bigints."""
_TOPIC_ID = re.compile(r"[1-9][0-9]{0,18}")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_DETAIL_LIMIT: Final = 80

_STATUS_WORDS: Final[dict[str, Status]] = {s.value: s for s in Status}
_MAC_WORDS: Final[dict[str, Status]] = {
    "faculty_present": Status.AVAILABLE,
    "faculty_absent": Status.AWAY,
    **_STATUS_WORDS,
}
_AVAILABILITY_WORDS: Final[dict[str, bool]] = {"online": True, "offline": False}


def faculty_topic(faculty_id: int, suffix: str) -> str:
    """``consultease/faculty/{faculty_id}/{suffix}``."""
    return f"{FACULTY_TOPIC_PREFIX}{faculty_id}/{suffix}"


class _Reject(Exception):
    """Internal control flow: raised by the helpers, caught by ``parse``."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse(topic: str, payload: bytes) -> DeskUpdate | DeskResponse | Rejection:
    """The update ``payload`` on ``topic`` carries, or why it was refused. Never raises."""
    try:
        return _parse(topic, payload)
    except _Reject as exc:
        return Rejection(topic=topic, payload=payload, reason=exc.reason, detail=exc.detail)
    except Exception as exc:  # a bug must not take the service down: refuse the message
        return Rejection(
            topic=topic,
            payload=payload,
            reason=RejectReason.INVALID_FIELD,
            detail=_cut(f"parser error: {type(exc).__name__}"),
        )


def _parse(topic: str, payload: bytes) -> DeskUpdate | DeskResponse:
    faculty_id, suffix = _split_topic(topic)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise _Reject(RejectReason.OVERSIZED, f"{len(payload)} bytes, limit {MAX_PAYLOAD_BYTES}")
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Reject(RejectReason.INVALID_ENCODING, f"not UTF-8 at byte {exc.start}") from None

    if suffix == AVAILABILITY_SUFFIX:
        return _availability(faculty_id, text, topic, payload)

    body = _json_object(text)
    _check_faculty_id(body, faculty_id)
    if suffix == RESPONSES_SUFFIX:
        return _response(faculty_id, body, topic, payload)
    if suffix == HEARTBEAT_SUFFIX:
        return DeskUpdate(
            faculty_id=faculty_id, kind=UpdateKind.HEARTBEAT, topic=topic, payload=payload
        )
    words = _MAC_WORDS if suffix == MAC_STATUS_SUFFIX else _STATUS_WORDS
    return DeskUpdate(
        faculty_id=faculty_id,
        kind=UpdateKind.STATUS,
        status=_status(body, words),
        version=_version(body),
        ts=_timestamp(body),
        desk_id=_desk_id(body),
        topic=topic,
        payload=payload,
    )


def _split_topic(topic: str) -> tuple[int, str]:
    if not topic.startswith(FACULTY_TOPIC_PREFIX):
        raise _Reject(RejectReason.INVALID_TOPIC, "not under " + FACULTY_TOPIC_PREFIX)
    parts = topic[len(FACULTY_TOPIC_PREFIX) :].split("/")
    if len(parts) != 2:
        raise _Reject(RejectReason.INVALID_TOPIC, "expected faculty/{id}/{kind}")
    raw_id, suffix = parts
    if suffix not in INBOUND_SUFFIXES:
        raise _Reject(RejectReason.INVALID_TOPIC, f"unknown message kind {_cut(suffix)!r}")
    if _TOPIC_ID.fullmatch(raw_id) is None or int(raw_id) >= _ID_LIMIT:
        raise _Reject(
            RejectReason.INVALID_TOPIC, f"faculty id {_cut(raw_id)!r} is not a positive integer"
        )
    return int(raw_id), suffix


def _availability(faculty_id: int, text: str, topic: str, payload: bytes) -> DeskUpdate:
    online = _AVAILABILITY_WORDS.get(text.strip().lower())
    if online is None:
        raise _Reject(
            RejectReason.UNKNOWN_STATUS,
            f"availability must be online or offline, got {_cut(text)!r}",
        )
    return DeskUpdate(
        faculty_id=faculty_id,
        kind=UpdateKind.AVAILABILITY,
        online=online,
        topic=topic,
        payload=payload,
    )


_RESPONSE_WORDS: Final[dict[str, ResponseType]] = {r.value: r for r in ResponseType}
_CID = re.compile(r"[0-9]{1,19}")


def _response(faculty_id: int, body: dict[str, Any], topic: str, payload: bytes) -> DeskResponse:
    raw_type = body.get("response_type")
    if not isinstance(raw_type, str):
        raise _Reject(
            RejectReason.INVALID_FIELD, f"response_type must be a string: {_cut(raw_type)}"
        )
    response = _RESPONSE_WORDS.get(raw_type.strip().upper())
    if response is None:
        raise _Reject(RejectReason.UNKNOWN_RESPONSE, f"unknown response_type {_cut(raw_type)}")
    raw_id = body.get("message_id")
    cid: int | None = None
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        cid = raw_id
    elif isinstance(raw_id, str) and _CID.fullmatch(raw_id.strip()):
        cid = int(raw_id.strip())
    if cid is None or not 0 < cid < _ID_LIMIT:
        raise _Reject(
            RejectReason.INVALID_FIELD,
            f"message_id must be a consultation id (digits): {_cut(raw_id)}",
        )
    return DeskResponse(
        faculty_id=faculty_id,
        consultation_id=cid,
        response=response,
        topic=topic,
        payload=payload,
    )


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _Reject(RejectReason.INVALID_JSON, _cut(str(exc))) from None
    if not isinstance(value, dict):
        raise _Reject(RejectReason.NOT_OBJECT, f"a JSON {type(value).__name__}, not an object")
    return value


def _is_int(value: object) -> bool:
    """JSON integers only: ``true`` is not 1, and ``1.0`` is not an integer."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_faculty_id(body: dict[str, Any], faculty_id: int) -> None:
    claimed = body.get("faculty_id")
    if claimed is None:
        return
    if not _is_int(claimed):
        raise _Reject(RejectReason.INVALID_FIELD, f"faculty_id must be an integer: {_cut(claimed)}")
    if claimed != faculty_id:
        raise _Reject(
            RejectReason.FACULTY_MISMATCH,
            f"payload faculty_id {_cut(claimed)} on the topic of faculty {faculty_id}",
        )


def _status(body: dict[str, Any], words: dict[str, Status]) -> Status:
    raw = body.get("status")
    if raw is None:
        present = body.get("present")
        if isinstance(present, bool):  # legacy firmware without a status word
            return Status.AVAILABLE if present else Status.AWAY
        if present is not None:
            raise _Reject(RejectReason.INVALID_FIELD, f"present must be a boolean: {_cut(present)}")
        raise _Reject(RejectReason.INVALID_FIELD, "status is missing")
    if not isinstance(raw, str):
        raise _Reject(RejectReason.INVALID_FIELD, f"status must be a string: {_cut(raw)}")
    status = words.get(raw.strip().lower())
    if status is None:
        raise _Reject(RejectReason.UNKNOWN_STATUS, f"unknown status {_cut(raw)}")
    return status


def _version(body: dict[str, Any]) -> int | None:
    raw = body.get("version")
    if raw is None:
        return None
    if not _is_int(raw):
        raise _Reject(RejectReason.INVALID_FIELD, f"version must be an integer: {_cut(raw)}")
    if not 0 <= raw < VERSION_LIMIT:
        raise _Reject(RejectReason.VERSION_OUT_OF_RANGE, f"version {_cut(raw)} not in [0, 2**63)")
    return int(raw)


def _timestamp(body: dict[str, Any]) -> datetime | None:
    raw = body.get("ts")
    if raw is None:
        return None
    if not _is_int(raw):
        raise _Reject(RejectReason.INVALID_FIELD, f"ts must be integer milliseconds: {_cut(raw)}")
    try:
        return _EPOCH + timedelta(milliseconds=raw)
    except OverflowError:
        raise _Reject(RejectReason.INVALID_FIELD, f"ts {_cut(raw)} is out of range") from None


def _desk_id(body: dict[str, Any]) -> str | None:
    raw = body.get("desk_id")
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise _Reject(RejectReason.INVALID_FIELD, f"desk_id must be a string: {_cut(raw)}")
    return raw


def _cut(value: object) -> str:
    """A short, printable rendering for a rejection's detail (``repr`` escapes NULs
    and lone surrogates, which a PostgreSQL text column would refuse)."""
    text = value if isinstance(value, str) else repr(value)
    text = ascii(text)[1:-1] if not text.isprintable() or not text.isascii() else text
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"
