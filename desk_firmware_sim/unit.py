"""One desk unit as a pure state machine: the firmware, and the person it watches.

No I/O and no clock reads: every method takes the time (Unix seconds, float) and all
randomness comes from a ``random.Random`` handed in, so a seed replays a run exactly.

``FacultyBehaviour`` is the world: when the faculty member's BLE keychain is in range and
when they press the busy button. ``DeskFirmware`` is what the ESP32 does with that:
the grace period, the busy toggle, the boot counter and the message sequence, and the
payloads it would put on the wire (current format or the legacy firmware's).
"""

from __future__ import annotations

import enum
import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

TOPIC_ROOT = "consultease/faculty"
SEQ_BITS = 32
MAX_SEQ = 2**SEQ_BITS - 1
MAX_BOOT_COUNT = 2**31 - 1


class Status(enum.StrEnum):
    AVAILABLE = "available"
    AWAY = "away"
    BUSY = "busy"


class Mode(enum.StrEnum):
    """``realistic``: a simulated person drives the unit. ``load``: every step is a change."""

    REALISTIC = "realistic"
    LOAD = "load"


class MessageKind(enum.StrEnum):
    STATUS = "status"
    HEARTBEAT = "heartbeat"
    AVAILABILITY = "availability"
    RESPONSE = "response"


class PhysicalEvent(enum.StrEnum):
    KEYCHAIN_SEEN = "keychain_seen"
    KEYCHAIN_LOST = "keychain_lost"
    BUTTON = "button"


LOAD_CYCLE: tuple[Status, ...] = (Status.AVAILABLE, Status.BUSY, Status.AWAY)


def status_topic(faculty_id: int) -> str:
    return f"{TOPIC_ROOT}/{faculty_id}/status"


def heartbeat_topic(faculty_id: int) -> str:
    return f"{TOPIC_ROOT}/{faculty_id}/heartbeat"


def availability_topic(faculty_id: int) -> str:
    return f"{TOPIC_ROOT}/{faculty_id}/availability"


def state_topic(faculty_id: int) -> str:
    return f"{TOPIC_ROOT}/{faculty_id}/state"


def messages_topic(faculty_id: int) -> str:
    """Consultation requests for this desk (SPEC 9.2, system -> desk)."""
    return f"{TOPIC_ROOT}/{faculty_id}/messages"


def cancellations_topic(faculty_id: int) -> str:
    return f"{TOPIC_ROOT}/{faculty_id}/cancellations"


def responses_topic(faculty_id: int) -> str:
    return f"{TOPIC_ROOT}/{faculty_id}/responses"


def make_version(boot_count: int, seq: int) -> int:
    """``boot_count * 2**32 + seq``: strictly increasing over a unit's life."""
    if not 0 <= boot_count <= MAX_BOOT_COUNT:
        raise ValueError(f"boot_count out of range: {boot_count}")
    if not 0 < seq <= MAX_SEQ:
        raise ValueError(f"seq out of range: {seq}")
    return (boot_count << SEQ_BITS) | seq


def split_version(version: int) -> tuple[int, int]:
    """The inverse of ``make_version``: ``(boot_count, seq)``."""
    return version >> SEQ_BITS, version & MAX_SEQ


@dataclass(frozen=True, kw_only=True, slots=True)
class Message:
    """One MQTT message a unit wants to publish. ``at`` is when the unit made it."""

    faculty_id: int
    kind: MessageKind
    topic: str
    payload: Mapping[str, object] | str
    qos: int
    retain: bool = False
    status: Status | None = None
    version: int | None = None
    at: float

    def encode(self) -> bytes:
        if isinstance(self.payload, str):
            return self.payload.encode()
        return json.dumps(self.payload, separators=(",", ":")).encode()


def availability_message(faculty_id: int, *, online: bool, at: float) -> Message:
    """The retained ``online``/``offline`` message (``offline`` is also the last will)."""
    return Message(
        faculty_id=faculty_id,
        kind=MessageKind.AVAILABILITY,
        topic=availability_topic(faculty_id),
        payload="online" if online else "offline",
        qos=1,
        retain=True,
        at=at,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class UnitSpec:
    """What is fixed about one unit for a run."""

    faculty_id: int
    faculty_name: str
    desk_id: str
    legacy: bool = False
    mode: Mode = Mode.REALISTIC
    rate: float = 1.0
    grace_period: float = 15.0
    heartbeat_interval: float = 30.0
    clock_skew: float = 0.0

    @property
    def mean_dwell(self) -> float:
        """Mean seconds the faculty stays present (or away): 60 / rate."""
        return 60.0 / self.rate if self.rate > 0 else 1.0

    @property
    def pace_interval(self) -> float | None:
        """Seconds between changes in paced load mode; None when not paced."""
        if self.mode is Mode.LOAD and self.rate > 0:
            return 60.0 / self.rate
        return None


class FacultyBehaviour:
    """The person at the desk, as a timeline of keychain and button events.

    Present for an exponentially distributed while (mean ``mean_dwell``), pressing the
    busy button now and then (mean interval twice the dwell). An absence is either a
    short BLE blip, shorter than the grace period (a quarter of absences), or a real
    absence: the grace period plus an exponential dwell.
    """

    BLIP_SHARE = 0.25
    BUTTON_DWELL_FACTOR = 2.0
    MIN_DWELL_FACTOR = 0.05

    def __init__(
        self,
        *,
        rng: random.Random,
        mean_dwell: float,
        grace_period: float,
        now: float,
        initially_present: float = 0.7,
    ) -> None:
        if mean_dwell <= 0:
            raise ValueError("mean_dwell must be > 0")
        self._rng = rng
        self._mean = mean_dwell
        self._grace = grace_period
        self.present = rng.random() < initially_present
        self._leave_at = math.inf
        self._button_at = math.inf
        self._return_at = math.inf
        if self.present:
            self._arrive(now)
        else:
            self._return_at = now + self._dwell()

    def _dwell(self) -> float:
        return max(self.MIN_DWELL_FACTOR * self._mean, self._rng.expovariate(1.0 / self._mean))

    def _arrive(self, at: float) -> None:
        self.present = True
        self._return_at = math.inf
        self._leave_at = at + self._dwell()
        self._button_at = at + self._rng.expovariate(1.0 / (self.BUTTON_DWELL_FACTOR * self._mean))

    def next_event_time(self) -> float:
        if self.present:
            return min(self._leave_at, self._button_at)
        return self._return_at

    def pop_event(self) -> tuple[float, PhysicalEvent]:
        """The next event and its time; the timeline moves past it."""
        if not self.present:
            at = self._return_at
            self._arrive(at)
            return at, PhysicalEvent.KEYCHAIN_SEEN
        if self._button_at < self._leave_at:
            at = self._button_at
            self._button_at = at + self._rng.expovariate(
                1.0 / (self.BUTTON_DWELL_FACTOR * self._mean)
            )
            return at, PhysicalEvent.BUTTON
        at = self._leave_at
        self.present = False
        self._leave_at = self._button_at = math.inf
        if self._grace > 0 and self._rng.random() < self.BLIP_SHARE:
            absence = self._rng.uniform(0.1, 0.8) * self._grace
        else:
            absence = self._grace + self._dwell()
        self._return_at = at + absence
        return at, PhysicalEvent.KEYCHAIN_LOST


class DeskFirmware:
    """The ESP32 firmware's logic. Methods that change the status return the new one.

    Keychain lost: the status stays for ``grace_period`` seconds, then becomes away (and
    busy is cleared); back within the grace period: nothing changes. The busy button
    toggles available/busy while the faculty is there. Every status message gets the
    next sequence number of this boot.
    """

    def __init__(
        self, *, spec: UnitSpec, boot_count: int, now: float, keychain_present: bool
    ) -> None:
        self.spec = spec
        self.boot_count = 0
        self.seq = 0
        self.booted_at = now
        self.keychain_present = keychain_present
        self.status = Status.AWAY
        self._grace_until: float | None = None
        self._load_index = 0
        self._boot(now, boot_count, keychain_present)

    def _boot(self, now: float, boot_count: int, keychain_present: bool) -> None:
        if not 0 <= boot_count <= MAX_BOOT_COUNT:
            raise ValueError(f"boot_count out of range: {boot_count}")
        self.boot_count = boot_count
        self.seq = 0
        self.booted_at = now
        self.keychain_present = keychain_present
        self.status = Status.AVAILABLE if keychain_present else Status.AWAY
        self._grace_until = None

    def reboot(self, now: float, *, boot_count: int, keychain_present: bool) -> None:
        """Power cycle: RAM is gone, the boot counter (from flash) has grown."""
        if boot_count <= self.boot_count:
            raise ValueError(
                f"a reboot must increase boot_count ({self.boot_count} -> {boot_count})"
            )
        self._boot(now, boot_count, keychain_present)

    @property
    def in_grace(self) -> bool:
        return self._grace_until is not None

    def next_deadline(self) -> float:
        return self._grace_until if self._grace_until is not None else math.inf

    def _set(self, status: Status) -> Status | None:
        if status is self.status:
            return None
        self.status = status
        return status

    def keychain_seen(self, now: float) -> Status | None:
        self.keychain_present = True
        if self._grace_until is not None:
            self._grace_until = None
            return None
        if self.status is Status.AWAY:
            return self._set(Status.AVAILABLE)
        return None

    def keychain_lost(self, now: float) -> Status | None:
        self.keychain_present = False
        if self.status is not Status.AWAY and self._grace_until is None:
            if self.spec.grace_period <= 0:
                return self._set(Status.AWAY)
            self._grace_until = now + self.spec.grace_period
        return None

    def press_button(self, now: float) -> Status | None:
        if not self.keychain_present or self.status is Status.AWAY:
            return None
        return self._set(Status.AVAILABLE if self.status is Status.BUSY else Status.BUSY)

    def on_event(self, now: float, event: PhysicalEvent) -> Status | None:
        if event is PhysicalEvent.KEYCHAIN_SEEN:
            return self.keychain_seen(now)
        if event is PhysicalEvent.KEYCHAIN_LOST:
            return self.keychain_lost(now)
        return self.press_button(now)

    def advance(self, now: float) -> Status | None:
        """Fire the grace timer if it is due."""
        if self._grace_until is not None and now >= self._grace_until:
            self._grace_until = None
            return self._set(Status.AWAY)
        return None

    def next_load_status(self, now: float) -> Status:
        """Load mode: move to the next status of the cycle, always a real change."""
        self._load_index = (self._load_index + 1) % len(LOAD_CYCLE)
        status = LOAD_CYCLE[self._load_index]
        if status is self.status:
            self._load_index = (self._load_index + 1) % len(LOAD_CYCLE)
            status = LOAD_CYCLE[self._load_index]
        self.status = status
        self.keychain_present = status is not Status.AWAY
        self._grace_until = None
        return status

    def uptime_ms(self, now: float) -> int:
        return max(0, round((now - self.booted_at) * 1000))

    def device_time_ms(self, now: float) -> int:
        return round((now + self.spec.clock_skew) * 1000)

    def status_message(self, now: float) -> Message:
        """The message for the current status, with the next sequence number."""
        if self.seq >= MAX_SEQ:
            raise OverflowError("sequence exhausted for this boot")
        self.seq += 1
        spec = self.spec
        payload: dict[str, object]
        version: int | None
        if spec.legacy:
            version = None
            payload = {
                "faculty_id": spec.faculty_id,
                "faculty_name": spec.faculty_name,
                "present": self.status is not Status.AWAY,
                "status": self.status.value.upper(),
                "timestamp": self.uptime_ms(now),
                "ntp_sync_status": "SYNCED",
                "in_grace_period": self.in_grace,
                "detailed_status": self.status.value.upper(),
            }
        else:
            version = make_version(self.boot_count, self.seq)
            payload = {
                "status": self.status.value,
                "version": version,
                "ts": self.device_time_ms(now),
                "desk_id": spec.desk_id,
            }
        return Message(
            faculty_id=spec.faculty_id,
            kind=MessageKind.STATUS,
            topic=status_topic(spec.faculty_id),
            payload=payload,
            qos=1,
            status=self.status,
            version=version,
            at=now,
        )

    def response_message(self, now: float, *, message_id: str, response: str) -> Message:
        """ACKNOWLEDGE or BUSY for the request on screen, on ``…/responses`` (SPEC 9.2)."""
        return Message(
            faculty_id=self.spec.faculty_id,
            kind=MessageKind.RESPONSE,
            topic=responses_topic(self.spec.faculty_id),
            payload={
                "faculty_id": self.spec.faculty_id,
                "response_type": response,
                "message_id": message_id,
                "ts": self.device_time_ms(now),
                "desk_id": self.spec.desk_id,
            },
            qos=1,
            at=now,
        )

    def set_busy(self, now: float) -> Status | None:
        """The BUSY answer makes a present lecturer busy, as the busy button does."""
        if not self.keychain_present or self.status is Status.AWAY:
            return None
        return self._set(Status.BUSY)

    def heartbeat_message(self, now: float, *, rssi: int, free_heap: int) -> Message:
        return Message(
            faculty_id=self.spec.faculty_id,
            kind=MessageKind.HEARTBEAT,
            topic=heartbeat_topic(self.spec.faculty_id),
            payload={
                "uptime_ms": self.uptime_ms(now),
                "rssi": rssi,
                "free_heap": free_heap,
                "desk_id": self.spec.desk_id,
            },
            qos=0,
            at=now,
        )
