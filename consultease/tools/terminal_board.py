"""The live board in a terminal (rich), for the headless demo.

It shows what the kiosk shows: faculty by department, each with a status in
words and colour (``offline`` whenever the desk is offline), the count of
available faculty, and a banner while live updates are down. It reads the
listener's cache; listener events only bump counters, so nothing here runs
on the listener's thread but two integer updates under a lock.

Given a ``ConsultationWatcher`` that follows every request, it also lists the
open consultation requests (lecturer, student, waiting or accepted, for how
long) and counts how each one ended; the watcher's events only update a dict
under the same lock.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from consultease.live.consultations import (
    ConsultationChanged,
    ConsultationsDown,
    ConsultationsResynced,
    ConsultationView,
    ConsultationWatcher,
    WatcherEvent,
)
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
REQUEST_STYLES = {
    "pending": ("Waiting", "bold dark_orange"),
    "accepted": ("Accepted", "bold green"),
}


class TerminalBoard:
    """Renders the listener's cache; counts the changes it was told about."""

    def __init__(
        self, listener: FacultyListener, *, requests: ConsultationWatcher | None = None
    ) -> None:
        self._listener = listener
        self._lock = threading.Lock()
        self.changes_seen = 0
        self._live = False
        self._last_update: datetime | None = None
        self._open: dict[int, tuple[ConsultationView, float]] = {}
        """Open requests by id, with when each was read (monotonic)."""
        self.outcomes: dict[str, int] = {}
        """How the requests that closed while the board watched ended, by status."""
        self._requests_live = requests is None
        self._unsubscribe = listener.subscribe(self._on_event)
        self._unsubscribe_requests = (
            requests.subscribe(self._on_request) if requests is not None else (lambda: None)
        )

    def close(self) -> None:
        self._unsubscribe()
        self._unsubscribe_requests()

    def _on_request(self, event: WatcherEvent) -> None:  # the watcher's thread
        now = time.monotonic()
        with self._lock:
            if isinstance(event, ConsultationsResynced):
                self._open = {v.id: (v, now) for v in event.views if v.open}
                self._requests_live = True
            elif isinstance(event, ConsultationChanged):
                view = event.view
                known = self._open.get(view.id)
                if known is not None and known[0].version > view.version:
                    return
                if view.open:
                    self._open[view.id] = (view, now)
                elif self._open.pop(view.id, None) is not None:
                    self.outcomes[view.status] = self.outcomes.get(view.status, 0) + 1
            elif isinstance(event, ConsultationsDown):
                self._requests_live = False

    def open_requests(self) -> list[ConsultationView]:
        with self._lock:
            return sorted((v for v, _ in self._open.values()), key=_by_lecturer)

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
        parts.extend(self._render_requests())
        return Panel(Group(*parts), title="ConsultEase: who is in?", border_style="blue")

    def _render_requests(self) -> list[RenderableType]:
        with self._lock:
            rows = sorted(
                self._open.values(), key=lambda r: (r[0].faculty_name.casefold(), r[0].id)
            )
            outcomes = dict(self.outcomes)
            live = self._requests_live
        if not rows and not outcomes and live:
            return []
        title = Text(f"\nConsultation requests: {len(rows)} open", style="bold")
        if outcomes:
            done = ", ".join(f"{n} {status}" for status, n in sorted(outcomes.items()))
            title.append(f"   ·   since the board started: {done}", style="dim")
        if not live:
            title.append("   (live updates paused)", style="bold black on yellow")
        table = Table(expand=True, show_edge=False, pad_edge=False)
        for column in ("lecturer", "room", "student", "request", "for"):
            table.add_column(column)
        now = time.monotonic()
        for view, read in rows:
            label, style = REQUEST_STYLES.get(view.status, (view.status.capitalize(), ""))
            waited = int(view.waited.total_seconds() + (now - read))
            table.add_row(
                view.faculty_name,
                view.room or "",
                view.student_name,
                Text(label, style=style),
                f"{waited // 60}:{waited % 60:02d}",
            )
        return [title, table]

    def wait_until_live(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._live:
                    return True
            time.sleep(0.05)
        return False


def _by_lecturer(view: ConsultationView) -> tuple[str, int, int]:
    return (view.faculty_name.casefold(), view.faculty_id, view.id)
