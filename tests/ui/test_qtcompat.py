"""Python-side emits must not eat references to ``True`` (PySide6 6.12.0 bug)."""

from __future__ import annotations

import sys
import threading

from PySide6.QtCore import QObject, Signal
from pytestqt.qtbot import QtBot

from kiosk_ui.qtcompat import emit


class _Sender(QObject):
    changed = Signal(bool, str)


def test_many_emits_from_two_threads_leave_true_alone(qtbot: QtBot) -> None:
    sender = _Sender()
    received: list[bool] = []
    sender.changed.connect(lambda up, _reason: received.append(up))
    before = sys.getrefcount(True)

    def burst() -> None:
        for _ in range(2000):
            emit(sender.changed, True, "x")

    burst()
    thread = threading.Thread(target=burst)
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: len(received) == 4000, timeout=2000)
    received.clear()
    # A few references may come and go meanwhile; thousands may not be lost.
    assert sys.getrefcount(True) - before > -100
