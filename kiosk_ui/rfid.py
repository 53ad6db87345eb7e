"""``CardReaderWedge``: reads a USB RFID reader that acts as a keyboard.

Such a reader ("keyboard wedge") types the card's UID as digits, faster than
any person, and then Enter. ``WedgeDecoder`` is the pure rule: a run of at
least ``min_digits`` digits, each within ``max_gap`` seconds of the one before,
ended by Enter, is a card. ``CardReaderWedge`` applies it to the key presses
reaching a widget and its children (an application event filter, active only
while that widget is visible): the Enter of a card is swallowed, the digits the
reader typed into whatever field had the focus are taken out again, and
``cardRead(uid)`` is emitted. A person typing a student number on the
on-screen keyboard or a USB keyboard is far slower than ``max_gap`` between
keys, so their digits stay where they typed them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication, QLineEdit, QPlainTextEdit, QWidget

from kiosk_ui.qtcompat import emit

MIN_DIGITS = 6
"""Fewest digits a card UID has (EM4100 readers type 10, MIFARE ones 8 to 10)."""
MAX_GAP = 0.05
"""Most seconds between two keys of a reader (readers type a key every few ms)."""


@dataclass(kw_only=True, slots=True)
class WedgeDecoder:
    """Digits seen so far, fast enough to be a reader's."""

    min_digits: int = MIN_DIGITS
    max_gap: float = MAX_GAP
    digits: list[str] = field(default_factory=list)
    last: float = 0.0

    def key(self, text: str, now: float) -> None:
        """A key other than Enter was pressed at ``now``."""
        if len(text) == 1 and text.isdigit():
            if self.digits and now - self.last > self.max_gap:
                self.digits = []
            self.digits.append(text)
        else:
            self.digits = []
        self.last = now

    def enter(self, now: float) -> str | None:
        """Enter was pressed: the UID if it ends a reader's run, else ``None``."""
        uid = "".join(self.digits)
        fast = bool(self.digits) and now - self.last <= self.max_gap
        self.digits = []
        return uid if fast and len(uid) >= self.min_digits else None


class CardReaderWedge(QObject):
    """Watches the key presses that reach ``scope`` (or its children) for card reads."""

    cardRead = Signal(str)

    def __init__(
        self,
        scope: QWidget,
        *,
        clock: Callable[[], float] = time.monotonic,
        min_digits: int = MIN_DIGITS,
        max_gap: float = MAX_GAP,
    ) -> None:
        super().__init__(scope)
        self._scope = scope
        self._clock = clock
        self._decoder = WedgeDecoder(min_digits=min_digits, max_gap=max_gap)
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)

    def shutdown(self) -> None:
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)

    def _in_scope(self, watched: QObject) -> bool:
        if not self._scope.isVisible() or not isinstance(watched, QWidget):
            return False
        # A key event reaches the focus widget first, then its parents if it was not
        # accepted: look at it once, at the first receiver.
        first = QApplication.focusWidget() or self._scope
        if watched is not first:
            return False
        return watched is self._scope or self._scope.isAncestorOf(watched)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.KeyPress or not isinstance(event, QKeyEvent):
            return False
        if not self._in_scope(watched):
            return False
        now = self._clock()
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            typed = len(self._decoder.digits)
            uid = self._decoder.enter(now)
            if uid is None:
                return False
            _take_back(watched, typed)
            emit(self.cardRead, uid)
            return True
        self._decoder.key(event.text(), now)
        return False


def _take_back(widget: QObject, count: int) -> None:
    """Remove the ``count`` characters the reader just typed before the caret."""
    if isinstance(widget, QLineEdit) and not widget.isReadOnly():
        for _ in range(min(count, widget.cursorPosition())):
            widget.backspace()
    elif isinstance(widget, QPlainTextEdit) and not widget.isReadOnly():
        cursor = widget.textCursor()
        for _ in range(min(count, cursor.position())):
            cursor.deletePreviousChar()
        widget.setTextCursor(cursor)
