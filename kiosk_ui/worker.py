"""``Worker``: runs blocking calls (database, password hashing) off the GUI thread.

The admin panel and the login dialog never call the database on the GUI
thread, so the board keeps updating while a save is in flight. A call is a
plain function; its result or exception comes back by a queued signal, and
the callbacks run on the GUI thread.

One thread, calls in order: an admin's actions apply in the order they were
made, and a second click cannot overtake the first. Callers disable their
buttons while ``busy`` anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from kiosk_ui.qtcompat import emit

log = logging.getLogger(__name__)


class _Relay(QObject):
    """Carries one call's outcome back. It lives on the GUI thread and is emitted
    from the pool thread, so its slots (methods of a GUI-thread object) are queued."""

    succeeded = Signal(object)
    failed = Signal(object)

    def __init__(
        self,
        parent: QObject,
        on_done: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        finished: Callable[[_Relay], None],
    ) -> None:
        super().__init__(parent)
        self._on_done = on_done
        self._on_error = on_error
        self._finished = finished
        self.succeeded.connect(self._deliver_result)
        self.failed.connect(self._deliver_error)

    @Slot(object)
    def _deliver_result(self, result: Any) -> None:
        self._finished(self)
        self._on_done(result)

    @Slot(object)
    def _deliver_error(self, exc: Exception) -> None:
        self._finished(self)
        self._on_error(exc)


class _Call(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self._fn = fn
        self._relay = relay

    def run(self) -> None:
        try:
            result = self._fn()
        except Exception as exc:  # delivered to the caller's on_error
            emit(self._relay.failed, exc)
        else:
            emit(self._relay.succeeded, result)


class Worker(QObject):
    """A one-thread pool whose results come back as GUI-thread callbacks."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._pool.setExpiryTimeout(30_000)
        self._in_flight: set[_Relay] = set()

    @property
    def busy(self) -> bool:
        return bool(self._in_flight)

    def submit(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[Exception], None],
    ) -> None:
        """Run ``fn()`` on the worker thread; then ``on_done(result)`` or ``on_error(exc)``."""
        relay = _Relay(self, on_done, on_error, self._finished)
        self._in_flight.add(relay)
        self._pool.start(_Call(fn, relay))

    def _finished(self, relay: _Relay) -> None:
        self._in_flight.discard(relay)
        relay.deleteLater()

    def wait(self, timeout_ms: int = 5000) -> bool:
        """Block until running calls end (shutdown and tests). Callbacks still arrive queued."""
        return self._pool.waitForDone(timeout_ms)
