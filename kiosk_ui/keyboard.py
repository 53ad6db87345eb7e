"""``OnScreenKeyboard``: a touch keyboard for any text field of the kiosk.

Why a widget of our own: Qt Virtual Keyboard (``QT_IM_MODULE=qtvirtualkeyboard``)
is not usable with PySide6-Essentials. Its input-context plugin ships there, but
fails to load because ``libQt6VirtualKeyboardQml.so.6`` is only in PySide6-Addons
(and it is GPLv3-only, unlike the rest of Qt we use).

One keyboard per window: the host puts it at the bottom of its layout (hidden),
and ``attach(field)`` ties a ``QLineEdit`` or ``QPlainTextEdit`` to it. When an
attached field gets the focus, the keyboard appears and types into it; when the
focus goes to anything that is not attached to it, the keyboard goes away. The
keys never take the focus, so the caret stays in the field. A key press is sent
to the field as a real ``QKeyEvent`` (press and release), so the field behaves
exactly as with a hardware keyboard: ``textEdited``, ``returnPressed``,
validators, read-only state and undo all apply, and a USB keyboard (or an RFID
reader typing a card number) keeps working beside it.

Pages: letters (Shift once for one capital, twice for caps lock), digits and
symbols, and accented letters. Enter sends Return; on a one-line field whose
Return does not move the focus on, it also closes the keyboard ("Done").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from kiosk_ui import theme
from kiosk_ui.qtcompat import emit

log = logging.getLogger(__name__)

TextField = QLineEdit | QPlainTextEdit

BACKSPACE = "⌫"
SHIFT = "⇧"
ENTER = "Enter"
SPACE = "space"
HIDE = "Hide"
SYMBOLS = "?123"
LETTERS = "ABC"
ACCENTS = "áé"

_SPECIAL_STRETCH = {
    BACKSPACE: 2,
    SHIFT: 2,
    ENTER: 2,
    SPACE: 8,
    HIDE: 2,
    SYMBOLS: 2,
    LETTERS: 2,
    ACCENTS: 2,
}

PAGES: dict[str, tuple[tuple[str, ...], ...]] = {
    "letters": (
        ("q", "w", "e", "r", "t", "y", "u", "i", "o", "p", BACKSPACE),
        ("a", "s", "d", "f", "g", "h", "j", "k", "l", "'", ENTER),
        (SHIFT, "z", "x", "c", "v", "b", "n", "m", ",", ".", "-"),
        (SYMBOLS, ACCENTS, "@", SPACE, "_", HIDE),
    ),
    "symbols": (
        ("1", "2", "3", "4", "5", "6", "7", "8", "9", "0", BACKSPACE),
        ("@", "#", "&", "_", "-", "+", "(", ")", "/", ":", ENTER),
        ("!", "?", '"', "'", ",", ".", ";", "*", "%", "="),
        (LETTERS, ACCENTS, SPACE, ".", HIDE),
    ),
    "accents": (
        ("á", "é", "í", "ó", "ú", "ñ", "ü", "ö", "ä", "ç", BACKSPACE),
        ("à", "è", "ì", "ò", "ù", "â", "ê", "î", "ô", "û", ENTER),
        (SHIFT, "ã", "õ", "ë", "ï", "ß", "ø", "å", "æ", "ł"),
        (LETTERS, SYMBOLS, SPACE, HIDE),
    ),
}


_PAGE_KEYS = {SYMBOLS: "symbols", LETTERS: "letters", ACCENTS: "accents"}


def _key_code(char: str) -> Qt.Key:
    """The Qt key for a character (Qt's codes for ASCII are the upper-case ASCII codes)."""
    code = ord(char.upper()) if len(char) == 1 else 0
    return Qt.Key(code) if 0x20 <= code <= 0x7E else Qt.Key.Key_unknown


class OnScreenKeyboard(QFrame):
    """Keys that type into the attached field that has the focus."""

    visibilityChanged = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("keyboard")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self._fields: dict[QWidget, bool] = {}  # field -> Enter closes the keyboard
        self._target: TextField | None = None
        self._shift = False
        self._caps = False
        self._page = "letters"
        self._keys: dict[str, dict[str, QPushButton]] = {}
        self._stack = QStackedWidget()
        self._stack.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for name, rows in PAGES.items():
            self._stack.addWidget(self._build_page(name, rows))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self._stack)
        self.setStyleSheet(keyboard_stylesheet())
        self.hide()
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.focusChanged.connect(self._focus_changed)

    def _build_page(self, name: str, rows: Sequence[Sequence[str]]) -> QWidget:
        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(4)
        keys: dict[str, QPushButton] = {}
        for row in rows:
            line = QHBoxLayout()
            line.setSpacing(6)
            for label in row:
                button = QPushButton(label)
                button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
                button.setAutoDefault(False)  # inside a dialog, never the default button
                button.setMinimumSize(theme.TOUCH, theme.TOUCH)
                button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
                button.setProperty("special", label in _SPECIAL_STRETCH)
                if label == BACKSPACE:
                    button.setAutoRepeat(True)
                    button.setAccessibleName("Backspace")
                button.clicked.connect(lambda _=False, key=label: self.press(key))
                line.addWidget(button, _SPECIAL_STRETCH.get(label, 1))
                keys[label] = button
            column.addLayout(line)
        self._keys[name] = keys
        return page

    # -- fields -----------------------------------------------------------------------

    def attach(self, field: TextField, *, enter_closes: bool | None = None) -> None:
        """Type into ``field`` whenever it has the focus. ``enter_closes`` defaults to
        True for one-line fields (Enter is "Done") and False for multi-line ones."""
        closes = isinstance(field, QLineEdit) if enter_closes is None else enter_closes
        self._fields[field] = closes
        # A bound method: Qt drops the connection when the keyboard goes first.
        field.destroyed.connect(self._field_destroyed)
        if field.hasFocus():
            self._show_for(field)

    def detach(self, field: TextField) -> None:
        self._forget(field)

    def _field_destroyed(self, _obj: QObject | None = None) -> None:
        for field in [f for f in self._fields if not shiboken6.isValid(f)]:
            self._forget(field)

    def _forget(self, field: QObject) -> None:
        self._fields.pop(field, None)  # type: ignore[call-overload]
        if self._target is field:
            self._target = None
            self._set_visible(False)

    @property
    def target(self) -> TextField | None:
        """The field the keys type into, or ``None`` while the keyboard is hidden."""
        return self._target

    def attached(self) -> list[QWidget]:
        return list(self._fields)

    def _focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        if new is not None and new in self._fields:
            if isinstance(new, QLineEdit | QPlainTextEdit):
                self._show_for(new)
        elif self._target is not None:
            self._target = None
            self._set_visible(False)

    def _show_for(self, field: TextField) -> None:
        self._target = field
        self._set_page("letters")
        self._set_visible(True)
        # A field low in a scrolling form must not end up under the keyboard.
        QTimer.singleShot(0, self._reveal_target)

    def _reveal_target(self) -> None:
        field = self._target
        if field is None or not shiboken6.isValid(field):
            return
        parent = field.parentWidget()
        while parent is not None and not isinstance(parent, QScrollArea):
            parent = parent.parentWidget()
        if isinstance(parent, QScrollArea):
            parent.ensureWidgetVisible(field, 0, 24)

    def _set_visible(self, visible: bool) -> None:
        if visible == self.isVisible():
            return
        self.setVisible(visible)
        emit(self.visibilityChanged, visible)

    # -- keys ---------------------------------------------------------------------------

    def key(self, label: str, page: str | None = None) -> QPushButton:
        """The button of ``label`` on ``page`` (default: the page shown)."""
        return self._keys[page or self._page][label]

    @property
    def page(self) -> str:
        return self._page

    @property
    def shifted(self) -> bool:
        return self._shift or self._caps

    def press(self, label: str) -> None:
        """What tapping the key ``label`` does."""
        target = self._target
        if label in _PAGE_KEYS:
            self._set_page(_PAGE_KEYS[label])
        elif label == HIDE:
            self.close_for_now()
        elif label == SHIFT:
            self._toggle_shift()
        elif target is None:
            return
        elif label == BACKSPACE:
            self._send(target, Qt.Key.Key_Backspace, "")
        elif label == ENTER:
            self._send(target, Qt.Key.Key_Return, "\r")
            still_here = QApplication.focusWidget() is target
            if still_here and self._fields.get(target, False):
                target.clearFocus()
        elif label == SPACE:
            self._send(target, Qt.Key.Key_Space, " ")
        else:
            text = label.upper() if self.shifted else label
            self._send(target, _key_code(label), text)
            if self._shift and not self._caps:
                self._shift = False
                self._relabel()

    def _toggle_shift(self) -> None:
        """Once: one capital; twice: caps lock; three times: off."""
        if self._caps:
            self._shift = self._caps = False
        elif self._shift:
            self._shift, self._caps = False, True
        else:
            self._shift = True
        self._relabel()

    def type_text(self, text: str) -> None:
        """Tap the keys for ``text`` (tests and scripted demos)."""
        for char in text:
            if char == " ":
                self.press(SPACE)
            elif char == "\n":
                self.press(ENTER)
            else:
                page = next(
                    (p for p, rows in PAGES.items() if any(char.lower() in r for r in rows)),
                    None,
                )
                if page is None:
                    raise ValueError(f"no key for {char!r}")
                self._set_page(page)
                if char != char.lower() and not self.shifted:
                    self.press(SHIFT)
                self.key(char.lower()).click()

    def close_for_now(self) -> None:
        """Hide the keyboard; it comes back when a field is tapped again."""
        target = self._target
        if target is not None:
            target.clearFocus()
        self._target = None
        self._set_visible(False)

    def _send(self, target: QWidget, key: Qt.Key, text: str) -> None:
        modifiers = (
            Qt.KeyboardModifier.ShiftModifier
            if text and text != text.lower()
            else Qt.KeyboardModifier.NoModifier
        )
        for kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            QCoreApplication.sendEvent(target, QKeyEvent(kind, key, modifiers, text))

    def _set_page(self, page: str) -> None:
        self._page = page
        self._stack.setCurrentIndex(list(PAGES).index(page))
        self._relabel()

    def _relabel(self) -> None:
        for page, keys in self._keys.items():
            for label, button in keys.items():
                if label in _SPECIAL_STRETCH:
                    if label == SHIFT:
                        button.setProperty("active", self.shifted)
                        button.style().unpolish(button)
                        button.style().polish(button)
                    continue
                if page != "symbols":
                    button.setText(label.upper() if self.shifted else label)


def keyboard_stylesheet() -> str:
    return f"""
    #keyboard {{ background: {theme.KEYBOARD_BG}; border-top: 1px solid {theme.CARD_BORDER}; }}
    #keyboard QPushButton {{ font-size: 20px; color: {theme.INK}; background: {theme.KEY};
        border: 1px solid {theme.CARD_BORDER}; border-radius: 6px; padding: 0; }}
    #keyboard QPushButton[special="true"] {{ background: {theme.KEY_SPECIAL}; font-size: 17px; }}
    #keyboard QPushButton[active="true"] {{ background: {theme.ACCENT};
                                            color: {theme.ACCENT_TEXT}; }}
    #keyboard QPushButton:pressed {{ background: {theme.SELECTED}; }}
    """
