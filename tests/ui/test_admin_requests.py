"""The admin view of consultation requests and students, against a real database:
open requests per lecturer, live; cancel (audited); add and import students."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from PySide6.QtCore import Qt
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from consultease.live.consultations import ConsultationView
from kiosk_ui.admin_requests import OpenRequestsModel, RequestsAdmin
from kiosk_ui.window import KioskWindow
from tests.support.factories import add_faculty
from tests.ui.support import running_kiosk


@pytest.fixture
def kiosk(qtbot: QtBot, database_url: str) -> Iterator[KioskWindow]:
    with running_kiosk(qtbot, database_url) as window:
        yield window


def open_requests_admin(qtbot: QtBot, window: KioskWindow) -> RequestsAdmin:
    window.open_admin("alice")
    assert window.admin_panel is not None
    qtbot.mouseClick(window.admin_panel.requests_button, Qt.MouseButton.LeftButton)
    view = window.requests_admin
    assert view is not None and window.pages.currentWidget() is view
    qtbot.waitUntil(lambda: view._watcher.connected, timeout=5000)
    return view


def request(db: psycopg.Connection[Any], faculty_id: int, student: str) -> int:
    row = db.execute(
        "INSERT INTO consultation (faculty_id, student_name, message)"
        " VALUES (%s, %s, 'About the exam') RETURNING id",
        (faculty_id, student),
    ).fetchone()
    assert row is not None
    return int(row[0])


def listed(view: RequestsAdmin) -> list[tuple[str, str, str]]:
    model = view.requests_model
    return [
        (
            model.index(r, 0).data(),
            model.index(r, 1).data(),
            model.index(r, 2).data(),
        )
        for r in range(model.rowCount())
    ]


def test_open_requests_are_listed_by_lecturer_and_follow_changes_live(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    turing = add_faculty(db, name="Dr. Alan Turing", status="available", desk_online=True)
    ada = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    first = request(db, turing, "Kim Lee")
    second = request(db, ada, "Sam Student")
    closed = request(db, ada, "Old Request")
    db.execute(
        "UPDATE consultation SET status = 'declined', closed_by = 'desk' WHERE id = %s", (closed,)
    )
    view = open_requests_admin(qtbot, kiosk)
    qtbot.waitUntil(lambda: len(listed(view)) == 2, timeout=3000)
    assert listed(view) == [
        ("Dr. Ada Lovelace", "Sam Student", "Waiting"),
        ("Dr. Alan Turing", "Kim Lee", "Waiting"),
    ]
    assert view.requests_tab.text() == "Open requests (2)"
    third = request(db, ada, "Ana Reyes")
    qtbot.waitUntil(lambda: len(listed(view)) == 3, timeout=1000)
    assert [row[0] for row in listed(view)] == [
        "Dr. Ada Lovelace",
        "Dr. Ada Lovelace",
        "Dr. Alan Turing",
    ]
    db.execute("UPDATE consultation SET status = 'accepted' WHERE id = %s", (second,))
    qtbot.waitUntil(
        lambda: ("Dr. Ada Lovelace", "Sam Student", "Accepted") in listed(view), timeout=1000
    )
    db.execute(
        "UPDATE consultation SET status = 'expired', closed_by = 'system' WHERE id = %s", (first,)
    )
    qtbot.waitUntil(lambda: len(listed(view)) == 2, timeout=1000)
    assert {v.id for v in view.requests_model.views()} == {second, third}


def test_an_admin_cancels_a_request_with_two_taps_and_it_is_audited(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    ada = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    consultation_id = request(db, ada, "Sam Student")
    view = open_requests_admin(qtbot, kiosk)
    qtbot.waitUntil(lambda: len(listed(view)) == 1, timeout=3000)
    assert not view.cancel_button.isEnabled()
    view.select_request(consultation_id)
    assert view.cancel_button.isEnabled()
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    assert "Tap again" in view.cancel_button.text()
    status = db.execute("SELECT status FROM consultation WHERE id = %s", (consultation_id,))
    assert status.fetchone() == ("pending",)
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: listed(view) == [], timeout=3000)
    row = db.execute(
        "SELECT status, closed_by FROM consultation WHERE id = %s", (consultation_id,)
    ).fetchone()
    assert row == ("cancelled", "admin")
    audit = db.execute(
        "SELECT actor, before->>'status', after->>'status' FROM audit_log"
        " WHERE action = 'consultation.cancel' AND target = %s",
        (f"consultation:{consultation_id}",),
    ).fetchall()
    assert audit == [("alice", "pending", "cancelled")]
    # The watcher may remove the row before the worker's answer comes back.
    qtbot.waitUntil(lambda: "Cancelled request" in view.message.text(), timeout=3000)


def test_cancelling_a_request_answered_meanwhile_says_so_and_changes_nothing(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    ada = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    consultation_id = request(db, ada, "Sam Student")
    view = open_requests_admin(qtbot, kiosk)
    qtbot.waitUntil(lambda: len(listed(view)) == 1, timeout=3000)
    view.select_request(consultation_id)
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    view._unsubscribe()  # the desk's answer must not reach the table before the tap
    db.execute(
        "UPDATE consultation SET status = 'declined', closed_by = 'desk' WHERE id = %s",
        (consultation_id,),
    )
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.message.property("error") is True, timeout=3000)
    assert "declined" in view.message.text()
    row = db.execute(
        "SELECT status, closed_by FROM consultation WHERE id = %s", (consultation_id,)
    ).fetchone()
    assert row == ("declined", "desk")


def test_an_admin_adds_a_student_with_a_card_and_a_bad_one_is_refused_beside_nothing_written(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any]
) -> None:
    view = open_requests_admin(qtbot, kiosk)
    qtbot.mouseClick(view.students_tab, Qt.MouseButton.LeftButton)
    assert view.pages.currentIndex() == 1
    view.new_student_id.setText("2021-0042")
    view.new_name.setText("Sam Student")
    view.new_course.setText("BSCS")
    view.new_card.setText("0004567891")
    qtbot.mouseClick(view.add_student_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.students_model.rowCount() == 1, timeout=3000)
    [student] = view.students_model.students()
    assert (student.name, student.student_id, student.rfid_uid) == (
        "Sam Student",
        "2021-0042",
        "0004567891",
    )
    assert view.students_tab.text() == "Students (1)"
    actor = db.execute("SELECT actor FROM audit_log WHERE action = 'student.add'").fetchall()
    assert actor == [("alice",)]
    # The same card again is refused in one line, and nothing is added.
    view.new_student_id.setText("2021-0043")
    view.new_name.setText("Kim Lee")
    view.new_card.setText("0004567891")
    qtbot.mouseClick(view.add_student_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.message.property("error") is True, timeout=3000)
    assert "already registered" in view.message.text()
    assert db.execute("SELECT count(*) FROM student").fetchone() == (1,)


def test_a_csv_import_adds_students_with_their_cards_and_a_bad_file_writes_nothing(
    qtbot: QtBot, kiosk: KioskWindow, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    good = tmp_path / "students.csv"
    good.write_text(
        "student_id,name,course_code,rfid_uid\n"
        "2021-0042,Sam Student,BSCS,0004567891\n"
        "2021-0043,Kim Lee,BSIT,0004567892\n",
        encoding="utf-8",
    )
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "student_id,name,course_code,rfid_uid\n2021-0044,Ana Reyes,BSCS,not-a-card\n",
        encoding="utf-8",
    )
    view = open_requests_admin(qtbot, kiosk)
    view.show_students()
    view.import_path.setText(str(bad))
    qtbot.mouseClick(view.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.message.property("error") is True, timeout=3000)
    assert view.message.text().startswith("Line 2: an RFID card UID")
    assert db.execute("SELECT count(*) FROM student").fetchone() == (0,)
    view.import_path.setText(str(good))
    qtbot.mouseClick(view.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.students_model.rowCount() == 2, timeout=3000)
    assert "2 added, 0 updated" in view.message.text()
    cards = {s.student_id: s.rfid_uid for s in view.students_model.students()}
    assert cards == {"2021-0042": "0004567891", "2021-0043": "0004567892"}


def test_signing_out_from_the_requests_view_closes_it_and_its_watcher(
    qtbot: QtBot, kiosk: KioskWindow
) -> None:
    view = open_requests_admin(qtbot, kiosk)
    watcher = view._watcher
    qtbot.mouseClick(view.sign_out_button, Qt.MouseButton.LeftButton)
    assert kiosk.pages.currentWidget() is kiosk.board
    assert kiosk.requests_admin is None and kiosk.admin_panel is None
    assert not watcher.connected


def _view(consultation_id: int, faculty: str, status: str, version: int = 1) -> ConsultationView:
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    return ConsultationView(
        id=consultation_id,
        faculty_id=hash(faculty) % 1000,
        faculty_name=faculty,
        room="CS-101",
        student_name="Sam Student",
        student_id=None,
        course_code=None,
        message="About the exam",
        status=status,
        version=version,
        created_at=at,
        updated_at=at,
        responded_at=None,
        closed_by=None,
        read_at=at,
    )


def test_the_open_requests_model_passes_qtmodeltester_through_changes(
    qtmodeltester: ModelTester,
) -> None:
    model = OpenRequestsModel()
    qtmodeltester.check(model)
    model.replace([_view(1, "Dr. B", "pending"), _view(2, "Dr. A", "accepted")])
    model.apply(_view(3, "Dr. A", "pending"))
    model.apply(_view(1, "Dr. B", "accepted", version=2))
    model.apply(_view(1, "Dr. B", "pending", version=1))  # older: ignored
    qtmodeltester.check(model)
    assert [(v.id, v.status) for v in model.views()] == [
        (2, "accepted"),
        (3, "pending"),
        (1, "accepted"),
    ]
    model.apply(_view(2, "Dr. A", "completed", version=2))
    assert [v.id for v in model.views()] == [3, 1]
    qtmodeltester.check(model)


def test_an_idle_kiosk_signs_out_of_the_requests_view_too(qtbot: QtBot, database_url: str) -> None:
    with running_kiosk(qtbot, database_url, idle_timeout=0.4, signout_warning=0.4) as window:
        view = open_requests_admin(qtbot, window)
        watcher = view._watcher
        qtbot.waitUntil(
            lambda: window.admin_panel is not None and window.admin_panel.warning_active,
            timeout=3000,
        )
        assert window.pages.currentWidget() is window.admin_panel  # the warning is seen
        qtbot.waitUntil(lambda: window.pages.currentWidget() is window.board, timeout=3000)
        assert window.requests_admin is None
        assert not watcher.connected
