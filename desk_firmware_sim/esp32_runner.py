"""The thin MQTT runner for the ``esp32-legacy`` profile (``desk_firmware_sim.esp32``).

Each unit has its own paho client per connection, as PubSubClient has: MQTT 3.1.1, a
new client id (``Faculty_Desk_Unit_<ID>_<chip>_<rand>``) and so a new clean session on
every connect, keepalive 60 s, no last will, every publish at QoS 0. One driver thread
ticks every unit (grace timer, heartbeats, diagnostics, reconnects, the simulated
lecturer); paho's thread per connection only hands what arrives to the state machine.

``Esp32Unit`` is also what tests drive by hand: ``set_present``, ``press``,
``wifi_down``/``wifi_up`` (the link goes away without a DISCONNECT, like Wi-Fi), ``die``
(gone for good, no will) and ``reboot``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from desk_firmware_sim.answers import AnswerPolicy, Response
from desk_firmware_sim.config import BrokerUrl, SimConfig
from desk_firmware_sim.errors import SimError
from desk_firmware_sim.esp32 import (
    DIAGNOSTICS_INTERVAL,
    HEARTBEAT_INTERVAL,
    KEEPALIVE,
    SUBSCRIBE_QOS,
    Esp32Firmware,
    Publish,
    client_id,
    subscriptions,
)
from desk_firmware_sim.unit import FacultyBehaviour, PhysicalEvent

_log = logging.getLogger(__name__)

TICK = 0.1
RECONNECT_DELAY = 1.0
"""The firmware retries MQTT every few seconds; tests want it prompt."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SentPublish:
    at: float
    publish: Publish
    client_id: str


@dataclass(kw_only=True)
class _Pending:
    cid: str
    response: Response
    at: float


@dataclass(kw_only=True)
class Esp32Unit:
    """One desk unit with the existing firmware, on the network."""

    firmware: Esp32Firmware
    broker: BrokerUrl
    username: str | None = None
    password: str | None = None
    chip: str = "A1B2C3D4"
    rng: random.Random = field(default_factory=random.Random)
    answers: AnswerPolicy | None = None
    on_sent: Callable[[SentPublish], None] | None = None
    sent: list[SentPublish] = field(default_factory=list)
    client_ids: list[str] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _client: mqtt.Client | None = None
    _wifi: bool = True
    _dead: bool = False
    _stopping: bool = False
    _reconnect_at: float = 0.0
    _next_heartbeat: float = math.inf
    _next_diagnostics: float = math.inf
    _pending: _Pending | None = None
    _connected_event: threading.Event = field(default_factory=threading.Event)

    @property
    def faculty_id(self) -> int:
        return self.firmware.faculty_id

    @property
    def connected(self) -> bool:
        return self.firmware.connected

    def wait_connected(self, timeout: float) -> bool:
        return self._connected_event.wait(timeout)

    # -- what tests (and the simulated lecturer) do ------------------------------

    def set_present(self, present: bool) -> None:
        with self._lock:
            self._publish(self.firmware.keychain(time.time(), in_range=present))

    def press(self, response: Response) -> bool:
        """Press a button; True if the firmware sent (or queued) a response."""
        with self._lock:
            out = self.firmware.press(time.time(), response)
            self._pending = None
            self._publish(out)
            return bool(out) or (not self.firmware.connected and bool(self.firmware.queue))

    def wifi_down(self) -> None:
        """The Wi-Fi goes: the TCP connection dies without DISCONNECT."""
        with self._lock:
            self._wifi = False
            self._cut()

    def wifi_up(self) -> None:
        with self._lock:
            self._wifi = True
            self._reconnect_at = time.monotonic()

    def die(self) -> None:
        """Power gone for good: no DISCONNECT, no will; the broker keeps its retained."""
        with self._lock:
            self._dead = True
            self._cut()

    def reboot(self) -> None:
        with self._lock:
            self._cut()
            self.firmware.reboot(time.time())
            self._reconnect_at = time.monotonic() + RECONNECT_DELAY

    # -- the driver's tick -------------------------------------------------------

    def tick(self, now_mono: float) -> None:
        now = time.time()
        with self._lock:
            if self._stopping or self._dead:
                return
            self._publish(self.firmware.advance(now))
            if self._client is None and self._wifi and now_mono >= self._reconnect_at:
                self._connect()
            if not self.firmware.connected:
                return
            if now_mono >= self._next_heartbeat:
                self._next_heartbeat = now_mono + HEARTBEAT_INTERVAL
                self._publish([self.firmware.heartbeat(now, rssi=self.rng.randint(-75, -50))])
            if now_mono >= self._next_diagnostics:
                self._next_diagnostics = now_mono + DIAGNOSTICS_INTERVAL
                self._publish([self.firmware.diagnostics(now)])
            pending = self._pending
            screen = self.firmware.screen
            if pending is not None and now >= pending.at:
                self._pending = None
                if screen is not None and screen.cid == pending.cid:
                    self._publish(self.firmware.press(now, pending.response))

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()
        self.firmware.on_connection_lost()

    # -- MQTT --------------------------------------------------------------------

    def _connect(self) -> None:
        cid = client_id(self.faculty_id, self.chip, self.rng.randrange(0xFFFF))
        self.client_ids.append(cid)
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=cid,
            protocol=mqtt.MQTTv311,
            clean_session=True,
            reconnect_on_failure=False,
        )
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client
        self._reconnect_at = math.inf
        try:
            client.connect_async(self.broker.host, self.broker.port, keepalive=KEEPALIVE)
            client.loop_start()
        except OSError as exc:
            _log.info("desk %d cannot connect: %s", self.faculty_id, exc)
            self._client = None
            self._reconnect_at = time.monotonic() + RECONNECT_DELAY

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        with self._lock:
            if client is not self._client:
                return
            if reason.is_failure:
                _log.warning("desk %d refused by the broker: %s", self.faculty_id, reason)
                self._drop_client(client)
                return
            client.subscribe([(t, SUBSCRIBE_QOS) for t in subscriptions(self.faculty_id)])
            out = self.firmware.on_connected(time.time())
            now_mono = time.monotonic()
            self._next_heartbeat = now_mono + HEARTBEAT_INTERVAL
            self._next_diagnostics = now_mono + DIAGNOSTICS_INTERVAL
            self._publish(out)
            self._connected_event.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        with self._lock:
            if client is self._client:
                self._drop_client(client)

    def _drop_client(self, client: mqtt.Client) -> None:
        self._client = None
        self.firmware.on_connection_lost()
        self._connected_event.clear()
        self._reconnect_at = time.monotonic() + RECONNECT_DELAY
        threading.Thread(target=client.loop_stop, daemon=True).start()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            now = time.time()
            if not self.firmware.on_message(now, message.topic, bytes(message.payload)):
                return
            screen = self.firmware.screen
            _log.info("desk %d shows: %s", self.faculty_id, screen.text if screen else "(nothing)")
            if screen is not None and self.answers is not None:
                response, delay = self.answers.choose(self.rng)
                self._pending = (
                    _Pending(cid=screen.cid, response=response, at=now + delay)
                    if response is not None
                    else None
                )

    def _cut(self) -> None:
        """Close the socket under paho without a DISCONNECT packet."""
        client, self._client = self._client, None
        self.firmware.on_connection_lost()
        self._connected_event.clear()
        if client is None:
            return
        sock = client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        threading.Thread(target=client.loop_stop, daemon=True).start()

    def _publish(self, publishes: list[Publish]) -> None:
        client = self._client
        for p in publishes:
            if client is None or not self.firmware.connected:
                break  # the link went between the decision and the send: lost, as on a desk
            client.publish(p.topic, p.payload, qos=0, retain=p.retain)
            record = SentPublish(at=time.time(), publish=p, client_id=self.client_ids[-1])
            self.sent.append(record)
            if self.on_sent is not None:
                self.on_sent(record)


class Esp32Fleet:
    """Units with the existing firmware, driven by one thread; a simulated lecturer per
    unit unless ``behaviour`` is off (then tests drive each unit by hand)."""

    def __init__(
        self,
        config: SimConfig,
        *,
        answers: AnswerPolicy | None = None,
        behaviour: bool = True,
        uptime_before_start: float = 0.0,
        initially_present: bool | None = None,
        on_sent: Callable[[SentPublish], None] | None = None,
    ) -> None:
        self.config = config
        self.broker = BrokerUrl.parse(config.mqtt_url)
        if self.broker.tls:
            raise SimError(
                "the existing ESP32 firmware has no TLS: give it an mqtt:// URL "
                "(the broker's plain listener, README 'Existing desk units')"
            )
        seed = config.seed if config.seed is not None else random.randrange(2**32)
        now = time.time()
        self.units: dict[int, Esp32Unit] = {}
        self._behaviour: dict[int, FacultyBehaviour] = {}
        for fid in config.faculty_ids:
            rng = random.Random(seed * 1_000_003 + fid)
            person: FacultyBehaviour | None = None
            if behaviour:
                person = FacultyBehaviour(
                    rng=random.Random(rng.getrandbits(64)),
                    mean_dwell=60.0 / config.rate if config.rate > 0 else 60.0,
                    grace_period=config.effective_grace_period,
                    now=now,
                )
                self._behaviour[fid] = person
            present = person.present if person is not None else bool(initially_present)
            username, password = config.credentials(fid)
            self.units[fid] = Esp32Unit(
                firmware=Esp32Firmware(
                    faculty_id=fid,
                    faculty_name=config.faculty_names.get(fid, f"Faculty {fid}"),
                    booted_at=now - uptime_before_start,
                    grace_period=config.effective_grace_period if behaviour else 0.0,
                    present=present,
                ),
                broker=self.broker,
                username=username,
                password=password,
                chip=f"{rng.getrandbits(32):08X}",
                rng=rng,
                answers=answers,
                on_sent=on_sent,
            )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drive, name="esp32-sim", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(
            u.wait_connected(max(0.0, deadline - time.monotonic())) for u in self.units.values()
        )

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        for unit in self.units.values():
            unit.stop()

    def __enter__(self) -> Esp32Fleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _drive(self) -> None:
        while not self._stop.wait(TICK):
            now = time.time()
            mono = time.monotonic()
            for fid, unit in self.units.items():
                person = self._behaviour.get(fid)
                while person is not None and person.next_event_time() <= now:
                    _, event = person.pop_event()
                    if event is not PhysicalEvent.BUTTON:  # this firmware has no busy toggle
                        unit.set_present(event is PhysicalEvent.KEYCHAIN_SEEN)
                try:
                    unit.tick(mono)
                except Exception:  # one unit's bug must not stop the others
                    _log.exception("desk %d failed a tick", fid)
