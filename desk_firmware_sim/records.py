"""What the fleet reports as it runs: each message it published, and connection events.

``Fleet(on_record=...)`` calls a sink with every record, on the fleet's network thread;
a sink must be quick. ``JsonlRecorder`` is the sink behind ``--json PATH``.
"""

from __future__ import annotations

import enum
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from desk_firmware_sim.errors import SimError
from desk_firmware_sim.faults import Copy
from desk_firmware_sim.unit import MessageKind, Status


class EventKind(enum.StrEnum):
    CONNECTED = "connected"
    RECONNECTED = "reconnected"
    CONNECTION_LOST = "connection_lost"
    DROPPED = "dropped"
    REBOOTED = "rebooted"
    MISMATCH = "mismatch"
    MISMATCH_RESOLVED = "mismatch_resolved"
    STOPPED = "stopped"


@dataclass(frozen=True, kw_only=True, slots=True)
class SentRecord:
    """A message handed to the MQTT client. ``published_at`` is Unix time in seconds."""

    published_at: float
    faculty_id: int
    topic: str
    payload: Mapping[str, object] | str
    kind: MessageKind
    status: Status | None
    version: int | None
    copy: Copy
    qos: int
    retain: bool

    def to_json(self) -> dict[str, object]:
        return {
            "type": "message",
            "t": self.published_at,
            "faculty_id": self.faculty_id,
            "topic": self.topic,
            "payload": self.payload if isinstance(self.payload, str) else dict(self.payload),
            "version": self.version,
            "status": self.status.value if self.status is not None else None,
            "kind": self.kind.value,
            "copy": self.copy.value,
            "qos": self.qos,
            "retain": self.retain,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class EventRecord:
    """Something happened to a unit's connection (or its display check)."""

    at: float
    faculty_id: int
    event: EventKind
    detail: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "type": "event",
            "t": self.at,
            "faculty_id": self.faculty_id,
            "event": self.event.value,
            "detail": self.detail,
        }


Record = SentRecord | EventRecord


class JsonlRecorder:
    """Appends one JSON object per line for every record. Thread-safe; close() when done."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._fh: IO[str] | None = path.open("w", encoding="utf-8")
        except OSError as exc:
            raise SimError(f"cannot write the JSON log {path}: {exc.strerror or exc}") from exc

    def __call__(self, record: Record) -> None:
        line = json.dumps(record.to_json(), separators=(",", ":"))
        with self._lock:
            if self._fh is not None:
                self._fh.write(line + "\n")

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def __enter__(self) -> JsonlRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
