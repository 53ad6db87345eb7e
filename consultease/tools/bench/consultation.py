"""The consultation figure of ``consultease bench`` (SPEC 9): how long a request takes
to reach its desk, and how long the desk's answer takes to reach a kiosk.

Run in each round's service phase, right after the paced status window (whose
publish-to-notification latency is the same-run baseline of the status path),
against the same ``consultease ingest`` child process:

- a request is one committed ``INSERT`` into ``consultation``, as a kiosk makes it;
  **request -> desk** runs from just before that statement to the moment a desk
  stand-in receives the ``CID:`` text on ``…/messages``. The stand-in subscribes
  like the installed firmware (MQTT 3.1.1, clean session, QoS 1), one connection
  for every desk (``consultease/faculty/+/messages``);
- the stand-in answers at once with the firmware's ACKNOWLEDGE JSON at QoS 0 on
  ``…/responses``; **response -> kiosk** runs from just before that publish to the
  moment a kiosk-style LISTEN connection receives the ``consultation_changed``
  notification saying ``accepted``.

Requests go out at ``rate`` per second, round-robin over the bench's desks. Every
time is ``time.monotonic()`` in this one process.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from consultease.config import MqttEndpoint
from consultease.db.connection import connect
from consultease.tools.bench.stats import percentile

DEFAULT_REQUESTS: Final = 100
DEFAULT_RATE: Final = 20.0
SETTLE: Final = 15.0
"""Seconds to wait for the last requests' answers before counting what is missing."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ConsultationWindow:
    requests: int
    delivered: int
    """Requests the desk stand-in received (exactly once each is expected)."""
    duplicates: int
    """Extra copies of a request the desk received."""
    answered: int
    """Answers the kiosk saw as ``accepted``."""
    delivery_p50_ms: float
    delivery_p99_ms: float
    answer_p50_ms: float
    answer_p99_ms: float


class _DeskStandIn:
    """Every bench desk's ``…/messages`` on one firmware-style connection; answers at once."""

    def __init__(self, mqtt_url: str) -> None:
        endpoint = MqttEndpoint.parse(mqtt_url)
        self.received: dict[int, float] = {}
        self.answered_at: dict[int, float] = {}
        self.duplicates = 0
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"Faculty_Desk_Unit_bench_{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if endpoint.username:
            self._client.username_pw_set(endpoint.username, endpoint.password)
        self._client.on_connect = lambda c, *a: c.subscribe("consultease/faculty/+/messages", 1)
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(endpoint.host, endpoint.port, keepalive=60)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            self.close()
            raise TimeoutError("the desk stand-in could not subscribe")

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        text = msg.payload.decode(errors="replace")
        if not text.startswith("CID:"):
            return
        cid = int(text[4:].split(" ", 1)[0])
        faculty_id = int(msg.topic.split("/")[2])
        with self._lock:
            if cid in self.received:
                self.duplicates += 1
                return
            self.received[cid] = now
        answer = {
            "faculty_id": faculty_id,
            "faculty_name": "Bench",
            "response_type": "ACKNOWLEDGE",
            "message_id": str(cid),
            "timestamp": "1",
            "faculty_present": True,
            "response_method": "physical_button",
            "status": "Professor acknowledged",
        }
        with self._lock:
            self.answered_at[cid] = time.monotonic()
        client.publish(
            f"consultease/faculty/{faculty_id}/responses",
            json.dumps(answer, separators=(",", ":")),
            qos=0,
        )

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


class _KioskListener:
    """A LISTEN connection on ``consultation_changed``, as a kiosk holds one."""

    def __init__(self, database_url: str) -> None:
        self.accepted: dict[int, float] = {}
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._conn = connect(database_url, autocommit=True, application_name="bench-kiosk")
        self._conn.execute("LISTEN consultation_changed")
        self._thread = threading.Thread(target=self._run, name="bench-kiosk", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for note in self._conn.notifies(timeout=0.2):
                now = time.monotonic()
                body: dict[str, Any] = json.loads(note.payload)
                if body.get("status") == "accepted":
                    with self.lock:
                        self.accepted.setdefault(int(body["id"]), now)

    def count_accepted(self, ids: set[int]) -> int:
        with self.lock:
            return len(ids & self.accepted.keys())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._conn.close()


def consultation_window(
    database_url: str,
    mqtt_url: str,
    faculty_ids: Sequence[int],
    *,
    requests: int = DEFAULT_REQUESTS,
    rate: float = DEFAULT_RATE,
) -> ConsultationWindow:
    """Send ``requests`` requests at ``rate``/s and time both legs of each."""
    desk = _DeskStandIn(mqtt_url)
    kiosk: _KioskListener | None = None
    asked: dict[int, float] = {}
    try:
        kiosk = _KioskListener(database_url)
        tag = uuid.uuid4().hex[:8]
        with psycopg.connect(database_url, autocommit=True) as conn:
            start = time.monotonic()
            for i in range(requests):
                due = start + i / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                before = time.monotonic()
                row = conn.execute(
                    "INSERT INTO consultation (faculty_id, student_name, student_id, message) "
                    "VALUES (%s, %s, %s, %s) RETURNING id",
                    (
                        faculty_ids[i % len(faculty_ids)],
                        f"Bench student {i}",
                        f"B{tag}-{i}",
                        "May I ask about the project deadline?",
                    ),
                ).fetchone()
                assert row is not None
                asked[int(row[0])] = before
        deadline = time.monotonic() + SETTLE
        wanted = set(asked)
        while time.monotonic() < deadline and kiosk.count_accepted(wanted) < len(wanted):
            time.sleep(0.1)
        time.sleep(0.5)  # a late duplicate would arrive now
    finally:
        desk.close()
        if kiosk is not None:
            kiosk.close()
    delivery = [desk.received[c] - t for c, t in asked.items() if c in desk.received]
    answer = [
        kiosk.accepted[c] - desk.answered_at[c]
        for c in asked
        if c in kiosk.accepted and c in desk.answered_at
    ]
    return ConsultationWindow(
        requests=len(asked),
        delivered=len(delivery),
        duplicates=desk.duplicates,
        answered=len(answer),
        delivery_p50_ms=_ms(percentile(delivery, 0.50)),
        delivery_p99_ms=_ms(percentile(delivery, 0.99)),
        answer_p50_ms=_ms(percentile(answer, 0.50)),
        answer_p99_ms=_ms(percentile(answer, 0.99)),
    )


def _ms(seconds: float) -> float:
    return seconds * 1000 if not math.isnan(seconds) else math.nan
