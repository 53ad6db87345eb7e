"""The current-format desk shows consultation requests and answers them (SPEC 9.2)."""

from __future__ import annotations

import json
import random

from desk_firmware_sim.answers import AnswerPolicy
from desk_firmware_sim.desk import Send, SimulatedDesk
from desk_firmware_sim.faults import FaultConfig
from desk_firmware_sim.unit import MessageKind, Mode, Status, UnitSpec

T0 = 1_700_000_000.0
REQUEST = b"CID:42 From:Juan Dela Cruz (SID:-): Thesis"


def make_desk(answers: AnswerPolicy | None) -> SimulatedDesk:
    # Load mode with no pace: no simulated person, so only the test moves the desk.
    spec = UnitSpec(
        faculty_id=7, faculty_name="Dr. Seven", desk_id="desk-sim-7", mode=Mode.LOAD, rate=0
    )
    desk = SimulatedDesk(
        spec=spec, faults=FaultConfig(), rng=random.Random(3), boot_count=1, now=T0, answers=answers
    )
    desk.on_connected(T0)
    return desk


def sends(actions: list[object]) -> list[Send]:
    """What the desk published, heartbeats aside."""
    return [
        a for a in actions if isinstance(a, Send) and a.message.kind is not MessageKind.HEARTBEAT
    ]


def test_a_request_is_acknowledged_on_responses_after_the_delay() -> None:
    desk = make_desk(AnswerPolicy(acknowledge=1, busy=0, delay_min=10, delay_max=10))
    assert desk.status is Status.AVAILABLE
    assert desk.on_request(T0 + 1, REQUEST)
    assert desk.screen == ("42", REQUEST.decode())
    assert desk.advance(T0 + 10.5) == []
    (response,) = sends(desk.advance(T0 + 11))
    message = response.message
    assert (message.kind, message.topic, message.qos) == (
        MessageKind.RESPONSE,
        "consultease/faculty/7/responses",
        1,
    )
    body = json.loads(message.encode())
    assert (body["response_type"], body["message_id"]) == ("ACKNOWLEDGE", "42")
    assert desk.screen is None


def test_busy_answers_and_makes_the_desk_busy() -> None:
    desk = make_desk(AnswerPolicy(acknowledge=0, busy=1, delay_min=1, delay_max=1))
    desk.on_request(T0 + 1, REQUEST)
    response, status = sends(desk.advance(T0 + 2))
    assert json.loads(response.message.encode())["response_type"] == "BUSY"
    assert (status.message.kind, status.message.status) == (MessageKind.STATUS, Status.BUSY)


def test_an_unanswered_request_stays_until_cancelled() -> None:
    desk = make_desk(AnswerPolicy(acknowledge=0, busy=0))
    desk.on_request(T0 + 1, REQUEST)
    assert sends(desk.advance(T0 + 3600)) == [] and desk.screen is not None
    cancel = {"type": "consultation_cancelled", "consultation_id": 42}
    assert desk.on_cancellation(T0 + 3601, json.dumps(cancel).encode())
    assert desk.screen is None


def test_a_cancelled_request_is_never_answered() -> None:
    desk = make_desk(AnswerPolicy(acknowledge=1, busy=0, delay_min=5, delay_max=5))
    desk.on_request(T0 + 1, REQUEST)
    cancel = {"type": "consultation_cancelled", "consultation_id": "42"}
    desk.on_cancellation(T0 + 2, json.dumps(cancel).encode())
    assert sends(desk.advance(T0 + 10)) == []


def test_no_cid_or_an_away_lecturer_drops_the_message() -> None:
    desk = make_desk(AnswerPolicy())
    assert not desk.on_request(T0 + 1, b"hello, no id here")
    desk.firmware.status = Status.AWAY
    assert not desk.on_request(T0 + 2, REQUEST)
    assert desk.shown == []
