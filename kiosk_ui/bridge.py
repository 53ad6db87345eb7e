"""``ListenerBridge``: carries ``FacultyListener`` events onto the GUI thread.

The listener calls subscribers on its own thread. The bridge's subscriber
does one thing there: it emits a Qt signal. The bridge lives on the GUI
thread, so every connection to a GUI object is queued (Qt's AutoConnection
sees the emitting thread differs) and the slots run on the GUI thread, in
the order the events happened. No Qt object is touched from the listener
thread, and no listener state is read from the GUI thread except through
the events.

Lifetime: ``detach()`` (or closing the listener) before the bridge goes away,
so the listener never calls into a deleted object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from consultease.live.feed import LiveFeed
from consultease.live.listener import (
    Connected,
    Disconnected,
    FacultyChanged,
    FacultyRemoved,
    ListenerEvent,
    Reconnecting,
    Resynced,
)
from kiosk_ui.qtcompat import emit

log = logging.getLogger(__name__)


class ListenerBridge(QObject):
    """Qt signals for the listener's events."""

    facultyChanged = Signal(object)
    """A ``FacultyView`` that was added or changed."""
    facultyRemoved = Signal("qlonglong")  # type: ignore[arg-type]  # a C++ type name
    """The id of a faculty that left the board (ids are bigint, so 64-bit)."""
    resynced = Signal(object)
    """A tuple of every active ``FacultyView``, in board order: the whole picture."""
    connectionChanged = Signal(bool, str)
    """``(True, "")`` when live updates are on, ``(False, reason)`` when they are down."""
    reconnecting = Signal(int, float)
    """Attempt number and the seconds the listener waits before it."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._unsubscribe: Callable[[], None] | None = None

    def attach(self, listener: LiveFeed) -> None:
        """Subscribe to ``listener`` (before ``listener.start()``, to see the first resync)."""
        self.detach()
        self._unsubscribe = listener.subscribe(self.deliver)

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def deliver(self, event: ListenerEvent) -> None:
        """The listener's callback: runs on the listener thread and only emits."""
        match event:
            case FacultyChanged(view=view):
                emit(self.facultyChanged, view)
            case FacultyRemoved(faculty_id=faculty_id):
                emit(self.facultyRemoved, faculty_id)
            case Resynced(views=views):
                emit(self.resynced, views)
            case Connected():
                emit(self.connectionChanged, True, "")
            case Disconnected(reason=reason):
                emit(self.connectionChanged, False, reason)
            case Reconnecting(attempt=attempt, delay=delay):
                emit(self.reconnecting, attempt, delay)
            case _:  # pragma: no cover - a new event kind
                log.debug("ignoring listener event %r", event)
