"""A desk client that talks MQTT exactly as the installed firmware does (FIRMWARE.md).

MQTT 3.1.1, a new clean session on every connect (client id
``Faculty_Desk_Unit_<ID>_<chip>_<rand>``), no last will, subscriptions to
``…/messages`` and ``…/cancellations`` at QoS 1 and nothing else, and every
publish at QoS 0: the legacy status retained, responses not.
"""

from __future__ import annotations

import json
import random
import threading
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from consultease.config import MqttEndpoint


class FirmwareDesk:
    def __init__(self, mqtt_url: str, faculty_id: int, *, name: str = "Dr. Ada Lovelace") -> None:
        self.faculty_id = faculty_id
        self.name = name
        self.messages: list[str] = []
        self.cancellations: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._endpoint = MqttEndpoint.parse(mqtt_url)
        self._client: mqtt.Client | None = None

    def connect(self, timeout: float = 10) -> Self:
        """A new clean session, subscribed; what the firmware does after every (re)boot."""
        self._subscribed.clear()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"Faculty_Desk_Unit_{self.faculty_id}_{random.getrandbits(24):06x}"
            f"_{random.randrange(10**4)}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if self._endpoint.username:
            client.username_pw_set(self._endpoint.username, self._endpoint.password)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *args: self._subscribed.set()
        client.on_message = self._on_message
        client.connect(self._endpoint.host, self._endpoint.port, keepalive=60)
        client.loop_start()
        self._client = client
        if not self._subscribed.wait(timeout):
            raise AssertionError("the desk did not subscribe in time")
        return self

    def disconnect(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def __enter__(self) -> Self:
        return self.connect()

    def __exit__(self, *exc_info: object) -> None:
        self.disconnect()

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        root = f"consultease/faculty/{self.faculty_id}"
        client.subscribe([(f"{root}/messages", 1), (f"{root}/cancellations", 1)])

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            if msg.topic.endswith("/messages"):
                self.messages.append(msg.payload.decode())
            else:
                self.cancellations.append(json.loads(msg.payload))

    def received(self) -> tuple[list[str], list[dict[str, Any]]]:
        with self._lock:
            return list(self.messages), list(self.cancellations)

    # -- what the firmware publishes (all QoS 0) -------------------------------------

    def _publish(self, suffix: str, body: dict[str, Any], *, retain: bool) -> None:
        assert self._client is not None
        info = self._client.publish(
            f"consultease/faculty/{self.faculty_id}/{suffix}",
            json.dumps(body, separators=(",", ":")),
            qos=0,
            retain=retain,
        )
        info.wait_for_publish(5)

    def status(self, *, present: bool = True) -> None:
        """P1: the legacy presence status, retained."""
        word = "AVAILABLE" if present else "AWAY"
        self._publish(
            "status",
            {
                "faculty_id": self.faculty_id,
                "faculty_name": self.name,
                "present": present,
                "status": word,
                "timestamp": random.randrange(10**6),
                "ntp_sync_status": "SYNCED",
                "in_grace_period": False,
                "detailed_status": word,
            },
            retain=True,
        )

    def heartbeat(self) -> None:
        """P3."""
        self._publish(
            "heartbeat",
            {"faculty_id": self.faculty_id, "uptime": 1234, "free_heap": 100000},
            retain=False,
        )

    def respond(
        self, response_type: str, message_id: str | int, *, faculty_id: int | None = None
    ) -> None:
        """P6: a button press answering the request on screen."""
        self._publish(
            "responses",
            {
                "faculty_id": self.faculty_id if faculty_id is None else faculty_id,
                "faculty_name": self.name,
                "response_type": response_type,
                "message_id": message_id,
                "timestamp": str(random.randrange(10**6)),
                "faculty_present": True,
                "response_method": "physical_button",
                "status": f"Professor {response_type.lower()}",
            },
            retain=False,
        )
