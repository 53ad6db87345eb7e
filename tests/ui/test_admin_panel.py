"""The admin panel and sign-in against a real database: optimistic locking,
validation beside the fields, and the signed-in admin as the audit actor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractButton, QLineEdit, QScroller, QWidget
from pytestqt.qtbot import QtBot

from consultease.admin.accounts import AdminAccounts
from consultease.admin.faculty import FacultyAdmin
from consultease.ingest.store import Store
from kiosk_ui import theme
from kiosk_ui.admin_form import ALWAYS_AVAILABLE_LABEL
from kiosk_ui.admin_panel import CONFLICT_MESSAGE, AdminPanel
from kiosk_ui.window import KioskWindow
from tests.support.factories import add_faculty, faculty_row, status_update
from tests.ui.support import running_kiosk

PASSWORD = "correct horse battery staple"


@pytest.fixture
def kiosk(qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]) -> Iterator[KioskWindow]:
    add_faculty(db, name="Dr. Ada Lovelace", email="ada@uni.example", room="CS-101")
    add_faculty(db, name="Dr. Alan Turing", email="alan@uni.example", room="CS-102")
    with running_kiosk(qtbot, database_url) as window:
        yield window


def open_panel(window: KioskWindow, username: str = "alice") -> AdminPanel:
    window.open_admin(username)
    assert window.admin_panel is not None
    return window.admin_panel


def type_into(qtbot: QtBot, edit: QLineEdit, text: str) -> None:
    """Replace a field's text by typing, as a person would."""
    edit.selectAll()
    if text:
        qtbot.keyClicks(edit, text)
    else:
        qtbot.keyClick(edit, Qt.Key.Key_Backspace)
    assert edit.text() == text


def wait_idle(qtbot: QtBot, window: KioskWindow) -> None:
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=5000)


def faculty_id(db: psycopg.Connection[Any], email: str) -> int:
    row = db.execute("SELECT id FROM faculty WHERE email = %s", (email,)).fetchone()
    assert row is not None
    return int(row[0])


def test_an_edit_of_another_field_meanwhile_is_no_conflict_and_both_changes_stand(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any], database_url: str
) -> None:
    ada = faculty_id(db, "ada@uni.example")
    panel = open_panel(kiosk)
    panel.select(ada)
    assert panel.loaded is not None
    start_version = panel.loaded.version
    type_into(qtbot, panel.form.edit("room"), "CS-999")
    with FacultyAdmin(database_url) as other:
        other.edit(ada, actor="bob", expect_version=start_version, name="Dr. Augusta Ada King")
    qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, kiosk)
    assert panel.conflict_box.isHidden()
    row = faculty_row(db, ada)
    assert (row["name"], row["room"], row["version"]) == (
        "Dr. Augusta Ada King",
        "CS-999",
        start_version + 2,
    )
    assert panel.form.values().name == "Dr. Augusta Ada King"


def test_a_desk_changing_status_during_an_edit_never_makes_it_conflict(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any], database_url: str
) -> None:
    ada = faculty_id(db, "ada@uni.example")
    panel = open_panel(kiosk)
    panel.select(ada)
    type_into(qtbot, panel.form.edit("room"), "CS-555")
    with Store(database_url, max_clock_skew=300) as store:
        [outcome] = store.apply_batch([status_update(ada, "available", version=1)])
    assert outcome.applied
    qtbot.waitUntil(lambda: "Available" in (kiosk.board.card_text(ada) or ""), timeout=1000)
    assert panel.form.values().room == "CS-555", "the live update kept the admin's edit"
    qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, kiosk)
    assert panel.conflict is None
    row = faculty_row(db, ada)
    assert (row["room"], row["status"], row["status_source"]) == ("CS-555", "available", "desk")


def test_a_clash_on_an_edited_field_is_explained_and_reapply_merges_never_reverting(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any], database_url: str
) -> None:
    """Issue 16, item 1: name and room edited; meanwhile the CLI changes the department
    and the room. Only the room clashes; Reapply keeps the CLI's department."""
    ada = faculty_id(db, "ada@uni.example")
    panel = open_panel(kiosk)
    panel.select(ada)
    type_into(qtbot, panel.form.edit("name"), "Dr. Augusta Ada King")
    type_into(qtbot, panel.form.edit("room"), "CS-999")
    with FacultyAdmin(database_url) as cli:
        cli.edit(ada, actor="cli:registrar", department="Mathematics", room="M-300")
    qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, kiosk)

    assert panel.conflict is not None and panel.conflict.fields == ("room",)
    text = panel.conflict_label.text()
    assert text.startswith(CONFLICT_MESSAGE)
    assert "room: CS-101 → M-300 (yours: CS-999)" in text
    assert "department: Computer Science → Mathematics" in text
    values = panel.form.values()
    assert (values.name, values.department, values.room) == (
        "Dr. Augusta Ada King",
        "Mathematics",
        "CS-999",
    ), "their department merged in, the admin's edit kept"
    assert faculty_row(db, ada)["name"] == "Dr. Ada Lovelace", "nothing saved yet"

    qtbot.mouseClick(panel.reapply_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, kiosk)
    assert panel.conflict_box.isHidden()
    row = faculty_row(db, ada)
    assert (row["name"], row["department"], row["room"]) == (
        "Dr. Augusta Ada King",
        "Mathematics",
        "CS-999",
    )
    audit = db.execute(
        "SELECT actor, action, before, after FROM audit_log WHERE target = %s ORDER BY id",
        (f"faculty:{ada}",),
    ).fetchall()
    assert [(actor, action) for actor, action, _, _ in audit] == [
        ("cli:registrar", "faculty.edit"),
        ("alice", "faculty.edit.conflict"),
        ("alice", "faculty.edit"),
    ]
    _, _, before, after = audit[-1]
    assert before["department"] == after["department"] == "Mathematics"
    assert audit[1][3]["conflicting_fields"] == ["room"]


def test_use_their_version_discards_the_edit(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    alan = faculty_id(db, "alan@uni.example")
    panel = open_panel(kiosk)
    panel.select(alan)
    type_into(qtbot, panel.form.edit("room"), "X-1")
    db.execute("UPDATE faculty SET room = 'CS-300' WHERE id = %s", (alan,))
    panel.save()
    wait_idle(qtbot, kiosk)
    assert panel.conflict is not None
    panel.use_theirs()
    assert panel.form.values().room == "CS-300"
    assert faculty_row(db, alan)["room"] == "CS-300"


def test_validation_messages_appear_beside_the_right_fields(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    ada = faculty_id(db, "ada@uni.example")
    panel = open_panel(kiosk)
    panel.select(ada)
    type_into(qtbot, panel.form.edit("name"), "")
    type_into(qtbot, panel.form.edit("email"), "not-an-email")
    qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)

    assert panel.form.error("name") == "Name must not be empty."
    assert panel.form.error("email").startswith("Not a valid email address")
    assert panel.form.error("department") == ""
    assert panel.form.error("room") == ""
    assert panel.form.error_label("email").isVisible()
    assert faculty_row(db, ada)["name"] == "Dr. Ada Lovelace"

    # The duplicate email is found by the database; its message goes beside the email too.
    type_into(qtbot, panel.form.edit("name"), "Dr. Ada Lovelace")
    type_into(qtbot, panel.form.edit("email"), "ALAN@uni.example")
    qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, kiosk)
    assert panel.form.error("email") == "That email is already used by another faculty."
    assert panel.form.error("name") == ""
    assert faculty_row(db, ada)["email"] == "ada@uni.example"


def test_adding_a_faculty_puts_them_on_the_board_with_the_admin_as_actor(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    panel = open_panel(kiosk, "carol")
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    assert panel.loaded is None
    type_into(qtbot, panel.form.edit("name"), "Dr. Barbara Liskov")
    type_into(qtbot, panel.form.edit("department"), "Computer Science")
    type_into(qtbot, panel.form.edit("email"), "liskov@uni.example")
    type_into(qtbot, panel.form.edit("room"), "CS-201")
    qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, kiosk)

    assert panel.loaded is not None and panel.loaded.name == "Dr. Barbara Liskov"
    assert panel.message.text() == (
        "Added Dr. Barbara Liskov; they appear on the board as Offline until their desk "
        "unit connects."
    )
    qtbot.waitUntil(lambda: "Dr. Barbara Liskov" in kiosk.board.visible_names(), timeout=1000)
    assert (kiosk.board.card_text(panel.loaded.id) or "").endswith(": Offline")
    audit = db.execute(
        "SELECT actor FROM audit_log WHERE action = 'faculty.add' AND target = %s",
        (f"faculty:{panel.loaded.id}",),
    ).fetchone()
    assert audit == ("carol",)


def test_status_by_hand_reset_desk_and_deactivate(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    alan = faculty_id(db, "alan@uni.example")
    db.execute(
        "UPDATE faculty SET desk_online = true, desk_version = 7, desk_ts = now() WHERE id = %s",
        (alan,),
    )
    qtbot.waitUntil(lambda: "Away" in (kiosk.board.card_text(alan) or ""), timeout=1000)
    panel = open_panel(kiosk)
    panel.select(alan)

    qtbot.mouseClick(
        panel.status_buttons[next(iter(panel.status_buttons))], Qt.MouseButton.LeftButton
    )
    wait_idle(qtbot, kiosk)
    row = faculty_row(db, alan)
    assert (row["status"], row["status_source"]) == ("available", "admin")
    qtbot.waitUntil(lambda: "Available" in (kiosk.board.card_text(alan) or ""), timeout=1000)

    qtbot.mouseClick(panel.reset_desk_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, kiosk)
    row = faculty_row(db, alan)
    assert (row["desk_version"], row["desk_ts"]) == (None, None)

    qtbot.mouseClick(panel.deactivate_button, Qt.MouseButton.LeftButton)
    assert panel.deactivate_button.text() == "Tap again to confirm"
    assert faculty_row(db, alan)["active"] is True
    qtbot.mouseClick(panel.deactivate_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, kiosk)
    assert faculty_row(db, alan)["active"] is False
    qtbot.waitUntil(lambda: kiosk.board.card_text(alan) is None, timeout=1000)
    assert panel.undo_button.isVisible()

    qtbot.mouseClick(panel.undo_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, kiosk)
    assert faculty_row(db, alan)["active"] is True
    qtbot.waitUntil(lambda: kiosk.board.card_text(alan) is not None, timeout=1000)


def test_an_untouched_form_follows_live_changes(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    ada = faculty_id(db, "ada@uni.example")
    panel = open_panel(kiosk)
    panel.select(ada)
    db.execute("UPDATE faculty SET room = 'CS-777' WHERE id = %s", (ada,))
    qtbot.waitUntil(lambda: panel.form.values().room == "CS-777", timeout=1000)
    assert panel.loaded is not None and panel.loaded.version == 2


def test_sign_in_shows_the_authentication_error_then_opens_the_panel(
    qtbot: QtBot, kiosk: KioskWindow, database_url: str, db: psycopg.Connection[Any]
) -> None:
    accounts = AdminAccounts(database_url)
    try:
        accounts.create("dana", PASSWORD, actor="test")
    finally:
        accounts.close()

    qtbot.mouseClick(kiosk.board.admin_button, Qt.MouseButton.LeftButton)
    dialog = kiosk.login_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.keyClicks(dialog.username, "dana")
    qtbot.keyClicks(dialog.password, "wrong password entirely")
    qtbot.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.error_label.isVisible, timeout=5000)
    assert dialog.error_label.text() == "Wrong username or password."
    assert kiosk.admin_panel is None

    qtbot.keyClicks(dialog.password, PASSWORD)
    qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: kiosk.admin_panel is not None, timeout=5000)
    assert not dialog.isVisible()
    panel = kiosk.admin_panel
    assert panel is not None and kiosk.pages.currentWidget() is panel

    panel.select(faculty_id(db, "ada@uni.example"))
    panel.set_status(next(iter(panel.status_buttons)))
    wait_idle(qtbot, kiosk)
    actor = db.execute("SELECT actor FROM audit_log WHERE action = 'faculty.set_status'").fetchone()
    assert actor == ("dana",)

    qtbot.mouseClick(panel.back_button, Qt.MouseButton.LeftButton)
    assert kiosk.admin_panel is None
    assert kiosk.pages.currentWidget() is kiosk.board


def test_admin_panel_touch_targets_are_at_least_48_px(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    panel = open_panel(kiosk)
    panel.select(faculty_id(db, "ada@uni.example"))
    qtbot.wait(20)
    targets = [
        w
        for w in panel.findChildren(QWidget)
        if isinstance(w, QAbstractButton | QLineEdit) and w.isVisible()
    ]
    assert len(targets) >= 10
    for widget in targets:
        assert widget.height() >= theme.TOUCH, (
            widget.objectName() or widget.metaObject().className()
        )
        assert widget.width() >= theme.TOUCH, widget.objectName()
    row_height = panel.list_view.sizeHintForRow(0)
    assert row_height >= theme.TOUCH


def test_an_idle_kiosk_warns_then_signs_the_admin_out_and_keeps_the_draft(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    add_faculty(db, name="Dr. Ada Lovelace", email="ada@uni.example", room="CS-101")
    with running_kiosk(qtbot, database_url, idle_timeout=0.4, signout_warning=1.0) as window:
        panel = open_panel(window)
        panel.select(faculty_id(db, "ada@uni.example"))
        type_into(qtbot, panel.form.edit("room"), "CS-4")
        qtbot.waitUntil(panel.warning_box.isVisible, timeout=3000)
        assert panel.warning_label.text().startswith("Idle: signing out in ")
        assert "Your unsaved edit will be kept." in panel.warning_label.text()
        # A touch (here a key press) cancels the countdown.
        qtbot.keyClick(panel.form.edit("room"), Qt.Key.Key_End)
        assert not panel.warning_active and panel.warning_box.isHidden()
        # Untouched again: warned again, then signed out.
        qtbot.waitUntil(lambda: window.admin_panel is None, timeout=6000)
        assert window.pages.currentWidget() is window.board
        assert faculty_row(db, faculty_id(db, "ada@uni.example"))["room"] == "CS-101"
        draft = window.draft_of("alice")
        assert draft is not None and draft.values.room == "CS-4"

        again = open_panel(window, "ALICE")
        assert again.form.values().room == "CS-4", "the draft is back"
        assert again.is_dirty() and again.dirty_fields() == ["room"]
        assert again.message.text().startswith("Your unsaved edit from ")
        assert window.draft_of("alice") is None
        window.close_admin()
        assert open_panel(window, "bob").form.values().room == "", "not someone else's draft"

        window.close_admin()
        window.show_login()
        dialog = window.login_dialog
        assert dialog is not None
        qtbot.keyClicks(dialog.password, "half-typed")
        qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=3000)
        assert dialog.password.text() == ""


def test_a_disabled_button_is_drawn_as_disabled_not_red(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    panel = open_panel(kiosk)
    panel.start_new()
    button = panel.deactivate_button
    assert not button.isEnabled()

    def red_pixels() -> int:
        image = button.grab().toImage()
        red = QColor(theme.ERROR)
        return sum(
            1
            for x in range(0, image.width(), 2)
            for y in range(0, image.height(), 2)
            if abs(image.pixelColor(x, y).red() - red.red()) < 30
            and abs(image.pixelColor(x, y).green() - red.green()) < 30
            and abs(image.pixelColor(x, y).blue() - red.blue()) < 30
        )

    assert red_pixels() == 0
    panel.select(faculty_id(db, "ada@uni.example"))
    assert button.isEnabled()
    assert red_pixels() > 10


def test_the_faculty_list_flicks_and_has_a_finger_wide_scrollbar(
    qtbot: QtBot, kiosk: KioskWindow
) -> None:
    panel = open_panel(kiosk)
    qtbot.wait(20)
    assert QScroller.hasScroller(panel.list_view.viewport())
    assert panel.list_view.verticalScrollBar().width() >= theme.TOUCH


def test_always_available_is_set_from_the_panel_audited_and_shown_on_the_board(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    alan = faculty_id(db, "alan@uni.example")
    panel = open_panel(kiosk)
    panel.select(alan)
    toggle = panel.form.always_available
    assert toggle.text() == ALWAYS_AVAILABLE_LABEL and not toggle.isChecked()
    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    assert panel.dirty_fields() == ["always_available"]
    qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, kiosk)
    assert faculty_row(db, alan)["always_available"] is True
    qtbot.waitUntil(
        lambda: (kiosk.board.card_text(alan) or "").endswith(": Available"), timeout=1000
    )
    assert panel.detail.text().startswith("Shown as Available (always available: no desk)")
    audit = db.execute(
        "SELECT actor, before->>'always_available', after->>'always_available' FROM audit_log "
        "WHERE target = %s AND action = 'faculty.edit'",
        (f"faculty:{alan}",),
    ).fetchall()
    assert audit == [("alice", "false", "true")]
