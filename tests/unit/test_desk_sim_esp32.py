"""The esp32-legacy profile's state machine against ../shared/FIRMWARE.md: payload bytes,
QoS and retain flags, the offline queue, and consultation requests on screen."""

from __future__ import annotations

import json
import random

import pytest

from desk_firmware_sim.answers import AnswerPolicy, Response
from desk_firmware_sim.cli import ESP32_LEGACY, answer_policy, build_parser, config_from_args
from desk_firmware_sim.errors import ConfigError
from desk_firmware_sim.esp32 import (
    BUFFER_SIZE,
    OFFLINE_QUEUE_SIZE,
    Esp32Firmware,
    Publish,
    client_id,
    packet_size,
    subscriptions,
)

BOOT = 1_000.0
REQUEST = b"CID:42 From:Juan Dela Cruz (SID:2021-0001): Thesis consultation"


def desk(*, present: bool = True, connected: bool = True) -> Esp32Firmware:
    fw = Esp32Firmware(faculty_id=3, faculty_name="Dr. Ada", booted_at=BOOT, present=present)
    if connected:
        fw.on_connected(BOOT + 1)
    return fw


def test_status_is_retained_qos0_on_both_topics_with_the_firmwares_exact_bytes() -> None:
    fw = desk(present=False)
    out = fw.keychain(BOOT + 51.234, in_range=True)
    assert [(p.topic, p.qos, p.retain) for p in out] == [
        ("consultease/faculty/3/status", 0, True),
        ("faculty/3/status", 0, True),
    ]
    assert out[0].payload == (
        b'{"faculty_id":3,"faculty_name":"Dr. Ada","present":true,"status":"AVAILABLE",'
        b'"timestamp":51234,"ntp_sync_status":"SYNCED","in_grace_period":false,'
        b'"detailed_status":"AVAILABLE"}'
    )


def test_a_grace_period_status_has_the_reconnecting_shape_and_never_busy() -> None:
    fw = Esp32Firmware(
        faculty_id=3, faculty_name="Dr. Ada", booted_at=BOOT, present=True, grace_period=15
    )
    fw.on_connected(BOOT + 1)
    assert fw.keychain(BOOT + 10, in_range=False) == []
    body = json.loads(fw.status_payload(BOOT + 13))
    assert list(body)[-3:] == ["grace_period_remaining", "in_grace_period", "detailed_status"]
    assert body["grace_period_remaining"] == 12_000
    assert body["detailed_status"] == "AVAILABLE (reconnecting... 12s)"
    away = fw.advance(BOOT + 25)
    assert json.loads(away[0].payload)["status"] == "AWAY"
    assert fw.status in ("AVAILABLE", "AWAY")


def test_connect_sends_fresh_status_then_the_ntp_heartbeat_retained_then_the_queue() -> None:
    fw = desk(present=True, connected=False)
    for step, present in enumerate((False, True, False)):
        assert fw.keychain(BOOT + 100 + step, in_range=present) == []  # offline: queued
    out = fw.on_connected(BOOT + 200)
    kinds = [(p.kind, p.retain, p.queued) for p in out]
    assert kinds[:3] == [
        ("status", True, False),
        ("status_old_topic", True, False),
        ("ntp_heartbeat", True, False),  # the firmware bug: MQTT_QOS is the retain flag
    ]
    assert kinds[3:] == [("status", False, True), ("status_old_topic", False, True)] * 3
    uptimes = [json.loads(p.payload)["timestamp"] for p in out if p.kind == "status"]
    assert uptimes == [200_000, 100_000, 101_000, 102_000], "fresh first, then oldest first"
    assert all(p.qos == 0 for p in out)
    assert fw.queue == type(fw.queue)(maxlen=OFFLINE_QUEUE_SIZE)


def test_the_offline_queue_keeps_ten_entries() -> None:
    fw = desk(connected=False)
    for step in range(8):
        fw.keychain(BOOT + step, in_range=step % 2 == 1)
    assert len(fw.queue) == OFFLINE_QUEUE_SIZE


def test_heartbeat_is_not_retained_and_reports_presence() -> None:
    fw = desk()
    beat = fw.heartbeat(BOOT + 30)
    assert (beat.topic, beat.retain, beat.qos) == ("consultease/faculty/3/heartbeat", False, 0)
    assert json.loads(beat.payload)["presence_status"] == "AVAILABLE"


def test_only_messages_and_cancellations_are_subscribed_with_a_new_client_id_each_time() -> None:
    assert subscriptions(3) == (
        "consultease/faculty/3/messages",
        "consultease/faculty/3/cancellations",
    )
    assert client_id(3, "A1B2", 7) == "Faculty_Desk_Unit_3_A1B2_7"


def test_a_cid_message_is_shown_and_answered_on_responses_only() -> None:
    fw = desk()
    assert fw.on_message(BOOT + 5, "consultease/faculty/3/messages", REQUEST)
    assert fw.screen is not None and fw.screen.cid == "42"
    (response,) = fw.press(BOOT + 9, Response.BUSY)
    assert (response.topic, response.qos, response.retain) == (
        "consultease/faculty/3/responses",
        0,
        False,
    )
    body = json.loads(response.payload)
    assert (body["response_type"], body["message_id"], body["faculty_present"]) == (
        "BUSY",
        "42",
        True,
    )
    assert body["timestamp"] == "9000" and body["response_method"] == "physical_button"
    assert fw.screen is None
    assert fw.press(BOOT + 10, Response.ACKNOWLEDGE) == [], "nothing on screen: no response"


@pytest.mark.parametrize(
    ("present", "payload"),
    [(True, b"From:Juan: no consultation id"), (False, REQUEST)],
    ids=["no-cid", "away"],
)
def test_messages_without_cid_or_while_away_are_dropped(present: bool, payload: bytes) -> None:
    fw = desk(present=present)
    assert not fw.on_message(BOOT + 5, "consultease/faculty/3/messages", payload)
    assert fw.screen is None and fw.shown == []
    assert fw.press(BOOT + 6, Response.ACKNOWLEDGE) == []


def test_a_request_longer_than_the_firmwares_buffer_never_reaches_the_screen() -> None:
    """500 characters of text (SPEC 9.1) can be more than 1,024 bytes in UTF-8."""
    fw = desk()
    head = b"CID:43 From:Juan (SID:-): "
    topic_name = "consultease/faculty/3/messages"
    fits = head + b"x" * (BUFFER_SIZE - packet_size(topic_name, head) - 1)
    assert BUFFER_SIZE - 1 <= packet_size(topic_name, fits) <= BUFFER_SIZE
    assert fw.on_message(BOOT + 5, topic_name, fits)
    too_long = head + "é".encode() * 500
    assert not fw.on_message(BOOT + 6, topic_name, too_long)
    assert fw.screen is not None and fw.screen.cid == "43"


def test_a_cancellation_clears_the_request_on_screen() -> None:
    fw = desk()
    fw.on_message(BOOT + 5, "consultease/faculty/3/messages", REQUEST)
    other = {"type": "consultation_cancelled", "consultation_id": 41}
    assert not fw.on_message(
        BOOT + 6, "consultease/faculty/3/cancellations", json.dumps(other).encode()
    )
    assert fw.screen is not None
    mine = other | {"consultation_id": 42}
    assert fw.on_message(BOOT + 7, "consultease/faculty/3/cancellations", json.dumps(mine).encode())
    assert fw.screen is None


def test_going_away_clears_the_screen_and_a_response_made_offline_is_queued() -> None:
    fw = desk()
    fw.on_message(BOOT + 5, "consultease/faculty/3/messages", REQUEST)
    fw.on_connection_lost()
    assert fw.press(BOOT + 6, Response.ACKNOWLEDGE) == []
    assert [p.kind for p in fw.queue] == ["response"]
    fw.on_message(BOOT + 7, "consultease/faculty/3/messages", REQUEST)
    fw.keychain(BOOT + 8, in_range=False)
    assert fw.screen is None


def test_answer_policy_draws_acknowledge_busy_or_nothing_within_the_delays() -> None:
    policy = AnswerPolicy(acknowledge=0.5, busy=0.3, delay_min=2, delay_max=4)
    rng = random.Random(1)
    draws = [policy.choose(rng) for _ in range(2000)]
    shares = {r: sum(1 for d, _ in draws if d is r) / len(draws) for r in (*Response, None)}
    assert shares[Response.ACKNOWLEDGE] == pytest.approx(0.5, abs=0.05)
    assert shares[Response.BUSY] == pytest.approx(0.3, abs=0.05)
    assert shares[None] == pytest.approx(0.2, abs=0.05)
    assert all(2 <= delay <= 4 for _, delay in draws)


def test_cli_legacy_is_the_esp32_profile_and_bad_answer_options_are_refused() -> None:
    for argv in (["--legacy"], ["--firmware", ESP32_LEGACY]):
        args = build_parser().parse_args(argv)
        assert config_from_args(args, {}).legacy
    args = build_parser().parse_args(
        ["--legacy", "--answer-acknowledge", "0.8", "--answer-busy", "0.5"]
    )
    with pytest.raises(ConfigError, match="add up to at most 1"):
        answer_policy(args)
    args = build_parser().parse_args(["--legacy", "--answer-delay", "3-x"])
    with pytest.raises(ConfigError, match="--answer-delay"):
        answer_policy(args)


def test_publish_is_always_qos0() -> None:
    assert Publish(topic="t", payload=b"", retain=False, kind="status").qos == 0
