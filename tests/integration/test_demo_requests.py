"""The demo's students: requests only to available lecturers, and the terminal board
listing the open requests live."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from rich.console import Console

from consultease.db.consultations import Consultations
from consultease.live.consultations import ConsultationWatcher
from consultease.live.listener import FacultyListener
from consultease.tools.student_traffic import DEMO_STUDENTS, StudentTraffic, seed_demo_students
from consultease.tools.terminal_board import TerminalBoard
from tests.support.factories import add_faculty
from tests.support.ingest import wait_until


def test_demo_students_are_seeded_once_with_their_cards(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    assert seed_demo_students(database_url) == len(DEMO_STUDENTS)
    assert seed_demo_students(database_url) == len(DEMO_STUDENTS)
    cards = db.execute("SELECT count(*) FROM student WHERE rfid_uid IS NOT NULL").fetchone()
    assert cards == (len(DEMO_STUDENTS),)


def test_students_ask_only_lecturers_who_are_available_now(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    free = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    add_faculty(db, name="Dr. Alan Turing", status="away", desk_online=True)
    add_faculty(db, name="Dr. Grace Hopper", status="available", desk_online=False)
    traffic = StudentTraffic(database_url, seed=7)
    consultations = Consultations(database_url)
    try:
        made = [traffic.one_request(consultations) for _ in range(30)]
    finally:
        consultations.close()
    rows = db.execute("SELECT DISTINCT faculty_id FROM consultation").fetchall()
    assert rows == [(free,)]
    # At most one open request per student per lecturer: the rest were skipped, not errors.
    made_ids = [m for m in made if m is not None]
    assert 0 < len(made_ids) <= len(DEMO_STUDENTS)
    assert traffic.stats.made == len(made_ids)
    assert traffic.stats.skipped == 30 - len(made_ids)
    db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (free,))
    consultations = Consultations(database_url)
    try:
        assert traffic.one_request(consultations) is None
    finally:
        consultations.close()


def test_the_thread_makes_requests_and_stops_at_once(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    traffic = StudentTraffic(database_url, per_minute=600, seed=1)
    traffic.start()
    try:
        wait_until(lambda: traffic.stats.made >= 2, timeout=10, message="two requests")
    finally:
        started = time.monotonic()
        traffic.stop()
    assert time.monotonic() - started < 2


def render(board: TerminalBoard) -> str:
    console = Console(record=True, width=140, color_system=None)
    console.print(board.render())
    return console.export_text()


def test_the_terminal_board_lists_open_requests_live_and_counts_how_they_ended(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    free = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    listener = FacultyListener(database_url, application_name="test-demo-board")
    watcher = ConsultationWatcher(database_url, follow_all=True)
    board = TerminalBoard(listener, requests=watcher)
    listener.start()
    watcher.start()
    try:
        assert board.wait_until_live(10)
        wait_until(lambda: watcher.connected, timeout=5, message="the request watcher")
        row = db.execute(
            "INSERT INTO consultation (faculty_id, student_name, message)"
            " VALUES (%s, 'Maria Santos', 'Problem 3') RETURNING id",
            (free,),
        ).fetchone()
        assert row is not None
        wait_until(lambda: len(board.open_requests()) == 1, timeout=3, message="the request")
        text = render(board)
        assert "Consultation requests: 1 open" in text
        assert "Maria Santos" in text and "Waiting" in text and "CS-101" in text
        db.execute("UPDATE consultation SET status = 'accepted' WHERE id = %s", (row[0],))
        wait_until(lambda: "Accepted" in render(board), timeout=3, message="accepted")
        db.execute(
            "UPDATE consultation SET status = 'completed', closed_by = 'admin' WHERE id = %s",
            (row[0],),
        )
        wait_until(lambda: board.open_requests() == [], timeout=3, message="closed")
        assert board.outcomes == {"completed": 1}
        assert "since the board started: 1 completed" in render(board)
    finally:
        board.close()
        watcher.close()
        listener.close()
