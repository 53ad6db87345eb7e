"""A whole simulated desk, still pure: person + firmware + faults + display check.

The runner owns the sockets and the clock; it asks ``next_deadline()``, calls
``advance(now)`` (or ``load_step(now)`` when flooding), tells the desk about its
connection, and carries out the actions it gets back: publish a message, persist the
boot counter, drop the connection.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass

from desk_firmware_sim.answers import CID, AnswerPolicy, Response
from desk_firmware_sim.display import DisplayMonitor, MismatchEvent, parse_state
from desk_firmware_sim.faults import Copy, Disruption, FaultConfig, FaultInjector
from desk_firmware_sim.unit import (
    DeskFirmware,
    FacultyBehaviour,
    Message,
    Mode,
    Status,
    UnitSpec,
    availability_message,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Send:
    """Publish ``message``."""

    message: Message
    copy: Copy = Copy.ORIGINAL


@dataclass(frozen=True, kw_only=True, slots=True)
class PersistBootCount:
    """Write the boot counter to flash (once per boot)."""

    boot_count: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Disconnect:
    """Close the socket without DISCONNECT, so the broker fires the will; reconnect later."""

    reason: Disruption
    reconnect_at: float


Action = Send | PersistBootCount | Disconnect


class SimulatedDesk:
    """One unit. ``boot_count`` is the count of the current boot, already in flash."""

    def __init__(
        self,
        *,
        spec: UnitSpec,
        faults: FaultConfig,
        rng: random.Random,
        boot_count: int,
        now: float,
        mismatch_after: float = 5.0,
        answers: AnswerPolicy | None = None,
    ) -> None:
        self.spec = spec
        self.answers = answers
        self.screen: tuple[str, str] | None = None
        """The consultation request on screen: (request id, text)."""
        self.shown: list[str] = []
        self._answer: tuple[str, Response] | None = None
        self._answer_at = math.inf
        # Independent streams, so heartbeats or faults never shift the person's timeline.
        world_rng, fault_rng, radio_rng, phase_rng = (
            random.Random(rng.getrandbits(64)) for _ in range(4)
        )
        self._answer_rng = random.Random(rng.getrandbits(64))
        self._radio_rng = radio_rng
        self.behaviour: FacultyBehaviour | None = None
        if spec.mode is Mode.REALISTIC:
            self.behaviour = FacultyBehaviour(
                rng=world_rng, mean_dwell=spec.mean_dwell, grace_period=spec.grace_period, now=now
            )
        self.firmware = DeskFirmware(
            spec=spec, boot_count=boot_count, now=now, keychain_present=self._keychain_in_range()
        )
        self.faults = FaultInjector(config=faults, rng=fault_rng)
        self.monitor = DisplayMonitor(faculty_id=spec.faculty_id, threshold=mismatch_after)
        self.connected = False
        self._next_heartbeat = math.inf
        pace = spec.pace_interval
        self._next_pace = now + phase_rng.uniform(0.0, pace) if pace is not None else math.inf
        self._rssi = radio_rng.randint(-75, -50)

    @property
    def faculty_id(self) -> int:
        return self.spec.faculty_id

    @property
    def status(self) -> Status:
        return self.firmware.status

    @property
    def boot_count(self) -> int:
        return self.firmware.boot_count

    def _keychain_in_range(self) -> bool:
        return self.behaviour.present if self.behaviour is not None else True

    def next_deadline(self) -> float:
        world = self.behaviour.next_event_time() if self.behaviour is not None else math.inf
        return min(
            world,
            self.firmware.next_deadline(),
            self._next_heartbeat,
            self._next_pace,
            self.faults.next_deadline(),
            self._answer_at,
        )

    def advance(self, now: float) -> list[Action]:
        """Everything due up to ``now``, each at its own time, in order."""
        actions: list[Action] = []
        while True:
            world = self.behaviour.next_event_time() if self.behaviour is not None else math.inf
            timer = self.firmware.next_deadline()
            held = self.faults.next_deadline()
            due = min(world, timer, self._next_heartbeat, self._next_pace, held, self._answer_at)
            if due > now:
                return actions
            change: Status | None = None
            if due == self._answer_at:
                actions.extend(self._press_answer(due))
                continue
            if due == timer:
                change = self.firmware.advance(due)
            elif due == world and self.behaviour is not None:
                at, event = self.behaviour.pop_event()
                change = self.firmware.on_event(at, event)
            elif due == self._next_pace:
                self._next_pace = due + (self.spec.pace_interval or math.inf)
                change = self.firmware.next_load_status(due)
            elif due == self._next_heartbeat:
                self._next_heartbeat = due + self.spec.heartbeat_interval
                if self.connected:
                    actions.append(Send(message=self._heartbeat(due)))
            else:
                actions.extend(self._release_held(due))
            if change is not None:
                if self.firmware.status is Status.AWAY:
                    self._clear_screen()  # an away lecturer answers nothing
                actions.extend(self._emit_status(due))

    # -- consultation requests (SPEC 9.2) ----------------------------------------

    def on_request(self, now: float, payload: bytes | bytearray) -> bool:
        """A ``…/messages`` text: shown while the lecturer is there; True if shown."""
        text = bytes(payload).decode("utf-8", "replace")
        match = CID.search(text)
        if match is None or self.firmware.status is Status.AWAY:
            return False
        self.screen = (match.group(1), text)
        self.shown.append(text)
        self._answer, self._answer_at = None, math.inf
        if self.answers is not None:
            response, delay = self.answers.choose(self._answer_rng)
            if response is not None:
                self._answer, self._answer_at = (match.group(1), response), now + delay
        return True

    def on_cancellation(self, now: float, payload: bytes | bytearray) -> bool:
        """A ``…/cancellations`` JSON: clears the request on screen if it is that one."""
        try:
            body = json.loads(bytes(payload))
        except ValueError:
            return False
        if not isinstance(body, dict) or body.get("type") != "consultation_cancelled":
            return False
        if self.screen is None or str(body.get("consultation_id")) != self.screen[0]:
            return False
        self._clear_screen()
        return True

    def _clear_screen(self) -> None:
        self.screen = None
        self._answer, self._answer_at = None, math.inf

    def _press_answer(self, now: float) -> list[Action]:
        answer = self._answer
        self._answer, self._answer_at = None, math.inf
        if answer is None or self.screen is None or self.screen[0] != answer[0]:
            return []
        self.screen = None
        if not self.connected:
            return []
        cid, response = answer
        actions: list[Action] = [
            Send(
                message=self.firmware.response_message(now, message_id=cid, response=response.value)
            )
        ]
        if response is Response.BUSY and self.firmware.set_busy(now) is not None:
            actions.extend(self._emit_status(now))
        return actions

    def _release_held(self, now: float) -> list[Action]:
        """Reordered messages whose longest hold is over (lost if the link went down)."""
        if not self.connected:
            self.faults.discard_held()
            return []
        return [Send(message=o.message, copy=o.copy) for o in self.faults.release_due(now)]

    def load_step(self, now: float) -> list[Action]:
        """Flood mode: one real status change, right now."""
        self.firmware.next_load_status(now)
        return self._emit_status(now)

    def _heartbeat(self, now: float) -> Message:
        rng = self._radio_rng
        self._rssi = max(-95, min(-35, self._rssi + rng.randint(-3, 3)))
        free_heap = 180_000 + rng.randint(-12_000, 12_000)
        return self.firmware.heartbeat_message(now, rssi=self._rssi, free_heap=free_heap)

    def _emit_status(self, now: float) -> list[Action]:
        if not self.connected:
            return []
        message = self.firmware.status_message(now)
        self.monitor.on_sent(now, self.firmware.status)
        actions: list[Action] = [
            Send(message=o.message, copy=o.copy) for o in self.faults.submit(now, message)
        ]
        disruption = self.faults.disruption()
        if disruption is not None:
            actions.extend(self._disrupt(now, disruption))
        return actions

    def _disrupt(self, now: float, reason: Disruption) -> list[Action]:
        actions: list[Action] = []
        reconnect_at = now + self.faults.reconnect_delay()
        self.on_connection_lost(now)
        if reason is Disruption.REBOOT:
            boot_count = self.firmware.boot_count + 1
            self.firmware.reboot(
                now, boot_count=boot_count, keychain_present=self._keychain_in_range()
            )
            actions.append(PersistBootCount(boot_count=boot_count))
        actions.append(Disconnect(reason=reason, reconnect_at=reconnect_at))
        return actions

    def on_connected(self, now: float) -> list[Action]:
        """Right after CONNACK: ``online`` (retained), then the current status."""
        self.connected = True
        self.monitor.on_connection(now, connected=True)
        if self.spec.heartbeat_interval > 0:
            self._next_heartbeat = now + self.spec.heartbeat_interval
        announce = self.firmware.status_message(now)
        self.monitor.on_sent(now, self.firmware.status)
        return [
            Send(message=availability_message(self.faculty_id, online=True, at=now)),
            Send(message=announce),
        ]

    def on_connection_lost(self, now: float) -> None:
        self.connected = False
        self.monitor.on_connection(now, connected=False)
        self._next_heartbeat = math.inf
        self.faults.discard_held()

    def on_state(self, now: float, payload: bytes | bytearray) -> None:
        """A message on this desk's retained ``state`` topic."""
        self.monitor.on_shown(now, parse_state(payload))

    def check_display(self, now: float) -> MismatchEvent | None:
        return self.monitor.check(now)
