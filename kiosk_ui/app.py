"""``run_kiosk``: the ``consultease kiosk`` entry point.

Creates the QApplication (or uses the one that exists), shows the window,
and runs the event loop until the window closes or the process gets Ctrl-C
or SIGTERM. Python only runs signal handlers between bytecodes, and the Qt
event loop is C++, so a short QTimer keeps waking the interpreter; the
handler then asks Qt to quit, and the window's shutdown closes the listener.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QApplication

from consultease.config import Settings
from consultease.live.feed import make_feed
from kiosk_ui.board import BoardOptions
from kiosk_ui.window import LISTENER_NAME, KioskWindow

log = logging.getLogger(__name__)

WAKE_MS = 200
"""How often the event loop lets Python look for a pending signal."""


def application() -> QApplication:
    """The running QApplication, created if there is none yet."""
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    app = QApplication(sys.argv[:1])
    app.setApplicationName("ConsultEase kiosk")
    return app


@contextmanager
def quit_on_signals(app: QCoreApplication) -> Iterator[None]:
    """While inside: SIGINT and SIGTERM quit the event loop cleanly."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, closing the kiosk", signal.Signals(signum).name)
        app.quit()

    waker = QTimer()
    waker.timeout.connect(lambda: None)
    waker.start(WAKE_MS)
    previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        waker.stop()
        for number, old in previous.items():
            signal.signal(number, old if old is not None else signal.SIG_DFL)


def run_kiosk(
    settings: Settings,
    *,
    admin: bool = False,
    fullscreen: bool = False,
    options: BoardOptions | None = None,
    ca_file: str | None = None,
    consultation_requests: bool = True,
) -> int:
    """Show the board until the window closes or a signal arrives; the exit code.

    Live updates come from ``settings.live_updates`` (``consultease.live.feed``).
    """
    database_url = settings.require_database_url()
    feed = make_feed(settings, application_name=LISTENER_NAME, ca_file=ca_file)
    app = application()
    window = KioskWindow(
        database_url, options=options, feed=feed, consultation_requests=consultation_requests
    )
    # The window says when it closed, rather than Qt quitting on "last window
    # closed": that would post a second quit which, landing after exec()
    # returned, makes every later event loop in the process return at once
    # (seen with Qt 6.12 when the kiosk runs inside a test session).
    quit_on_last = app.quitOnLastWindowClosed()
    app.setQuitOnLastWindowClosed(False)
    window.closed.connect(app.quit)
    window.start()
    window.show_kiosk(fullscreen=fullscreen)
    if admin:
        window.show_login()
    try:
        with quit_on_signals(app):
            code = app.exec()
    finally:
        window.shutdown()
        window.closed.disconnect(app.quit)
        app.setQuitOnLastWindowClosed(quit_on_last)
    return int(code)
