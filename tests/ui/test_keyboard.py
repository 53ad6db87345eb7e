"""The on-screen keyboard, offscreen: it appears for an attached field, types real key
events into it (one-line and multi-line fields alike), and goes away with the focus."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from consultease.admin.accounts import AdminAccounts
from kiosk_ui.keyboard import BACKSPACE, ENTER, HIDE, SHIFT, SYMBOLS, OnScreenKeyboard
from tests.ui.support import running_kiosk, seed_board

PASSWORD = "correct horse battery staple"


class Form(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.line = QLineEdit()
        self.notes = QPlainTextEdit()
        self.other = QPushButton("not a text field")
        self.keyboard = OnScreenKeyboard()
        layout = QVBoxLayout(self)
        for widget in (self.line, self.notes, self.other, self.keyboard):
            layout.addWidget(widget)
        self.keyboard.attach(self.line)
        self.keyboard.attach(self.notes)


@pytest.fixture
def form(qtbot: QtBot) -> Iterator[Form]:
    widget = Form()
    qtbot.addWidget(widget)
    widget.resize(800, 480)
    widget.show()
    qtbot.waitExposed(widget)
    widget.activateWindow()
    widget.other.setFocus()  # Qt focuses the first field of a new window; start from rest
    qtbot.waitUntil(widget.keyboard.isHidden, timeout=1000)
    yield widget


def tap(qtbot: QtBot, keyboard: OnScreenKeyboard, label: str) -> None:
    qtbot.mouseClick(keyboard.key(label), Qt.MouseButton.LeftButton)


def test_the_keyboard_appears_for_an_attached_field_and_types_into_it(
    qtbot: QtBot, form: Form
) -> None:
    keyboard = form.keyboard
    assert keyboard.isHidden()
    edited: list[str] = []
    form.line.textEdited.connect(edited.append)
    qtbot.mouseClick(form.line, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(keyboard.isVisible, timeout=1000)
    assert keyboard.target is form.line
    for label in ("c", "u", "r", "i", "e"):
        tap(qtbot, keyboard, label)
    assert form.line.text() == "curie"
    assert edited[-1] == "curie", "typed keys are real edits (textEdited)"
    assert form.line.hasFocus(), "the keys never take the focus"
    tap(qtbot, keyboard, BACKSPACE)
    assert form.line.text() == "curi"


def test_shift_gives_one_capital_twice_is_caps_lock_and_the_other_pages_type_too(
    qtbot: QtBot, form: Form
) -> None:
    keyboard = form.keyboard
    qtbot.mouseClick(form.line, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(keyboard.isVisible, timeout=1000)
    tap(qtbot, keyboard, SHIFT)
    assert keyboard.key("a").text() == "A"
    tap(qtbot, keyboard, "a")
    tap(qtbot, keyboard, "d")
    tap(qtbot, keyboard, SHIFT)
    tap(qtbot, keyboard, SHIFT)  # caps lock
    tap(qtbot, keyboard, "a")
    tap(qtbot, keyboard, "b")
    tap(qtbot, keyboard, SHIFT)  # off
    tap(qtbot, keyboard, SYMBOLS)
    assert keyboard.page == "symbols"
    tap(qtbot, keyboard, "@")
    tap(qtbot, keyboard, "1")
    keyboard.type_text(" José")
    assert form.line.text() == "AdAB@1 José"


def test_enter_is_done_on_a_line_and_a_new_line_in_a_text_box(qtbot: QtBot, form: Form) -> None:
    keyboard = form.keyboard
    returned: list[bool] = []
    form.line.returnPressed.connect(lambda: returned.append(True))
    qtbot.mouseClick(form.line, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(keyboard.isVisible, timeout=1000)
    keyboard.type_text("ok")
    tap(qtbot, keyboard, ENTER)
    assert returned == [True]
    assert keyboard.isHidden() and not form.line.hasFocus()

    qtbot.mouseClick(form.notes.viewport(), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(keyboard.isVisible, timeout=1000)
    assert keyboard.target is form.notes
    keyboard.type_text("two")
    tap(qtbot, keyboard, ENTER)
    keyboard.type_text("lines")
    assert form.notes.toPlainText() == "two\nlines"
    assert keyboard.isVisible()


def test_it_goes_away_with_the_focus_or_the_hide_key(qtbot: QtBot, form: Form) -> None:
    keyboard = form.keyboard
    qtbot.mouseClick(form.line, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(keyboard.isVisible, timeout=1000)
    form.other.setFocus()
    qtbot.waitUntil(keyboard.isHidden, timeout=1000)
    assert keyboard.target is None
    qtbot.mouseClick(form.line, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(keyboard.isVisible, timeout=1000)
    tap(qtbot, keyboard, HIDE)
    assert keyboard.isHidden()
    keyboard.press("x")  # nothing to type into: nothing happens
    assert form.line.text() == ""


def test_every_key_is_a_touch_target(qtbot: QtBot, form: Form) -> None:
    qtbot.mouseClick(form.line, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(form.keyboard.isVisible, timeout=1000)
    keys = [b for b in form.keyboard.findChildren(QPushButton) if b.isVisible()]
    assert len(keys) >= 35
    assert all(b.width() >= 48 and b.height() >= 48 for b in keys)
    assert all(b.focusPolicy() == Qt.FocusPolicy.NoFocus for b in keys)


def test_the_board_search_is_typed_on_screen_and_the_cards_follow(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    seed_board(db, 30)
    with running_kiosk(qtbot, database_url, size=(800, 480)) as window:
        board, keyboard = window.board, window.keyboard
        assert keyboard.isHidden()
        qtbot.mouseClick(board.search_box, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(keyboard.isVisible, timeout=1000)
        for label in ("c", "u", "r", "i", "e"):
            tap(qtbot, keyboard, label)
        assert board.visible_names() == ["Dr. Marie Curie"]
        assert board.grid.isVisible(), "the matching card is still on screen"
        tap(qtbot, keyboard, ENTER)
        assert keyboard.isHidden()
        assert board.visible_names() == ["Dr. Marie Curie"]


def test_an_admin_signs_in_with_the_on_screen_keyboard(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    accounts = AdminAccounts(database_url)
    try:
        accounts.create("dana", PASSWORD, actor="test")
    finally:
        accounts.close()
    seed_board(db, 3)
    with running_kiosk(qtbot, database_url, size=(800, 480)) as window:
        qtbot.mouseClick(window.board.admin_button, Qt.MouseButton.LeftButton)
        dialog = window.login_dialog
        assert dialog is not None
        qtbot.waitUntil(dialog.isVisible, timeout=1000)
        assert dialog.geometry() == window.geometry(), "covers the kiosk, no WM needed"
        qtbot.mouseClick(dialog.username, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(dialog.keyboard.isVisible, timeout=1000)
        dialog.keyboard.type_text("dana")
        tap(qtbot, dialog.keyboard, ENTER)  # next field
        qtbot.waitUntil(lambda: dialog.keyboard.target is dialog.password, timeout=1000)
        dialog.keyboard.type_text(PASSWORD)
        tap(qtbot, dialog.keyboard, ENTER)  # sign in
        qtbot.waitUntil(lambda: window.admin_panel is not None, timeout=10000)
        assert not dialog.isVisible()


def test_return_in_the_username_field_moves_on_and_never_cancels_the_sign_in(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    """With a hardware keyboard too: Qt had made Cancel the dialog's default button."""
    seed_board(db, 1)
    with running_kiosk(qtbot, database_url) as window:
        window.show_login()
        dialog = window.login_dialog
        assert dialog is not None
        qtbot.waitUntil(dialog.isVisible, timeout=1000)
        dialog.activateWindow()
        dialog.username.setFocus()
        qtbot.keyClicks(dialog.username, "dana")
        qtbot.keyClick(dialog.username, Qt.Key.Key_Return)
        assert dialog.isVisible()
        qtbot.waitUntil(dialog.password.hasFocus, timeout=1000)
        dialog.reject()


def test_at_800x480_the_window_still_fits_with_the_keyboard_up_on_board_and_admin(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    seed_board(db, 30)
    with running_kiosk(qtbot, database_url, size=(800, 480)) as window:
        qtbot.mouseClick(window.board.search_box, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(window.keyboard.isVisible, timeout=1000)
        assert window.minimumSizeHint().height() <= 480
        assert (window.width(), window.height()) == (800, 480)
        window.open_admin("alice")
        panel = window.admin_panel
        assert panel is not None
        panel.select(window.model.views()[0].id)
        qtbot.mouseClick(panel.form.edit("room"), Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: window.keyboard.target is panel.form.edit("room"), timeout=1000)
        qtbot.wait(50)
        assert (window.width(), window.height()) == (800, 480)
        room = panel.form.edit("room")
        top = room.mapTo(window, room.rect().topLeft()).y()
        assert (
            top + room.height()
            <= window.keyboard.mapTo(window, window.keyboard.rect().topLeft()).y()
        ), "the field typed into is above the keyboard"
