"""Threads hop to the GUI thread through signals; the app stops cleanly on a signal."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import psycopg
import pytest
from PySide6.QtCore import QEventLoop, QThread, QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from consultease.cli import main as cli_main
from consultease.config import Settings
from consultease.errors import ConfigError
from consultease.live.listener import (
    Connected,
    Disconnected,
    FacultyChanged,
    FacultyRemoved,
    Resynced,
)
from kiosk_ui.app import run_kiosk
from kiosk_ui.bridge import ListenerBridge
from kiosk_ui.window import KioskWindow
from kiosk_ui.worker import Worker
from tests.ui.support import listener_threads, seed_board, view


def test_listener_events_reach_slots_on_the_gui_thread_in_order(qtbot: QtBot) -> None:
    bridge = ListenerBridge()
    gui_thread = QThread.currentThread()
    seen: list[tuple[str, Any, bool]] = []

    def recorder(kind: str) -> Any:
        def slot(*args: Any) -> None:
            seen.append((kind, args, QThread.currentThread() is gui_thread))

        return slot

    bridge.connectionChanged.connect(recorder("connection"))
    bridge.resynced.connect(recorder("resynced"))
    bridge.facultyChanged.connect(recorder("changed"))
    bridge.facultyRemoved.connect(recorder("removed"))
    grace = view(1, "Dr. Grace Hopper")
    events = [
        Connected(),
        Resynced(views=(grace,)),
        FacultyChanged(view=grace),
        FacultyRemoved(faculty_id=2**40),  # ids are bigint
        Disconnected(reason="server closed the connection"),
    ]
    worker = threading.Thread(target=lambda: [bridge.deliver(e) for e in events])
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: len(seen) == len(events), timeout=1000)
    assert [kind for kind, _, _ in seen] == [
        "connection",
        "resynced",
        "changed",
        "removed",
        "connection",
    ]
    assert all(on_gui for _, _, on_gui in seen)
    assert seen[0][1] == (True, "")
    assert seen[1][1] == ((grace,),)
    assert seen[3][1] == (2**40,)
    assert seen[4][1] == (False, "server closed the connection")


def test_worker_results_and_errors_come_back_on_the_gui_thread(qtbot: QtBot) -> None:
    worker = Worker()
    gui_thread = QThread.currentThread()
    results: list[tuple[str, Any, bool]] = []
    worker_threads: list[QThread] = []

    def work() -> int:
        worker_threads.append(QThread.currentThread())
        return 42

    def fail() -> int:
        raise ConfigError("nope")

    worker.submit(
        work, lambda r: results.append(("ok", r, QThread.currentThread() is gui_thread)), print
    )
    worker.submit(
        fail, print, lambda e: results.append(("err", e, QThread.currentThread() is gui_thread))
    )
    qtbot.waitUntil(lambda: len(results) == 2, timeout=2000)
    assert results[0] == ("ok", 42, True)
    assert results[1][0] == "err" and isinstance(results[1][1], ConfigError) and results[1][2]
    assert worker_threads[0] is not gui_thread
    assert not worker.busy
    assert worker.wait(1000)


def test_run_kiosk_needs_a_database_url() -> None:
    with pytest.raises(ConfigError):
        run_kiosk(Settings(database_url=None))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_kiosk_stops_cleanly_on_a_signal(
    qapp: QApplication, database_url: str, db: psycopg.Connection[Any], signum: int
) -> None:
    seed_board(db, 3)
    before = signal.getsignal(signum)
    live: list[bool] = []

    def send_signal() -> None:
        live.append(bool(listener_threads()))
        os.kill(os.getpid(), signum)

    QTimer.singleShot(1500, send_signal)
    code = run_kiosk(Settings(database_url=database_url))
    assert code == 0
    assert live == [True]
    assert listener_threads() == []
    assert signal.getsignal(signum) is before


def test_event_loops_still_work_after_the_kiosk_ran(qtbot: QtBot) -> None:
    """run_kiosk must not leave a pending quit behind (see the note in run_kiosk)."""
    loop = QEventLoop()
    QTimer.singleShot(100, loop.quit)
    assert loop.exec() == 0


def test_closing_the_window_ends_run_kiosk(
    qapp: QApplication, database_url: str, db: psycopg.Connection[Any]
) -> None:
    seed_board(db, 2)

    def close_kiosk() -> None:
        for widget in qapp.topLevelWidgets():
            if isinstance(widget, KioskWindow) and widget.isVisible():
                widget.close()

    QTimer.singleShot(1000, close_kiosk)
    assert run_kiosk(Settings(database_url=database_url)) == 0
    assert listener_threads() == []


def test_consultease_kiosk_admin_fullscreen_opens_the_sign_in_over_a_full_screen(
    qapp: QApplication, database_url: str, db: psycopg.Connection[Any]
) -> None:
    seed_board(db, 2)
    seen: dict[str, bool] = {}

    def look_then_close() -> None:
        for widget in qapp.topLevelWidgets():
            if isinstance(widget, KioskWindow) and widget.isVisible():
                seen["fullscreen"] = widget.isFullScreen()
                dialog = widget.login_dialog
                seen["sign_in_shown"] = dialog is not None and dialog.isVisible()
                widget.close()

    QTimer.singleShot(1000, look_then_close)
    code = cli_main(["--database-url", database_url, "kiosk", "--admin", "--fullscreen"])
    assert code == 0
    assert seen == {"fullscreen": True, "sign_in_shown": True}
    assert listener_threads() == []
