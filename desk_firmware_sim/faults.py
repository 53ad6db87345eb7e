"""Faults on request, decided purely from a seeded ``random.Random``.

Every status message draws the same number of random values whatever the settings, so
turning one fault on does not reshuffle the others, and a seed replays the same faults.

- duplicate: the same message (same bytes) goes out twice in a row.
- reorder: a message is held back and released right after 1..``reorder_window`` later
  status messages of the same unit have gone out (or after ``reorder_max_hold`` seconds),
  so it arrives late, after newer ones.
- reboot / drop: after a status message the unit reboots (boot counter + 1, sequence
  reset) or its connection dies without DISCONNECT; it reconnects after a delay.
- clock skew: the device clock runs ``clock_skew`` seconds off (see ``UnitSpec``).
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass

from desk_firmware_sim.unit import Message


class Copy(enum.StrEnum):
    """How a published message relates to the one the firmware made."""

    ORIGINAL = "original"
    DUPLICATE = "duplicate"
    DELAYED = "delayed"


class Disruption(enum.StrEnum):
    DROP = "drop"
    REBOOT = "reboot"


@dataclass(frozen=True, kw_only=True, slots=True)
class FaultConfig:
    """Which faults to inject. Rates are chances per status message, from 0 to 1."""

    duplicate_rate: float = 0.0
    reorder_window: int = 0
    reorder_rate: float = 0.25
    reorder_max_hold: float = 10.0
    reboot_rate: float = 0.0
    drop_rate: float = 0.0
    clock_skew: float = 0.0
    reconnect_delay_min: float = 1.0
    reconnect_delay_max: float = 3.0

    @property
    def any(self) -> bool:
        return bool(
            self.duplicate_rate
            or (self.reorder_window and self.reorder_rate)
            or self.reboot_rate
            or self.drop_rate
            or self.clock_skew
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Outgoing:
    message: Message
    copy: Copy = Copy.ORIGINAL


@dataclass(kw_only=True, slots=True)
class _Held:
    message: Message
    duplicate: bool
    remaining: int
    release_at: float


@dataclass(kw_only=True, slots=True)
class FaultCounts:
    duplicated: int = 0
    delayed: int = 0
    discarded: int = 0


class FaultInjector:
    """Applies duplicate and reorder faults to one unit's status messages."""

    def __init__(self, *, config: FaultConfig, rng: random.Random) -> None:
        self.config = config
        self._rng = rng
        self._held: list[_Held] = []
        self.counts = FaultCounts()
        self._window = max(1, config.reorder_window)

    @property
    def held(self) -> int:
        return len(self._held)

    def next_deadline(self) -> float:
        return min((h.release_at for h in self._held), default=math.inf)

    def _copies(self, message: Message, *, duplicate: bool, copy: Copy) -> list[Outgoing]:
        out = [Outgoing(message=message, copy=copy)]
        if duplicate:
            self.counts.duplicated += 1
            out.append(Outgoing(message=message, copy=Copy.DUPLICATE))
        return out

    def submit(self, now: float, message: Message) -> list[Outgoing]:
        """What actually goes out, in order, when the firmware sends ``message``."""
        cfg = self.config
        hold_draw = self._rng.random()
        hold_for = self._rng.randint(1, self._window)
        duplicate = self._rng.random() < cfg.duplicate_rate
        if cfg.reorder_window > 0 and hold_draw < cfg.reorder_rate:
            self._held.append(
                _Held(
                    message=message,
                    duplicate=duplicate,
                    remaining=hold_for,
                    release_at=now + cfg.reorder_max_hold,
                )
            )
            return []
        out = self._copies(message, duplicate=duplicate, copy=Copy.ORIGINAL)
        still: list[_Held] = []
        for held in self._held:
            held.remaining -= 1
            if held.remaining <= 0:
                self.counts.delayed += 1
                out.extend(self._copies(held.message, duplicate=held.duplicate, copy=Copy.DELAYED))
            else:
                still.append(held)
        self._held = still
        return out

    def release_due(self, now: float) -> list[Outgoing]:
        """Held messages whose maximum hold time has passed."""
        out: list[Outgoing] = []
        still: list[_Held] = []
        for held in self._held:
            if now >= held.release_at:
                self.counts.delayed += 1
                out.extend(self._copies(held.message, duplicate=held.duplicate, copy=Copy.DELAYED))
            else:
                still.append(held)
        self._held = still
        return out

    def discard_held(self) -> int:
        """The connection died or the unit rebooted: held messages are lost."""
        n = len(self._held)
        self.counts.discarded += n
        self._held = []
        return n

    def disruption(self) -> Disruption | None:
        """Decided after each status message: does the unit now reboot or drop?"""
        reboot = self._rng.random() < self.config.reboot_rate
        drop = self._rng.random() < self.config.drop_rate
        if reboot:
            return Disruption.REBOOT
        if drop:
            return Disruption.DROP
        return None

    def reconnect_delay(self) -> float:
        cfg = self.config
        return self._rng.uniform(cfg.reconnect_delay_min, cfg.reconnect_delay_max)
