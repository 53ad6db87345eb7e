"""The pure desk-message parser: every format of SPEC 3.1-3.3, every way to get it wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consultease.domain import (
    MAX_PAYLOAD_BYTES,
    VERSION_LIMIT,
    DeskUpdate,
    Rejection,
    RejectReason,
    Status,
    UpdateKind,
)
from consultease.payloads import faculty_topic, parse

STATUS_TOPIC = "consultease/faculty/3/status"


def as_update(result: DeskUpdate | Rejection) -> DeskUpdate:
    assert isinstance(result, DeskUpdate), result
    return result


def reason_of(result: DeskUpdate | Rejection) -> RejectReason:
    assert isinstance(result, Rejection), result
    return result.reason


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


# -- current format -------------------------------------------------------------


def test_current_format_carries_status_version_ts_and_desk_id() -> None:
    payload = dumps(
        {"status": "busy", "version": 2**32 + 7, "ts": 1_700_000_000_123, "desk_id": "d1"}
    )
    update = as_update(parse(STATUS_TOPIC, payload))
    assert update == DeskUpdate(
        faculty_id=3,
        kind=UpdateKind.STATUS,
        status=Status.BUSY,
        version=2**32 + 7,
        ts=datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC),
        desk_id="d1",
        topic=STATUS_TOPIC,
        payload=payload,
    )


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("available", Status.AVAILABLE),
        ("AWAY", Status.AWAY),
        ("Busy", Status.BUSY),
        (" available ", Status.AVAILABLE),
    ],
)
def test_status_words_are_case_insensitive(word: str, status: Status) -> None:
    assert as_update(parse(STATUS_TOPIC, dumps({"status": word}))).status is status


def test_version_and_ts_are_optional_and_unknown_fields_ignored() -> None:
    update = as_update(parse(STATUS_TOPIC, dumps({"status": "away", "extra": [1, {"x": None}]})))
    assert (update.version, update.ts, update.desk_id) == (None, None, None)


def test_null_optional_fields_count_as_absent() -> None:
    update = as_update(
        parse(STATUS_TOPIC, dumps({"status": "away", "version": None, "ts": None, "desk_id": None}))
    )
    assert (update.version, update.ts, update.desk_id) == (None, None, None)


@pytest.mark.parametrize("version", [0, 1, VERSION_LIMIT - 1])
def test_version_bounds_are_inclusive_below_exclusive_above(version: int) -> None:
    assert as_update(
        parse(STATUS_TOPIC, dumps({"status": "away", "version": version}))
    ).version == (version)


@pytest.mark.parametrize("version", [-1, VERSION_LIMIT, 10**30])
def test_version_out_of_range_is_rejected(version: int) -> None:
    result = parse(STATUS_TOPIC, dumps({"status": "away", "version": version}))
    assert reason_of(result) is RejectReason.VERSION_OUT_OF_RANGE


def test_ts_is_epoch_milliseconds_as_aware_utc() -> None:
    update = as_update(parse(STATUS_TOPIC, dumps({"status": "away", "ts": 0})))
    assert update.ts == datetime(1970, 1, 1, tzinfo=UTC)
    assert update.ts is not None and update.ts.utcoffset() is not None


# -- legacy firmware --------------------------------------------------------------

LEGACY = {
    "faculty_id": 3,
    "faculty_name": "Dr. X",
    "present": True,
    "status": "AVAILABLE",
    "timestamp": 51234,
    "ntp_sync_status": "SYNCED",
    "in_grace_period": False,
    "detailed_status": "AVAILABLE",
}


def test_legacy_firmware_message_applies_without_version_or_clock() -> None:
    payload = dumps(LEGACY)
    update = as_update(parse(STATUS_TOPIC, payload))
    assert update.status is Status.AVAILABLE
    assert update.kind is UpdateKind.STATUS
    assert (update.version, update.ts) == (None, None), "timestamp is uptime, not a clock"
    assert (update.topic, update.payload) == (STATUS_TOPIC, payload)


@pytest.mark.parametrize(("present", "status"), [(True, Status.AVAILABLE), (False, Status.AWAY)])
def test_legacy_without_status_lets_present_decide(present: bool, status: Status) -> None:
    body = {k: v for k, v in LEGACY.items() if k != "status"} | {"present": present}
    assert as_update(parse(STATUS_TOPIC, dumps(body))).status is status


def test_legacy_status_word_wins_over_present() -> None:
    body = LEGACY | {"status": "BUSY", "present": True}
    assert as_update(parse(STATUS_TOPIC, dumps(body))).status is Status.BUSY


def test_legacy_faculty_id_must_match_the_topic() -> None:
    result = parse(STATUS_TOPIC, dumps(LEGACY | {"faculty_id": 4}))
    assert reason_of(result) is RejectReason.FACULTY_MISMATCH


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("faculty_present", Status.AVAILABLE),
        ("faculty_absent", Status.AWAY),
        ("FACULTY_PRESENT", Status.AVAILABLE),
    ],
)
def test_mac_status_maps_presence_to_status(word: str, status: Status) -> None:
    payload = dumps({"status": word, "mac": "AA:BB:CC:DD:EE:FF", "timestamp": 99})
    update = as_update(parse("consultease/faculty/3/mac_status", payload))
    assert (update.kind, update.status, update.version, update.ts) == (
        UpdateKind.STATUS,
        status,
        None,
        None,
    )


def test_mac_words_are_not_status_words_on_the_status_topic() -> None:
    result = parse(STATUS_TOPIC, dumps({"status": "faculty_present"}))
    assert reason_of(result) is RejectReason.UNKNOWN_STATUS


# -- heartbeat and availability -------------------------------------------------------


@pytest.mark.parametrize("body", [{}, {"uptime": 5, "rssi": -60, "heap": 40000}, {"faculty_id": 3}])
def test_heartbeat_is_any_json_object(body: dict[str, Any]) -> None:
    update = as_update(parse("consultease/faculty/3/heartbeat", dumps(body)))
    assert (update.kind, update.status, update.online) == (UpdateKind.HEARTBEAT, None, None)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"[]", RejectReason.NOT_OBJECT),
        (b"", RejectReason.INVALID_JSON),
        (b"{", RejectReason.INVALID_JSON),
    ],
)
def test_heartbeat_must_be_a_json_object(payload: bytes, reason: RejectReason) -> None:
    assert reason_of(parse("consultease/faculty/3/heartbeat", payload)) is reason


@pytest.mark.parametrize(
    ("payload", "online"),
    [(b"online", True), (b"offline", False), (b"ONLINE\n", True), (b" offline", False)],
)
def test_availability_is_plain_online_or_offline(payload: bytes, online: bool) -> None:
    update = as_update(parse("consultease/faculty/3/availability", payload))
    assert (update.kind, update.online, update.status) == (UpdateKind.AVAILABILITY, online, None)


@pytest.mark.parametrize("payload", [b"", b"maybe", b'"online"', b"on line"])
def test_other_availability_words_are_rejected(payload: bytes) -> None:
    result = parse("consultease/faculty/3/availability", payload)
    assert reason_of(result) is RejectReason.UNKNOWN_STATUS


def test_availability_must_be_utf8() -> None:
    result = parse("consultease/faculty/3/availability", b"\xffonline")
    assert reason_of(result) is RejectReason.INVALID_ENCODING


# -- malformed input -------------------------------------------------------------------


@pytest.mark.parametrize(
    "topic",
    [
        "consultease/faculty/0/status",
        "consultease/faculty/-1/status",
        "consultease/faculty/03/status",
        "consultease/faculty/x/status",
        "consultease/faculty/1.5/status",
        "consultease/faculty/ 3/status",
        "consultease/faculty/\u0663/status",  # an Arabic-Indic digit three
        f"consultease/faculty/{2**63}/status",
        "consultease/faculty//status",
        "consultease/faculty/3/state",
        "consultease/faculty/3/status/extra",
        "consultease/faculty/3",
        "consultease/desk/3/status",
        "",
    ],
)
def test_bad_topics_are_rejected(topic: str) -> None:
    result = parse(topic, dumps({"status": "away"}))
    assert reason_of(result) is RejectReason.INVALID_TOPIC
    assert isinstance(result, Rejection) and result.topic == topic


def test_largest_bigint_id_is_accepted() -> None:
    update = as_update(parse(faculty_topic(2**63 - 1, "status"), dumps({"status": "away"})))
    assert update.faculty_id == 2**63 - 1


def test_payload_at_the_limit_is_accepted_one_more_byte_is_not() -> None:
    head = b'{"status":"away","pad":"'
    tail = b'"}'
    exact = head + b"x" * (MAX_PAYLOAD_BYTES - len(head) - len(tail)) + tail
    assert len(exact) == MAX_PAYLOAD_BYTES
    assert as_update(parse(STATUS_TOPIC, exact)).status is Status.AWAY
    too_big = exact[:-2] + b'x"}'
    assert reason_of(parse(STATUS_TOPIC, too_big)) is RejectReason.OVERSIZED


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", RejectReason.INVALID_ENCODING),
        (b'{"status": "away\xed\xa0\x80"}', RejectReason.INVALID_ENCODING),  # CESU surrogate
        (b"", RejectReason.INVALID_JSON),
        (b"{status: away}", RejectReason.INVALID_JSON),
        (b'{"status": "away"} x', RejectReason.INVALID_JSON),
        (b"\xef\xbb\xbf{}", RejectReason.INVALID_JSON),  # a UTF-8 byte-order mark
        (b"[" * 2000 + b"]" * 2000, RejectReason.INVALID_JSON),  # too deep to decode
        (b"null", RejectReason.NOT_OBJECT),
        (b'"available"', RejectReason.NOT_OBJECT),
        (b"[1, 2]", RejectReason.NOT_OBJECT),
        (b"42", RejectReason.NOT_OBJECT),
        (b"{}", RejectReason.INVALID_FIELD),
        (b'{"status": null}', RejectReason.INVALID_FIELD),
        (b'{"status": 1}', RejectReason.INVALID_FIELD),
        (b'{"status": true}', RejectReason.INVALID_FIELD),
        (b'{"status": ["away"]}', RejectReason.INVALID_FIELD),
        (b'{"present": "yes"}', RejectReason.INVALID_FIELD),
        (b'{"status": "gone"}', RejectReason.UNKNOWN_STATUS),
        (b'{"status": ""}', RejectReason.UNKNOWN_STATUS),
        (b'{"status": "away", "version": true}', RejectReason.INVALID_FIELD),
        (b'{"status": "away", "version": 1.0}', RejectReason.INVALID_FIELD),
        (b'{"status": "away", "version": "1"}', RejectReason.INVALID_FIELD),
        (b'{"status": "away", "version": NaN}', RejectReason.INVALID_FIELD),
        (b'{"status": "away", "ts": false}', RejectReason.INVALID_FIELD),
        (b'{"status": "away", "ts": 1.7e12}', RejectReason.INVALID_FIELD),
        (b'{"status": "away", "ts": "2024-01-01"}', RejectReason.INVALID_FIELD),
        (b'{"status": "away", "ts": 1000000000000000000}', RejectReason.INVALID_FIELD),
        (b'{"status": "away", "ts": -100000000000000000}', RejectReason.INVALID_FIELD),
        (b'{"status": "away", "desk_id": 7}', RejectReason.INVALID_FIELD),
        (b'{"status": "away", "faculty_id": "3"}', RejectReason.INVALID_FIELD),
        (b'{"status": "away", "faculty_id": true}', RejectReason.INVALID_FIELD),
        (b'{"status": "away", "faculty_id": 30}', RejectReason.FACULTY_MISMATCH),
    ],
)
def test_malformed_status_payloads_are_rejected_with_their_reason(
    payload: bytes, reason: RejectReason
) -> None:
    result = parse(STATUS_TOPIC, payload)
    assert reason_of(result) is reason
    assert isinstance(result, Rejection)
    assert (result.topic, result.payload) == (STATUS_TOPIC, payload)
    assert result.detail


def test_rejection_detail_is_short_and_safe_for_a_text_column() -> None:
    result = parse(STATUS_TOPIC, dumps({"status": "\x00" + "\ud800" + "x" * 500}))
    assert isinstance(result, Rejection)
    assert len(result.detail) <= 100
    assert "\x00" not in result.detail
    result.detail.encode("utf-8")  # no lone surrogates


# -- properties -----------------------------------------------------------------------

TOPICS = st.sampled_from(
    [
        STATUS_TOPIC,
        "consultease/faculty/3/mac_status",
        "consultease/faculty/3/heartbeat",
        "consultease/faculty/3/availability",
    ]
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
STATUS_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["available", "AWAY", "busy", "gone", 3]) | JSON_VALUES,
        "version": st.integers(min_value=-(2**64), max_value=2**64) | JSON_VALUES,
        "ts": st.integers(min_value=-(2**60), max_value=2**60) | JSON_VALUES,
        "desk_id": st.text() | JSON_VALUES,
        "faculty_id": st.sampled_from([3, 4]) | JSON_VALUES,
        "present": JSON_VALUES,
    },
)


def check_contract(result: DeskUpdate | Rejection, topic: str, payload: bytes) -> None:
    assert isinstance(result, DeskUpdate | Rejection)
    assert (result.topic, result.payload) == (topic, payload)
    if isinstance(result, Rejection):
        assert "\x00" not in result.detail
        result.detail.encode("utf-8")
        return
    assert result.faculty_id == 3
    assert len(payload) <= MAX_PAYLOAD_BYTES
    if result.kind is UpdateKind.STATUS:
        assert result.status is not None
    if result.version is not None:
        assert 0 <= result.version < VERSION_LIMIT
    if result.ts is not None:
        assert result.ts.tzinfo is not None


@settings(max_examples=400)
@given(topic=st.text(max_size=40) | TOPICS, payload=st.binary(max_size=5000))
def test_any_bytes_on_any_topic_never_raise(topic: str, payload: bytes) -> None:
    check_contract(parse(topic, payload), topic, payload)


@settings(max_examples=400)
@given(topic=TOPICS, value=JSON_VALUES | STATUS_LIKE)
def test_any_json_value_never_raises(topic: str, value: Any) -> None:
    payload = json.dumps(value).encode("utf-8", "surrogatepass")
    check_contract(parse(topic, payload), topic, payload)


@given(
    status=st.sampled_from(list(Status)),
    version=st.integers(min_value=0, max_value=VERSION_LIMIT - 1),
    ts_ms=st.integers(min_value=0, max_value=253_402_300_799_999),
)
def test_well_formed_current_messages_round_trip(status: Status, version: int, ts_ms: int) -> None:
    payload = dumps({"status": status.value.upper(), "version": version, "ts": ts_ms})
    update = as_update(parse(STATUS_TOPIC, payload))
    assert (update.status, update.version) == (status, version)
    assert update.ts is not None
    assert (update.ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1) == ts_ms
