"""A student asks for a consultation at the kiosk: the card button, the form, the RFID
reader, and the live status view, against the real database and its triggers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from kiosk_ui import theme
from kiosk_ui.consultation_flow import ConsultationFlow
from kiosk_ui.consultation_form import MESSAGE_MAX
from kiosk_ui.model import FacultyRole
from kiosk_ui.window import WATCHER_NAME, KioskWindow
from tests.support.factories import add_faculty
from tests.ui.support import running_kiosk

ID = FacultyRole.ID


@pytest.fixture
def kiosk(qtbot: QtBot, database_url: str) -> Iterator[KioskWindow]:
    with running_kiosk(qtbot, database_url, consultation_requests=True) as window:
        flow = window.consultations
        assert flow is not None
        qtbot.waitUntil(lambda: flow._watcher.connected, timeout=5000)
        yield window


def flow_of(window: KioskWindow) -> ConsultationFlow:
    assert window.consultations is not None
    return window.consultations


def press_card_action(qtbot: QtBot, window: KioskWindow, faculty_id: int) -> None:
    grid = window.board.grid
    grid.doItemsLayout()
    proxy = window.board.proxy
    row = next(r for r in range(proxy.rowCount()) if proxy.index(r, 0).data(ID) == faculty_id)
    index = proxy.index(row, 0)
    cell = grid.visualRect(index)
    layout = window.board.delegate.layout_card(cell, index)
    assert layout.action is not None
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=layout.action.center())


def action_text(window: KioskWindow, faculty_id: int) -> str:
    grid = window.board.grid
    for row in range(window.board.proxy.rowCount()):
        index = window.board.proxy.index(row, 0)
        if int(index.data(ID)) == faculty_id:
            layout = window.board.delegate.layout_card(grid.visualRect(index), index)
            [run] = [r for r in layout.runs if r.part == "action"]
            return run.full
    raise AssertionError(f"faculty {faculty_id} is not on the board")


def fill_form(qtbot: QtBot, window: KioskWindow, *, name: str, message: str) -> None:
    form = flow_of(window).form
    form.name_box.setText(name)
    form.student_id_box.setText("2021-0042")
    form.course_box.setText("CS101")
    form.message_box.setPlainText(message)


def consultation(db: psycopg.Connection[Any], consultation_id: int) -> dict[str, Any]:
    cur = db.execute(
        "SELECT status, closed_by, student_name, student_id, course_code, message, faculty_id"
        " FROM consultation WHERE id = %s",
        (consultation_id,),
    )
    row = cur.fetchone()
    assert row is not None
    return dict(zip([c.name for c in cur.description or ()], row, strict=True))


def make_request(qtbot: QtBot, window: KioskWindow, faculty_id: int) -> int:
    """Through the card and the form, as a student would; returns the new id."""
    press_card_action(qtbot, window, faculty_id)
    flow = flow_of(window)
    assert window.pages.currentWidget() is flow.form
    fill_form(qtbot, window, name="Sam Student", message="Question about assignment 3")
    qtbot.mouseClick(flow.form.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.pages.currentWidget() is flow.status_view, timeout=5000)
    request = flow.status_view.request
    assert request is not None
    return request.id


def test_only_an_available_lecturers_card_offers_a_request_and_others_say_why(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    free = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    busy = add_faculty(db, name="Dr. Alan Turing", status="busy", desk_online=True)
    away = add_faculty(db, name="Dr. Grace Hopper", status="away", desk_online=True)
    offline = add_faculty(db, name="Dr. Emmy Noether", status="available", desk_online=False)
    with running_kiosk(qtbot, database_url, consultation_requests=True) as window:
        assert action_text(window, free) == "Request consultation"
        assert action_text(window, busy) == "Busy right now"
        assert action_text(window, away) == "Away right now"
        assert action_text(window, offline) == "Desk offline right now"
        flow = flow_of(window)
        for disabled in (busy, away, offline):
            press_card_action(qtbot, window, disabled)
            assert window.pages.currentWidget() is window.board
        press_card_action(qtbot, window, free)
        assert window.pages.currentWidget() is flow.form
        assert "Dr. Ada Lovelace" in flow.form.lecturer.text()
        # The lecturer goes away while nobody looks: the card says so at once.
        window.show_board()
        db.execute("UPDATE faculty SET status = 'away' WHERE id = %s", (free,))
        qtbot.waitUntil(lambda: action_text(window, free) == "Away right now", timeout=3000)


def test_the_button_on_a_compact_card_is_a_full_touch_target_inside_the_card(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    free = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    with running_kiosk(qtbot, database_url, consultation_requests=True) as window:
        assert window.board.delegate.metrics.compact
        grid = window.board.grid
        grid.doItemsLayout()
        index = window.board.proxy.index(0, 0)
        assert int(index.data(ID)) == free
        layout = window.board.delegate.layout_card(grid.visualRect(index), index)
        assert layout.action is not None
        assert layout.action.height() >= theme.TOUCH
        assert layout.card.contains(layout.action)
        others = [r.rect for r in layout.runs if r.part != "action"]
        assert all(not rect.intersects(layout.action) for rect in others)


def test_the_form_refuses_what_is_missing_or_too_long_and_counts_characters(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    free = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    with running_kiosk(qtbot, database_url, consultation_requests=True) as window:
        flow = flow_of(window)
        press_card_action(qtbot, window, free)
        form = flow.form
        qtbot.mouseClick(form.send_button, Qt.MouseButton.LeftButton)
        assert set(form.problems()) == {"name", "message"}
        form.name_box.setText("Sam Student")
        form.message_box.setPlainText("x" * (MESSAGE_MAX + 3))
        assert form.counter.text() == f"{MESSAGE_MAX + 3} / {MESSAGE_MAX}"
        assert form.counter.property("error") is True
        qtbot.mouseClick(form.send_button, Qt.MouseButton.LeftButton)
        assert form.problems() == {"message": "The message is 3 characters too long."}
        assert window.pages.currentWidget() is form
        count = db.execute("SELECT count(*) FROM consultation").fetchone()
        assert count == (0,)


def test_a_valid_form_creates_a_pending_request_and_shows_it_waiting(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    free = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    qtbot.waitUntil(lambda: kiosk.model.row_of(free) is not None, timeout=3000)
    consultation_id = make_request(qtbot, kiosk, free)
    row = consultation(db, consultation_id)
    assert row == {
        "status": "pending",
        "closed_by": None,
        "student_name": "Sam Student",
        "student_id": "2021-0042",
        "course_code": "CS101",
        "message": "Question about assignment 3",
        "faculty_id": free,
    }
    view = flow_of(kiosk).status_view
    assert view.chip.text() == "Waiting"
    assert view.headline.text() == "Waiting for Dr. Ada Lovelace to answer"
    assert "Waiting 0:0" in view.detail.text()
    assert view.cancel_button.isVisible()


def test_the_same_student_twice_to_one_lecturer_is_told_to_look_at_the_first_request(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    free = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    qtbot.waitUntil(lambda: kiosk.model.row_of(free) is not None, timeout=3000)
    make_request(qtbot, kiosk, free)
    flow = flow_of(kiosk)
    qtbot.mouseClick(flow.status_view.back_button, Qt.MouseButton.LeftButton)
    press_card_action(qtbot, kiosk, free)
    fill_form(qtbot, kiosk, name="Sam Student", message="Again")
    qtbot.mouseClick(flow.form.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "already has an open request" in flow.form.status_line.text())
    assert kiosk.pages.currentWidget() is flow.form
    assert db.execute("SELECT count(*) FROM consultation").fetchone() == (1,)


@pytest.mark.parametrize(
    ("change", "shown"),
    [
        (
            ("accepted", None),
            ("Accepted", "Dr. Ada Lovelace will see you", "Your request was accepted."),
        ),
        (
            ("declined", "desk"),
            (
                "Declined",
                "Dr. Ada Lovelace is busy right now",
                "Your request was declined. Try another lecturer, or come back later.",
            ),
        ),
        (
            ("expired", "system"),
            (
                "No answer",
                "No answer in time",
                "Dr. Ada Lovelace did not answer your request. Try again later, "
                "or ask another lecturer.",
            ),
        ),
        (
            ("cancelled", "admin"),
            ("Cancelled", "Request cancelled", "The request was cancelled by staff."),
        ),
    ],
)
def test_the_status_view_follows_the_row_as_the_ingest_changes_it(
    qtbot: QtBot,
    kiosk: KioskWindow,
    db: psycopg.Connection[Any],
    change: tuple[str, str | None],
    shown: tuple[str, str, str],
) -> None:
    status, closed_by = change
    free = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    qtbot.waitUntil(lambda: kiosk.model.row_of(free) is not None, timeout=3000)
    consultation_id = make_request(qtbot, kiosk, free)
    view = flow_of(kiosk).status_view
    db.execute(
        "UPDATE consultation SET status = %s, closed_by = %s WHERE id = %s",
        (status, closed_by, consultation_id),
    )
    chip, headline, detail = shown
    qtbot.waitUntil(lambda: view.chip.text() == chip, timeout=1000)  # SPEC 6: within 1 s
    assert view.headline.text() == headline
    assert view.detail.text() == detail
    accepted = status == "accepted"
    assert view.room.isVisible() is accepted
    if accepted:
        assert view.room.text() == "Go to Room CS-101"
    assert view.cancel_button.isVisible() is accepted  # an accepted request can still be cancelled


def test_cancel_asks_twice_then_cancels_the_request_in_the_database(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    free = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    qtbot.waitUntil(lambda: kiosk.model.row_of(free) is not None, timeout=3000)
    consultation_id = make_request(qtbot, kiosk, free)
    view = flow_of(kiosk).status_view
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    assert view.cancel_button.text() == "Tap again to cancel"
    assert consultation(db, consultation_id)["status"] == "pending"
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.chip.text() == "Cancelled", timeout=3000)
    row = consultation(db, consultation_id)
    assert (row["status"], row["closed_by"]) == ("cancelled", "student")
    assert view.detail.text() == "You cancelled this request."
    assert not view.cancel_button.isVisible()


def test_cancel_after_the_desk_answered_shows_the_answer_instead_of_failing(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    free = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    qtbot.waitUntil(lambda: kiosk.model.row_of(free) is not None, timeout=3000)
    consultation_id = make_request(qtbot, kiosk, free)
    flow = flow_of(kiosk)
    flow._watcher.unwatch(consultation_id)  # the notification must not be what shows it
    db.execute(
        "UPDATE consultation SET status = 'declined', closed_by = 'desk' WHERE id = %s",
        (consultation_id,),
    )
    flow._cancel(consultation_id)
    qtbot.waitUntil(lambda: flow.status_view.chip.text() == "Declined", timeout=3000)
    assert consultation(db, consultation_id)["status"] == "declined"


def test_a_card_read_fills_the_form_from_the_student_table(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    free = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    db.execute(
        "INSERT INTO student (student_id, name, course_code, rfid_uid)"
        " VALUES ('2021-0042', 'Sam Student', 'BSCS', '0004567891')"
    )
    qtbot.waitUntil(lambda: kiosk.model.row_of(free) is not None, timeout=3000)
    press_card_action(qtbot, kiosk, free)
    form = flow_of(kiosk).form
    form.name_box.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is form.name_box)
    form.name_box.setText("S")
    form.name_box.end(False)
    # The reader types the UID far faster than a person, then Enter.
    qtbot.keyClicks(form.name_box, "0004567891")
    qtbot.keyClick(form.name_box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: form.student_id_box.text() == "2021-0042", timeout=3000)
    assert form.name_box.text() == "Sam Student"
    assert form.course_box.text() == "BSCS"
    assert "welcome, Sam Student" in form.card_line.text()


def test_an_unknown_card_asks_the_student_to_type_and_leaves_no_digits_behind(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    free = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    qtbot.waitUntil(lambda: kiosk.model.row_of(free) is not None, timeout=3000)
    press_card_action(qtbot, kiosk, free)
    form = flow_of(kiosk).form
    form.student_id_box.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is form.student_id_box)
    qtbot.keyClicks(form.student_id_box, "99887766")
    qtbot.keyClick(form.student_id_box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "not registered" in form.card_line.text(), timeout=3000)
    assert form.student_id_box.text() == ""
    assert form.name_box.text() == ""


def test_the_kiosk_goes_back_to_the_board_when_left_idle_and_forgets_the_student(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    free = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    with running_kiosk(qtbot, database_url, consultation_requests=True, idle_timeout=0.6) as window:
        flow = flow_of(window)
        qtbot.waitUntil(lambda: flow._watcher.connected, timeout=5000)
        consultation_id = make_request(qtbot, window, free)
        qtbot.waitUntil(lambda: window.pages.currentWidget() is window.board, timeout=3000)
        assert flow.following is None
        # The request itself goes on: the desk has it.
        assert consultation(db, consultation_id)["status"] == "pending"
        press_card_action(qtbot, window, free)
        assert flow.form.name_box.text() == ""
        flow.form.name_box.setText("Someone")
        qtbot.waitUntil(lambda: window.pages.currentWidget() is window.board, timeout=3000)
        assert flow.form.name_box.text() == ""


def test_the_status_is_right_after_the_watcher_loses_its_connection(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    free = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    qtbot.waitUntil(lambda: kiosk.model.row_of(free) is not None, timeout=3000)
    consultation_id = make_request(qtbot, kiosk, free)
    view = flow_of(kiosk).status_view
    with db.transaction():
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'consultease-kiosk-requests'"
            " AND datname = current_database()"
        )
        # Accepted while the watcher is away: its notification is lost.
        db.execute("UPDATE consultation SET status = 'accepted' WHERE id = %s", (consultation_id,))
    qtbot.waitUntil(lambda: view.chip.text() == "Accepted", timeout=5000)
    assert view.room.text() == "Go to Room CS-101"


def watcher_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == WATCHER_NAME and t.is_alive()]


def test_closing_the_window_stops_the_request_watcher_and_its_connection(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    with running_kiosk(qtbot, database_url, consultation_requests=True) as window:
        qtbot.waitUntil(lambda: flow_of(window)._watcher.connected, timeout=5000)
        assert len(watcher_threads()) == 1
        window.close()
        assert watcher_threads() == []

    def sessions() -> int:
        row = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            " AND datname = current_database()",
            (WATCHER_NAME,),
        ).fetchone()
        assert row is not None
        return int(row[0])

    qtbot.waitUntil(lambda: sessions() == 0, timeout=3000)


def test_a_card_read_on_the_board_leaves_no_digits_in_the_search_box(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    search = kiosk.board.search_box
    search.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is search)
    qtbot.keyClicks(search, "ada")
    qtbot.keyClicks(search, "0004567891")
    qtbot.keyClick(search, Qt.Key.Key_Return)
    assert search.text() == "ada"
    assert kiosk.pages.currentWidget() is kiosk.board
