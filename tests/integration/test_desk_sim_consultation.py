"""Both desk profiles show a consultation request from ``…/messages`` and answer it on
``…/responses`` through a real broker (SPEC 9.2): the current one at QoS 1, the
existing ESP32 firmware at QoS 0 (tests/integration/test_esp32_legacy.py)."""

from __future__ import annotations

import json
import queue
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt import publish
from paho.mqtt.enums import CallbackAPIVersion

from desk_firmware_sim.answers import AnswerPolicy
from desk_firmware_sim.config import SimConfig
from desk_firmware_sim.runner import Fleet
from desk_firmware_sim.unit import Mode
from tests.support.ingest import private_broker, unique_client_id


@pytest.mark.parametrize("response", ["ACKNOWLEDGE", "BUSY"])
def test_the_current_desk_answers_a_request_on_responses(tmp_path: Path, response: str) -> None:
    with private_broker(tmp_path / "mosquitto") as broker:
        received: queue.Queue[tuple[str, dict[str, object], int]] = queue.Queue()
        listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_client_id("resp"))
        listener.on_message = lambda c, u, m: received.put((m.topic, json.loads(m.payload), m.qos))
        listener.connect("127.0.0.1", broker.port)
        listener.subscribe(
            [("consultease/faculty/8/responses", 1), ("consultease/faculty/8/status", 1)]
        )
        listener.loop_start()
        config = SimConfig(
            faculty_ids=(8,),
            mqtt_url=broker.url,
            mode=Mode.LOAD,
            rate=0.001,  # one change every 16 hours: the desk stays available
            heartbeat_interval=0,
            seed=8,
            state_dir=tmp_path / "flash",
            answers=AnswerPolicy(
                acknowledge=1.0 if response == "ACKNOWLEDGE" else 0.0,
                busy=1.0 if response == "BUSY" else 0.0,
                delay_min=0.2,
                delay_max=0.3,
            ),
        )
        try:
            with Fleet(config) as fleet:
                assert fleet.wait_connected(10)
                first = received.get(timeout=10)  # its status: it has subscribed by now
                assert first[0].endswith("/status") and first[1]["status"] == "available"
                publish.single(
                    "consultease/faculty/8/messages",
                    "CID:91 From:Maria (SID:2020-7): Grades",
                    qos=1,
                    hostname="127.0.0.1",
                    port=broker.port,
                )
                topic, body, qos = received.get(timeout=10)
                assert (topic, qos) == ("consultease/faculty/8/responses", 1)
                assert (body["response_type"], body["message_id"]) == (response, "91")
                if response == "BUSY":
                    topic, body, _ = received.get(timeout=10)
                    assert (topic, body["status"]) == ("consultease/faculty/8/status", "busy")
        finally:
            listener.loop_stop()
            listener.disconnect()
