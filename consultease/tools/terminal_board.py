"""The live board in a terminal (rich), for the headless demo.

It shows what the kiosk shows: faculty by department, each with a status in
words and colour (``offline`` whenever the desk is offline), the count of
available faculty, and a banner while live updates are down. It reads the
listener's cache; listener events only bump counters, so nothing here runs
on the listener's thread but two integer updates under a lock.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from consultease.live.listener import (
    Connected,
    Disconnected,
    FacultyChanged,
    FacultyListener,
    FacultyRemoved,
    ListenerEvent,
    Reconnecting,
    Resynced,
)

STYLES = {
    "available": "bold green",
    "busy": "bold dark_orange",
    "away": "grey62",
    "offline": "bold white on grey23",
}


class TerminalBoard:
    """Renders the listener's cache; counts the changes it was told about."""

    def __init__(self, listener: FacultyListener) -> None:
        self._listener = listener
        self._lock = threading.Lock()
        self.changes_seen = 0
        self._live = False
        self._last_update: datetime | None = None
        self._unsubscribe = listener.subscribe(self._on_event)

    def close(self) -> None:
        self._unsubscribe()

    def _on_event(self, event: ListenerEvent) -> None:  # the listener's thread
        with self._lock:
            if isinstance(event, FacultyChanged | FacultyRemoved):
                self.changes_seen += 1
                self._last_update = datetime.now(UTC)
            elif isinstance(event, Connected | Resynced):
                self._live = True
                self._last_update = datetime.now(UTC)
            elif isinstance(event, Disconnected | Reconnecting):
                self._live = False

    def render(self) -> RenderableType:
        views = self._listener.cache.all()
        counts = self._listener.cache.counts()
        with self._lock:
            live, last, changes = self._live, self._last_update, self.changes_seen
        header = Text(f"{counts.get('available', 0)} of {len(views)} available", style="bold")
        header.append(f"   ·   {changes} live changes", style="dim")
        parts: list[RenderableType] = [header]
        if not live:
            when = last.astimezone().strftime("%H:%M") if last else "never"
            parts.append(
                Text(
                    f"Live updates paused, reconnecting… last update {when}",
                    style="bold black on yellow",
                )
            )
        table = Table(expand=True, show_edge=False, pad_edge=False)
        for column in ("department", "name", "room", "status", "updated"):
            table.add_column(column)
        now = datetime.now(UTC)
        for view in views:
            shown = view.shown_status
            minutes = int((now - view.updated_at).total_seconds() // 60)
            table.add_row(
                view.department,
                view.name,
                view.room or "",
                Text(shown.capitalize(), style=STYLES.get(shown, "")),
                "just now" if minutes < 1 else f"{minutes} min ago",
            )
        parts.append(table)
        return Panel(Group(*parts), title="ConsultEase: who is in?", border_style="blue")

    def wait_until_live(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._live:
                    return True
            time.sleep(0.05)
        return False
