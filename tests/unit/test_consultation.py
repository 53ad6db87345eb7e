"""The consultation rules of SPEC 9, pure: the lifecycle, the desk's texts, the answers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consultease.consultation import (
    ALLOWED_CHANGES,
    DESK_PACKET_LIMIT,
    FINAL_STATUSES,
    ClosedBy,
    ConsultationEvent,
    ConsultationStatus,
    Refusal,
    RequestFields,
    cancellation_payload,
    closed_by,
    desk_message,
    normalize_rfid_uid,
    transition,
)
from consultease.domain import DeskResponse, Rejection, RejectReason, ResponseType
from consultease.errors import ValidationError
from consultease.payloads import parse

P, A, D, C, X, F = (
    ConsultationStatus.PENDING,
    ConsultationStatus.ACCEPTED,
    ConsultationStatus.DECLINED,
    ConsultationStatus.CANCELLED,
    ConsultationStatus.EXPIRED,
    ConsultationStatus.COMPLETED,
)
E = ConsultationEvent

# -- the lifecycle -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "event", "target"),
    [
        (P, E.ACKNOWLEDGE, A),
        (P, E.BUSY, D),
        (P, E.CANCEL, C),
        (P, E.EXPIRE, X),
        (A, E.COMPLETE, F),
        (A, E.CANCEL, C),
    ],
)
def test_the_valid_transitions_of_spec_9_1(
    current: ConsultationStatus, event: ConsultationEvent, target: ConsultationStatus
) -> None:
    assert transition(current, event) is target


def test_every_other_step_is_refused_as_a_duplicate_or_an_invalid_transition() -> None:
    valid = {
        (P, E.ACKNOWLEDGE),
        (P, E.BUSY),
        (P, E.CANCEL),
        (P, E.EXPIRE),
        (A, E.COMPLETE),
        (A, E.CANCEL),
    }
    for current in ConsultationStatus:
        for event in ConsultationEvent:
            if (current, event) in valid:
                continue
            refusal = transition(current, event)
            assert isinstance(refusal, Refusal), (current, event)
            assert refusal.current is current and refusal.event is event


@pytest.mark.parametrize(
    ("current", "event", "reason"),
    [
        (A, E.ACKNOWLEDGE, RejectReason.DUPLICATE),  # the blue button twice
        (D, E.BUSY, RejectReason.DUPLICATE),  # the red button twice
        (C, E.CANCEL, RejectReason.DUPLICATE),
        (X, E.EXPIRE, RejectReason.DUPLICATE),
        (D, E.ACKNOWLEDGE, RejectReason.INVALID_TRANSITION),
        (A, E.BUSY, RejectReason.INVALID_TRANSITION),
        (A, E.EXPIRE, RejectReason.INVALID_TRANSITION),  # accepted never expires
        (P, E.COMPLETE, RejectReason.INVALID_TRANSITION),  # nor completes unanswered
        (X, E.ACKNOWLEDGE, RejectReason.INVALID_TRANSITION),
        (F, E.CANCEL, RejectReason.INVALID_TRANSITION),
    ],
)
def test_why_a_step_is_refused(
    current: ConsultationStatus, event: ConsultationEvent, reason: RejectReason
) -> None:
    refusal = transition(current, event)
    assert isinstance(refusal, Refusal) and refusal.reason is reason


@given(st.lists(st.sampled_from(list(ConsultationEvent)), max_size=30))
def test_no_sequence_of_events_leaves_a_final_state_or_skips_pending(
    events: list[ConsultationEvent],
) -> None:
    """Any order, with duplicates: a request only ever moves along the table, every
    path starts at pending, and once final it never moves again."""
    status = P
    path = [status]
    for event in events:
        result = transition(status, event)
        if isinstance(result, Refusal):
            continue
        assert (status, result) in ALLOWED_CHANGES
        assert status not in FINAL_STATUSES, "a final state never changes"
        status = result
        path.append(status)
    assert path[0] is P
    if A in path:
        assert path.index(A) == 1, "accepted only ever comes straight from pending"
    assert all(s not in FINAL_STATUSES for s in path[:-1])


@given(st.sampled_from(list(ConsultationStatus)), st.sampled_from(list(ConsultationEvent)))
def test_an_event_applied_twice_is_a_duplicate_the_second_time(
    current: ConsultationStatus, event: ConsultationEvent
) -> None:
    first = transition(current, event)
    if isinstance(first, Refusal):
        return
    second = transition(first, event)
    assert isinstance(second, Refusal) and second.reason is RejectReason.DUPLICATE


def test_who_closes_a_request() -> None:
    assert closed_by(E.ACKNOWLEDGE, actor=ClosedBy.DESK) is None, "accepted stays open"
    assert closed_by(E.BUSY, actor=ClosedBy.ADMIN) is ClosedBy.DESK
    assert closed_by(E.EXPIRE, actor=ClosedBy.STUDENT) is ClosedBy.SYSTEM
    assert closed_by(E.CANCEL, actor=ClosedBy.STUDENT) is ClosedBy.STUDENT
    assert closed_by(E.COMPLETE, actor=ClosedBy.ADMIN) is ClosedBy.ADMIN


# -- the desk's texts ----------------------------------------------------------------


def test_the_desk_message_is_the_firmware_text_byte_for_byte() -> None:
    assert (
        desk_message(
            consultation_id=42,
            student_name="Maria Santos",
            student_id="2021-0042",
            message="Can we go over problem 3?",
        )
        == "CID:42 From:Maria Santos (SID:2021-0042): Can we go over problem 3?"
    )
    assert (
        desk_message(consultation_id=7, student_name="Ben", student_id=None, message="Hi")
        == "CID:7 From:Ben (SID:-): Hi"
    )


def test_control_characters_never_reach_the_desk_display() -> None:
    text = desk_message(
        consultation_id=1, student_name="A\nB", student_id="\t", message="line 1\r\nline 2\x00"
    )
    assert text == "CID:1 From:A B (SID:-): line 1  line 2"


def test_a_long_utf8_message_is_cut_so_the_packet_fits_the_firmware_buffer() -> None:
    topic = "consultease/faculty/123/messages"
    text = desk_message(
        consultation_id=99999,
        student_name="Ñ" * 100,
        student_id="S" * 32,
        message="漢" * 500,  # 1,500 bytes of UTF-8
        topic_length=len(topic),
    )
    packet = 1 + 2 + 2 + len(topic) + 2 + len(text.encode())
    assert packet <= DESK_PACKET_LIMIT
    assert text.startswith("CID:99999 From:" + "Ñ" * 100) and text.endswith("漢…")
    short = desk_message(
        consultation_id=1, student_name="A", student_id=None, message="ok", topic_length=40
    )
    assert short == "CID:1 From:A (SID:-): ok", "what fits is never cut"


def test_the_cancellation_is_the_json_the_firmware_parses() -> None:
    at = datetime(2026, 12, 2, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    body = json.loads(
        cancellation_payload(
            consultation_id=5, student_name="Ana", course_code=None, cancelled_at=at
        )
    )
    assert body == {
        "type": "consultation_cancelled",
        "consultation_id": 5,
        "student_name": "Ana",
        "course_code": None,
        "cancelled_at": "2026-12-02T01:30:00+00:00",
    }


# -- the desk's answers --------------------------------------------------------------

FIRMWARE_ACK = (
    b'{"faculty_id":3,"faculty_name":"Dr. X","response_type":"ACKNOWLEDGE","message_id":"17",'
    b'"timestamp":"51234","faculty_present":true,"response_method":"physical_button",'
    b'"status":"Professor acknowledged"}'
)


def test_the_firmware_answer_parses_into_a_desk_response() -> None:
    got = parse("consultease/faculty/3/responses", FIRMWARE_ACK)
    assert isinstance(got, DeskResponse)
    assert (got.faculty_id, got.consultation_id, got.response) == (3, 17, ResponseType.ACKNOWLEDGE)
    assert got.payload == FIRMWARE_ACK


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"response_type": "busy", "message_id": 9}, (9, ResponseType.BUSY)),
        ({"response_type": " Acknowledge ", "message_id": " 12 "}, (12, ResponseType.ACKNOWLEDGE)),
    ],
)
def test_any_case_and_an_integer_or_string_cid(
    body: dict[str, object], expected: tuple[int, ResponseType]
) -> None:
    got = parse("consultease/faculty/3/responses", json.dumps(body).encode())
    assert isinstance(got, DeskResponse)
    assert (got.consultation_id, got.response) == expected


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"response_type": "TEST", "message_id": 0}, RejectReason.UNKNOWN_RESPONSE),
        ({"message_id": 1}, RejectReason.INVALID_FIELD),
        ({"response_type": "BUSY"}, RejectReason.INVALID_FIELD),
        ({"response_type": "BUSY", "message_id": "CID:4"}, RejectReason.INVALID_FIELD),
        ({"response_type": "BUSY", "message_id": 0}, RejectReason.INVALID_FIELD),
        ({"response_type": "BUSY", "message_id": True}, RejectReason.INVALID_FIELD),
        ({"response_type": "BUSY", "message_id": 2**63}, RejectReason.INVALID_FIELD),
        (
            {"response_type": "BUSY", "message_id": 1, "faculty_id": 4},
            RejectReason.FACULTY_MISMATCH,
        ),
    ],
)
def test_malformed_answers_are_rejected_with_a_reason(
    body: dict[str, object], reason: RejectReason
) -> None:
    got = parse("consultease/faculty/3/responses", json.dumps(body).encode())
    assert isinstance(got, Rejection) and got.reason is reason


@given(st.binary(max_size=300))
def test_parsing_an_answer_never_raises(payload: bytes) -> None:
    assert isinstance(parse("consultease/faculty/3/responses", payload), DeskResponse | Rejection)


# -- what a student fills in ---------------------------------------------------------


def test_request_fields_are_trimmed_and_checked() -> None:
    fields = RequestFields.clean(
        student_name="  Maria   Santos ", student_id=" ", course_code=" CS  101 ", message=" hi "
    )
    assert fields == RequestFields(
        student_name="Maria Santos", student_id=None, course_code="CS 101", message="hi"
    )
    for bad, field in [
        ({"student_name": " ", "message": "x"}, "student_name"),
        ({"student_name": "A", "message": " "}, "message"),
        ({"student_name": "A", "message": "x" * 501}, "message"),
        ({"student_name": "A", "student_id": "has space", "message": "x"}, "student_id"),
    ]:
        with pytest.raises(ValidationError) as caught:
            RequestFields.clean(**bad)  # type: ignore[arg-type]
        assert caught.value.field == field
    assert len(RequestFields.clean(student_name="A", message="x" * 500).message) == 500


def test_rfid_uids_are_stored_in_one_spelling() -> None:
    assert normalize_rfid_uid(" 0012345678\n") == "0012345678"
    assert normalize_rfid_uid("04a1b2c3") == "04A1B2C3"
    with pytest.raises(ValidationError):
        normalize_rfid_uid("12")
    with pytest.raises(ValidationError):
        normalize_rfid_uid("not-a-card")
