"""Collecting ``faculty_changed`` notifications in a test."""

from __future__ import annotations

import json
from typing import Any

import psycopg


class NotificationRecorder:
    """A LISTEN connection; ``drain`` returns the payloads received so far."""

    def __init__(self, url: str, channel: str = "faculty_changed") -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute(f"LISTEN {channel}")

    def drain(self, timeout: float = 0.3) -> list[dict[str, Any]]:
        return [json.loads(n.payload) for n in self.conn.notifies(timeout=timeout)]

    def close(self) -> None:
        self.conn.close()
