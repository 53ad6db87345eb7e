"""The student board against a real database and a real listener."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psycopg
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QAbstractButton, QComboBox, QLineEdit, QWidget
from pytestqt.qtbot import QtBot

from kiosk_ui import theme
from kiosk_ui.board import Board
from kiosk_ui.model import FacultyListModel, FacultyRole
from kiosk_ui.window import KioskWindow
from tests.support.factories import add_faculty
from tests.ui.support import listener_threads, running_kiosk, seed_board, terminate_listener


def card(window: KioskWindow, faculty_id: int) -> str | None:
    return window.board.card_text(faculty_id)


def test_a_committed_change_shows_on_its_card_within_a_second_as_one_row_update(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    ids = seed_board(db, 12)
    grace = ids["Dr. Grace Hopper"]
    db.execute("UPDATE faculty SET status = 'busy', desk_online = true WHERE id = %s", (grace,))
    with running_kiosk(qtbot, database_url) as window:
        model = window.model
        assert "Busy" in (card(window, grace) or "")
        row = model.row_of(grace)
        changed_rows: list[tuple[int, int]] = []
        resets: list[bool] = []

        def on_data_changed(top: QModelIndex, bottom: QModelIndex, roles: Any = ()) -> None:
            if FacultyRole.UPDATED_TEXT not in (roles or ()):
                changed_rows.append((top.row(), bottom.row()))

        model.dataChanged.connect(on_data_changed)
        model.modelReset.connect(lambda: resets.append(True))

        with psycopg.connect(database_url, autocommit=True) as other:
            other.execute("UPDATE faculty SET status = 'available' WHERE id = %s", (grace,))
        qtbot.waitUntil(lambda: "Available" in (card(window, grace) or ""), timeout=1000)

        assert changed_rows == [(row, row)]
        assert resets == []
        assert model.row_of(grace) == row


def test_search_department_and_available_only_narrow_the_cards_and_the_header_counts(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    seed_board(db, 30)
    with running_kiosk(qtbot, database_url) as window:
        board = window.board
        views = window.model.views()
        available = [v for v in views if v.shown_status == "available"]
        assert board.summary_label.text() == f"{len(available)} of 30 available"
        assert len(board.visible_names()) == 30

        qtbot.keyClicks(board.search_box, "curie")
        assert board.visible_names() == ["Dr. Marie Curie"]
        assert board.summary_label.text().endswith("of 1 available")
        board.search_box.clear()

        board.department_box.setCurrentIndex(board.department_box.findText("Physics"))
        physics = [v for v in views if v.department == "Physics"]
        assert board.visible_names() == [v.name for v in physics]
        physics_free = [v.name for v in physics if v.shown_status == "available"]
        assert board.summary_label.text() == f"{len(physics_free)} of {len(physics)} available"

        qtbot.mouseClick(board.available_toggle, Qt.MouseButton.LeftButton)
        assert board.available_toggle.isChecked()
        assert board.visible_names() == physics_free
        # The toggle narrows the cards, not the count it is measured against.
        assert board.summary_label.text() == f"{len(physics_free)} of {len(physics)} available"

        qtbot.keyClicks(board.search_box, "nobody like this")
        assert board.visible_names() == []
        assert board.pages.currentWidget() is board.empty_label
        qtbot.mouseClick(board.clear_button, Qt.MouseButton.LeftButton)
        assert len(board.visible_names()) == 30
        assert board.pages.currentWidget() is board.grid


def test_available_only_board_follows_a_live_change(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    ids = seed_board(db, 8)
    lamport = ids["Dr. Leslie Lamport"]
    db.execute("UPDATE faculty SET status = 'away', desk_online = true WHERE id = %s", (lamport,))
    with running_kiosk(qtbot, database_url) as window:
        board = window.board
        board.available_toggle.setChecked(True)
        before = board.summary_label.text()
        assert "Dr. Leslie Lamport" not in board.visible_names()
        db.execute("UPDATE faculty SET status = 'available' WHERE id = %s", (lamport,))
        qtbot.waitUntil(lambda: "Dr. Leslie Lamport" in board.visible_names(), timeout=1000)
        qtbot.waitUntil(lambda: board.summary_label.text() != before, timeout=1000)


def test_search_and_filters_reset_after_the_idle_time(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    seed_board(db, 30)
    with running_kiosk(qtbot, database_url, idle_timeout=0.4) as window:
        board = window.board
        qtbot.keyClicks(board.search_box, "physics")
        board.available_toggle.setChecked(True)
        assert len(board.visible_names()) < 30
        qtbot.waitUntil(lambda: len(board.visible_names()) == 30, timeout=3000)
        assert board.search_box.text() == ""
        assert not board.available_toggle.isChecked()
        assert board.department_box.currentIndex() == 0


def test_a_lost_connection_shows_the_banner_until_the_resync_and_no_change_is_lost(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any], pg_admin_url: str
) -> None:
    ids = seed_board(db, 10)
    ada = ids["Dr. Ada Lovelace"]
    db.execute("UPDATE faculty SET status = 'available', desk_online = true WHERE id = %s", (ada,))
    dbname = db.info.dbname
    with (
        running_kiosk(qtbot, database_url) as window,
        psycopg.connect(pg_admin_url, autocommit=True) as admin,
    ):
        board = window.board
        assert board.banner.isHidden()
        # Keep the listener out while we change a row behind its back.
        admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
        try:
            assert terminate_listener(db) == 1
            qtbot.waitUntil(board.banner.isVisible, timeout=2000)
            assert board.banner.text().startswith("Live updates paused, reconnecting…")
            assert "last update" in board.banner.text()
            db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (ada,))
            qtbot.wait(300)
            assert "Available" in (card(window, ada) or ""), "the board cannot know yet"
            assert board.banner.isVisible()
        finally:
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        qtbot.waitUntil(board.banner.isHidden, timeout=15000)
        assert "Busy" in (card(window, ada) or "")
        # Live again: the next change arrives as usual.
        db.execute("UPDATE faculty SET status = 'away' WHERE id = %s", (ada,))
        qtbot.waitUntil(lambda: "Away" in (card(window, ada) or ""), timeout=1000)


def test_an_update_keeps_the_scroll_position(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    ids = seed_board(db, 30)
    with running_kiosk(qtbot, database_url) as window:
        bar = window.board.grid.verticalScrollBar()
        assert bar.maximum() > 0
        bar.setValue(bar.maximum() // 2)
        position = bar.value()
        tesla = ids["Dr. Nikola Tesla"]
        db.execute("UPDATE faculty SET status = 'busy', desk_online = true WHERE id = %s", (tesla,))
        qtbot.waitUntil(lambda: "Busy" in (card(window, tesla) or ""), timeout=1000)
        qtbot.wait(50)
        assert bar.value() == position


def test_new_and_deactivated_faculty_come_and_go_in_order(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    ids = seed_board(db, 8)
    with running_kiosk(qtbot, database_url) as window:
        new_id = add_faculty(db, name="Dr. Anita Borg", department="Computer Science", room="CS-1")
        qtbot.waitUntil(lambda: window.model.row_of(new_id) is not None, timeout=1000)
        assert window.board.visible_names()[:3] == [
            "Dr. Ada Lovelace",
            "Dr. Alan Turing",
            "Dr. Anita Borg",
        ]
        db.execute("UPDATE faculty SET active = false WHERE id = %s", (ids["Dr. Ada Lovelace"],))
        qtbot.waitUntil(
            lambda: "Dr. Ada Lovelace" not in window.board.visible_names(), timeout=1000
        )


def test_every_touch_target_is_at_least_48_px(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    seed_board(db, 30)
    with running_kiosk(qtbot, database_url) as window:
        window.board.search_box.setText("a")  # shows the Clear button too
        targets = [
            w
            for w in window.findChildren(QWidget)
            if isinstance(w, QAbstractButton | QLineEdit | QComboBox) and w.isVisible()
        ]
        assert len(targets) >= 5
        for widget in targets:
            assert widget.width() >= theme.TOUCH, widget.objectName()
            assert widget.height() >= theme.TOUCH, widget.objectName()
        assert window.board.grid.verticalScrollBar().width() >= theme.TOUCH
        assert window.board.grid.gridSize().height() >= 2 * theme.TOUCH


def test_the_board_scales_up_on_a_1080p_screen(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    seed_board(db, 30)
    with running_kiosk(qtbot, database_url, size=(1920, 1080)) as window:
        qtbot.waitUntil(lambda: window.board.delegate.scale > 1.5, timeout=1000)
        grid = window.board.grid
        cell = grid.gridSize()
        assert cell.height() >= theme.CARD_HEIGHT * 1.5
        # Three cards fill the first row, edge to edge, with no gap left on the right.
        rects = [grid.visualRect(window.board.proxy.index(i, 0)) for i in range(4)]
        assert [r.top() for r in rects] == [0, 0, 0, cell.height()]
        assert grid.viewport().width() - rects[2].right() < cell.width() // 10


def test_screenshot_of_thirty_faculty_in_mixed_states(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    seed_board(db, 30)
    target = Path(os.environ.get("CONSULTEASE_SCREENSHOT") or tmp_path / "kiosk.png")
    with running_kiosk(qtbot, database_url) as window:
        shown = {v.shown_status for v in window.model.views()}
        assert shown == {"available", "busy", "away", "offline"}
        assert len(window.model.departments()) == 4
        qtbot.wait(50)
        target.parent.mkdir(parents=True, exist_ok=True)
        assert window.grab().save(str(target))
    image = QImage(str(target))
    assert (image.width(), image.height()) == (1024, 600)


def test_closing_the_window_stops_the_listener(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    seed_board(db, 3)
    with running_kiosk(qtbot, database_url) as window:
        assert window.listener.connected
        assert len(listener_threads()) == 1
        window.close()
        assert listener_threads() == []
        assert not window.listener.connected


def test_the_banner_says_connecting_before_the_first_picture(qtbot: QtBot) -> None:
    board = Board(FacultyListModel())
    qtbot.addWidget(board)
    board.show()
    assert board.banner.isVisible()
    assert board.banner.text() == "Connecting to live updates…"
    board.set_connection(False, "connection refused")
    assert board.banner.text() == "Connecting to live updates…"
    board.note_resynced(())
    assert board.banner.isHidden()
    board.shutdown()
