"""What the system shows for a desk (its retained ``state`` topic), against what it sent.

Pure: the runner hands in payloads and times. A mismatch is counted when the status the
system shows differs from the one the unit last sent (or the system shows the desk
offline while it is connected) for at least ``threshold`` seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from desk_firmware_sim.unit import Status


@dataclass(frozen=True, kw_only=True, slots=True)
class ShownState:
    """The payload of ``consultease/faculty/{id}/state``."""

    status: Status | None
    desk_online: bool | None
    version: int | None = None
    updated_at: str | None = None


def parse_state(payload: bytes | bytearray) -> ShownState | None:
    """A state payload, or None when it is empty (cleared) or unreadable."""
    if not payload:
        return None
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    raw_status = data.get("status")
    status: Status | None = None
    if isinstance(raw_status, str):
        try:
            status = Status(raw_status.strip().lower())
        except ValueError:
            status = None
    online = data.get("desk_online")
    version = data.get("version")
    updated_at = data.get("updated_at")
    return ShownState(
        status=status,
        desk_online=online if isinstance(online, bool) else None,
        version=version if isinstance(version, int) and not isinstance(version, bool) else None,
        updated_at=str(updated_at) if updated_at is not None else None,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class MismatchEvent:
    """A mismatch that has lasted past the threshold (``resolved`` False), or its end."""

    faculty_id: int
    resolved: bool
    sent: Status | None
    shown: ShownState | None
    since: float
    at: float

    def describe(self) -> str:
        shown = "nothing"
        if self.shown is not None:
            shown = str(self.shown.status) if self.shown.status else "no status"
            if self.shown.desk_online is False:
                shown += " (desk offline)"
        sent = str(self.sent) if self.sent else "nothing"
        if self.resolved:
            return (
                f"desk {self.faculty_id}: system agrees again after "
                f"{self.at - self.since:.1f}s (shows {shown})"
            )
        return (
            f"desk {self.faculty_id}: system shows {shown} but the unit sent {sent}, "
            f"for {self.at - self.since:.1f}s"
        )


class DisplayMonitor:
    def __init__(self, *, faculty_id: int, threshold: float) -> None:
        self.faculty_id = faculty_id
        self.threshold = threshold
        self.count = 0
        self.sent: Status | None = None
        self.shown: ShownState | None = None
        self.connected = False
        self._since: float | None = None
        self._reported = False

    def _differs(self) -> bool:
        if not self.connected or self.shown is None or self.sent is None:
            return False
        return self.shown.status is not self.sent or self.shown.desk_online is False

    def _update(self, now: float) -> None:
        if self._differs():
            if self._since is None:
                self._since = now
        elif not self._reported:
            self._since = None

    def on_sent(self, now: float, status: Status) -> None:
        self.sent = status
        self._update(now)

    def on_shown(self, now: float, state: ShownState | None) -> None:
        self.shown = state
        self._update(now)

    def on_connection(self, now: float, *, connected: bool) -> None:
        self.connected = connected
        self._update(now)

    @property
    def mismatched(self) -> bool:
        """A mismatch is currently reported (lasted past the threshold, not resolved)."""
        return self._reported

    def check(self, now: float) -> MismatchEvent | None:
        """Call now and then: reports a mismatch once it passes the threshold, and its end."""
        if not self._differs():
            event = None
            if self._reported and self._since is not None:
                event = MismatchEvent(
                    faculty_id=self.faculty_id,
                    resolved=True,
                    sent=self.sent,
                    shown=self.shown,
                    since=self._since,
                    at=now,
                )
            self._since = None
            self._reported = False
            return event
        if self._since is None:
            self._since = now
        if not self._reported and now - self._since >= self.threshold:
            self._reported = True
            self.count += 1
            return MismatchEvent(
                faculty_id=self.faculty_id,
                resolved=False,
                sent=self.sent,
                shown=self.shown,
                since=self._since,
                at=now,
            )
        return None
