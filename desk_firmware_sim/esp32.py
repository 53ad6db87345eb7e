"""The existing ESP32 desk firmware (``faculty_desk_unit.ino``), as a pure state machine.

Byte for byte and flag for flag what ``../shared/FIRMWARE.md`` says the installed
firmware does on MQTT (SPEC 3.4a), so tests can hold the system to it:

- PubSubClient, MQTT 3.1.1: every publish is **QoS 0**; the status (on
  ``consultease/faculty/N/status`` and the old ``faculty/N/status``) is **retained**;
  the NTP-sync heartbeat is retained too (the firmware's bug: ``MQTT_QOS`` lands in the
  ``retained`` argument); no last will; a new client id, so a new clean session, on
  every connect; keepalive 60 s.
- On every connect: the fresh status (both topics), then the offline queue (at most 10
  entries: statuses and button responses published while offline, oldest first,
  ``retained=false``).
- Subscribes only to ``…/messages`` and ``…/cancellations`` (QoS 1), never ``…/state``.
  A message without ``CID:`` is dropped; while the faculty is away every message is
  dropped, not kept. ACKNOWLEDGE / BUSY go to ``…/responses`` only while a ``CID:``
  message is on screen and the faculty is present. The status is never BUSY.

No I/O and no clock reads: every method takes the time (seconds, float) and returns
the publishes to make; the runner (``desk_firmware_sim.esp32_runner``) does the rest.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from desk_firmware_sim.answers import CID, Response

TOPIC_ROOT = "consultease/faculty"
OLD_TOPIC_ROOT = "faculty"
OFFLINE_QUEUE_SIZE = 10
KEEPALIVE = 60
SUBSCRIBE_QOS = 1
BUFFER_SIZE = 1024
"""PubSubClient's packet buffer (config.h:146, ino:1817): a longer packet is dropped."""
HEARTBEAT_INTERVAL = 30.0
DIAGNOSTICS_INTERVAL = 600.0


def topic(faculty_id: int, suffix: str) -> str:
    return f"{TOPIC_ROOT}/{faculty_id}/{suffix}"


def subscriptions(faculty_id: int) -> tuple[str, str]:
    """What the firmware subscribes to (ino:1878, 1883), at QoS 1."""
    return topic(faculty_id, "messages"), topic(faculty_id, "cancellations")


def client_id(faculty_id: int, chip: str, rand: int) -> str:
    """``Faculty_Desk_Unit_<ID>_<chip>_<rand>``: new on every connect (config.h:54)."""
    return f"Faculty_Desk_Unit_{faculty_id}_{chip}_{rand}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Publish:
    """One PubSubClient ``publish(topic, payload, retained)``: always QoS 0."""

    topic: str
    payload: bytes
    retain: bool
    kind: str
    """``status``, ``status_old_topic``, ``heartbeat``, ``ntp_heartbeat``,
    ``diagnostics`` or ``response``: for logs and tests, never on the wire."""
    queued: bool = False
    """Re-sent from the offline queue (P7)."""

    qos: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class Consultation:
    """The ``CID:`` message on screen."""

    cid: str
    text: str
    shown_at: float


def packet_size(topic_name: str, payload: bytes) -> int:
    """Bytes of a QoS 1 PUBLISH as PubSubClient buffers it: fixed header (1 byte and up
    to 4 of length), topic length (2) and topic, packet id (2), payload."""
    body = 2 + len(topic_name.encode()) + 2 + len(payload)
    length_bytes = 1 if body < 128 else 2 if body < 16_384 else 3
    return 1 + length_bytes + body


def _json(payload: Mapping[str, object]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(kw_only=True)
class Esp32Firmware:
    """One desk unit running the existing firmware. ``booted_at`` is when it powered on
    (the payload ``timestamp`` is milliseconds since then: uptime, not a clock)."""

    faculty_id: int
    faculty_name: str
    booted_at: float
    grace_period: float = 0.0
    present: bool = False
    connected: bool = False
    screen: Consultation | None = None
    ntp_synced: bool = False
    queue: deque[Publish] = field(default_factory=lambda: deque(maxlen=OFFLINE_QUEUE_SIZE))
    shown: list[str] = field(default_factory=list)
    """Every consultation text displayed, in order (for logs and tests)."""
    _grace_until: float | None = None
    _keychain: bool = False

    def __post_init__(self) -> None:
        self._keychain = self.present

    # -- what the desk shows ---------------------------------------------------

    @property
    def status(self) -> str:
        """AVAILABLE or AWAY (getStatusString, ino:921-927): never BUSY."""
        return "AVAILABLE" if self.present else "AWAY"

    @property
    def in_grace(self) -> bool:
        return self._grace_until is not None

    def uptime_ms(self, now: float) -> int:
        return max(0, round((now - self.booted_at) * 1000))

    # -- the keychain ----------------------------------------------------------

    def keychain(self, now: float, *, in_range: bool) -> list[Publish]:
        """The BLE keychain came into range or left it. A loss is confirmed after the
        grace period (``advance``); a return within it changes nothing."""
        self._keychain = in_range
        if in_range:
            if self._grace_until is not None:
                self._grace_until = None
                return []
            return self._presence(now, present=True)
        if not self.present:
            return []
        if self.grace_period <= 0:
            return self._presence(now, present=False)
        if self._grace_until is None:
            self._grace_until = now + self.grace_period
        return []

    def next_deadline(self) -> float:
        return self._grace_until if self._grace_until is not None else float("inf")

    def advance(self, now: float) -> list[Publish]:
        """Fire the grace timer if it is due."""
        if self._grace_until is not None and now >= self._grace_until:
            self._grace_until = None
            return self._presence(now, present=False)
        return []

    def _presence(self, now: float, *, present: bool) -> list[Publish]:
        if present == self.present:
            return []
        self.present = present
        if not present:
            self.screen = None  # an away faculty answers nothing
        return self._send_or_queue(self._status_pair(now))

    # -- MQTT connection -------------------------------------------------------

    def on_connected(self, now: float) -> list[Publish]:
        """After CONNACK and the two SUBSCRIBEs: the fresh status on both topics
        (retained, ino:1887), the NTP heartbeat once per boot (retained: the bug),
        then the offline queue, oldest first, not retained (ino:1887-1893)."""
        self.connected = True
        out = self._status_pair(now)
        if not self.ntp_synced:
            self.ntp_synced = True
            out.append(self.ntp_heartbeat(now))
        while self.queue:
            queued = self.queue.popleft()
            out.append(
                Publish(
                    topic=queued.topic,
                    payload=queued.payload,
                    retain=False,
                    kind=queued.kind,
                    queued=True,
                )
            )
        return out

    def on_connection_lost(self) -> None:
        self.connected = False

    def reboot(self, now: float) -> None:
        """Power cycle: RAM (queue, screen, NTP state) is gone, uptime starts again."""
        self.booted_at = now
        self.connected = False
        self.screen = None
        self.ntp_synced = False
        self.queue.clear()
        self._grace_until = None
        self.present = self._keychain

    def _send_or_queue(self, publishes: list[Publish]) -> list[Publish]:
        if self.connected:
            return publishes
        self.queue.extend(publishes)  # a full queue drops its oldest entry
        return []

    # -- payloads --------------------------------------------------------------

    def status_payload(self, now: float) -> bytes:
        """P1 (ino:2173-2197), fields in the firmware's order."""
        body: dict[str, object] = {
            "faculty_id": self.faculty_id,
            "faculty_name": self.faculty_name,
            "present": self.present,
            "status": self.status,
            "timestamp": self.uptime_ms(now),
            "ntp_sync_status": "SYNCED" if self.ntp_synced else "PENDING",
        }
        if self._grace_until is not None:
            remaining = max(0, round((self._grace_until - now) * 1000))
            body["grace_period_remaining"] = remaining
            body["in_grace_period"] = True
            body["detailed_status"] = f"AVAILABLE (reconnecting... {remaining // 1000}s)"
        else:
            body["in_grace_period"] = False
            body["detailed_status"] = self.status
        return _json(body)

    def _status_pair(self, now: float) -> list[Publish]:
        payload = self.status_payload(now)
        return [
            Publish(
                topic=topic(self.faculty_id, "status"), payload=payload, retain=True, kind="status"
            ),
            Publish(
                topic=f"{OLD_TOPIC_ROOT}/{self.faculty_id}/status",
                payload=payload,
                retain=True,
                kind="status_old_topic",
            ),
        ]

    def heartbeat(self, now: float, *, rssi: int = -61, free_heap: int = 180_000) -> Publish:
        """P3 (ino:2235-2255), every 30 s while connected; never queued."""
        body = {
            "faculty_id": self.faculty_id,
            "uptime": self.uptime_ms(now),
            "free_heap": free_heap,
            "wifi_connected": True,
            "wifi_rssi": rssi,
            "wifi_stable": True,
            "mqtt_stable": True,
            "wifi_retries": 0,
            "mqtt_retries": 0,
            "time_initialized": self.ntp_synced,
            "ntp_sync_status": "SYNCED" if self.ntp_synced else "PENDING",
            "presence_status": self.status,
            "queue_size": len(self.queue),
            "consultation_queue_size": 1 if self.screen else 0,
        }
        return Publish(
            topic=topic(self.faculty_id, "heartbeat"),
            payload=_json(body),
            retain=False,
            kind="heartbeat",
        )

    def ntp_heartbeat(self, now: float) -> Publish:
        """P4 (ino:2210-2231): retained, because ``MQTT_QOS`` (1) is the retain argument."""
        wall = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))
        body = {
            "faculty_id": self.faculty_id,
            "ntp_sync_success": True,
            "ntp_sync_status": "SYNCED",
            "retry_count": 0,
            "timestamp": self.uptime_ms(now),
            "current_time": wall,
        }
        return Publish(
            topic=topic(self.faculty_id, "heartbeat"),
            payload=_json(body),
            retain=True,
            kind="ntp_heartbeat",
        )

    def diagnostics(self, now: float, *, rssi: int = -61) -> Publish:
        """P5 (ino:2301-2321), every 10 minutes."""
        body = {
            "faculty_id": self.faculty_id,
            "timestamp": self.uptime_ms(now),
            "wifi_rssi": rssi,
            "ntp_status": "SYNCED" if self.ntp_synced else "PENDING",
        }
        return Publish(
            topic=topic(self.faculty_id, "diagnostics"),
            payload=_json(body),
            retain=False,
            kind="diagnostics",
        )

    # -- consultations ---------------------------------------------------------

    def on_message(self, now: float, topic_name: str, payload: bytes) -> bool:
        """A message on one of the two subscriptions; True when the screen changed."""
        if packet_size(topic_name, payload) > BUFFER_SIZE:
            return False  # PubSubClient cannot read it into its buffer: never seen
        if topic_name == topic(self.faculty_id, "messages"):
            return self._on_request(now, payload)
        if topic_name == topic(self.faculty_id, "cancellations"):
            return self._on_cancellation(payload)
        return False

    def _on_request(self, now: float, payload: bytes) -> bool:
        text = payload.decode("utf-8", "replace")
        match = CID.search(text)
        if match is None or not self.present:
            return False  # no CID: dropped (ino:1990-2006); away: dropped (ino:2009-2015)
        self.screen = Consultation(cid=match.group(1), text=text, shown_at=now)
        self.shown.append(text)
        return True

    def _on_cancellation(self, payload: bytes) -> bool:
        try:
            body = json.loads(payload)
        except ValueError:
            return False
        if not isinstance(body, dict) or body.get("type") != "consultation_cancelled":
            return False
        if self.screen is None or str(body.get("consultation_id")) != self.screen.cid:
            return False
        self.screen = None
        return True

    def press(self, now: float, response: Response) -> list[Publish]:
        """A button: P6 on ``…/responses`` only with a CID on screen and the faculty
        present (ino:1326-1348, 1409-1431); queued while offline. Clears the screen."""
        if self.screen is None or not self.present:
            return []
        body = {
            "faculty_id": self.faculty_id,
            "faculty_name": self.faculty_name,
            "response_type": response.value,
            "message_id": self.screen.cid,
            "timestamp": str(self.uptime_ms(now)),
            "faculty_present": True,
            "response_method": "physical_button",
            "status": (
                "Professor acknowledged the request"
                if response is Response.ACKNOWLEDGE
                else "Professor is busy"
            ),
        }
        self.screen = None
        publish = Publish(
            topic=topic(self.faculty_id, "responses"),
            payload=_json(body),
            retain=False,
            kind="response",
        )
        return self._send_or_queue([publish])
