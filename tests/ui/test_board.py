"""The student board against a real database and a real listener."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest
from PySide6.QtCore import QModelIndex, QPoint, QRect, Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QAbstractButton, QLabel, QLineEdit, QWidget
from pytestqt.qtbot import QtBot

from consultease.domain import FacultyView
from consultease.tools.seed import LONG_NAMES
from consultease.tools.servers import free_port
from kiosk_ui import theme
from kiosk_ui.board import Board, BoardLayout, BoardOptions
from kiosk_ui.delegate import CardAction, CardDelegate
from kiosk_ui.model import FacultyListModel, FacultyRole, board_key
from kiosk_ui.names import split_name
from kiosk_ui.window import KioskWindow
from tests.support.factories import add_faculty
from tests.ui.support import (
    listener_threads,
    running_kiosk,
    seed_board,
    seed_roster,
    terminate_listener,
    view,
)

COMPACT = BoardOptions(layout=BoardLayout.COMPACT)
DEPARTMENTS = BoardOptions(layout=BoardLayout.DEPARTMENTS)
LARGE = BoardOptions(layout=BoardLayout.DEPARTMENTS, large_type=True)


def card(window: KioskWindow, faculty_id: int) -> str | None:
    return window.board.card_text(faculty_id)


def shown_views(window: KioskWindow) -> list[FacultyView]:
    proxy = window.board.proxy
    return [proxy.index(r, 0).data(FacultyRole.VIEW) for r in range(proxy.rowCount())]


def test_a_committed_change_shows_on_its_card_within_a_second_as_one_row_update(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    ids = seed_board(db, 12)
    grace = ids["Dr. Grace Hopper"]
    with running_kiosk(qtbot, database_url) as window:
        model = window.model
        row = model.row_of(grace)
        changed_rows: list[tuple[int, int]] = []
        resets: list[bool] = []

        def on_data_changed(top: QModelIndex, bottom: QModelIndex, roles: Any = ()) -> None:
            if FacultyRole.SINCE_TEXT not in (roles or ()):
                changed_rows.append((top.row(), bottom.row()))

        model.dataChanged.connect(on_data_changed)
        model.modelReset.connect(lambda: resets.append(True))
        with psycopg.connect(database_url, autocommit=True) as other:
            other.execute("UPDATE faculty SET room = 'CS-777' WHERE id = %s", (grace,))
        qtbot.waitUntil(lambda: "room CS-777" in (card(window, grace) or ""), timeout=1000)
        assert changed_rows == [(row, row)]
        assert resets == []
        assert model.row_of(grace) == row


def test_cards_go_available_busy_away_offline_by_surname_under_department_headings(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    ids = seed_board(db, 30)
    with running_kiosk(qtbot, database_url, options=DEPARTMENTS) as window:
        views = shown_views(window)
        assert views == sorted(views, key=lambda v: board_key(v, grouped=True))
        physics = [v for v in views if v.department == "Physics"]
        ranks = [theme.STATUS_RANK[v.shown_status] for v in physics]
        assert ranks == sorted(ranks) and len(set(ranks)) >= 3
        departments = [heading for heading, _ in window.board.grid.headings()]
        assert departments == sorted({v.department for v in views})
        # A lecturer who becomes available moves to the top of their department at once.
        rubin = ids["Dr. Vera Rubin"]
        db.execute(
            "UPDATE faculty SET status = 'available', desk_online = true WHERE id = %s", (rubin,)
        )
        qtbot.waitUntil(
            lambda: (
                [v.id for v in shown_views(window) if v.department == "Physics"][
                    : sum(v.shown_status == "available" for v in physics) + 1
                ].count(rubin)
                == 1
            ),
            timeout=1000,
        )
        available = [
            v.name
            for v in shown_views(window)
            if v.department == "Physics" and v.shown_status == "available"
        ]
        assert "Dr. Vera Rubin" in available
        assert available == sorted(available, key=lambda n: split_name(n).surname)


def test_the_compact_layout_lists_everyone_available_first_without_headings(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    seed_board(db, 30)
    with running_kiosk(qtbot, database_url, options=COMPACT) as window:
        views = shown_views(window)
        ranks = [theme.STATUS_RANK[v.shown_status] for v in views]
        assert ranks == sorted(ranks)
        assert window.board.grid.headings() == []
        assert window.board.grid.cell_size.height() < theme.card_metrics().height


def test_search_department_and_available_only_narrow_the_cards_and_the_counts(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    seed_board(db, 30)
    with running_kiosk(qtbot, database_url) as window:
        board = window.board
        views = window.model.views()
        available = [v for v in views if v.shown_status == "available"]
        assert board.summary_label.text() == f"{len(available)} of 30 available"
        assert board.strip.all_button.text() == f"All · {len(available)} of 30"
        assert len(board.visible_names()) == 30

        qtbot.keyClicks(board.search_box, "curie")
        assert board.visible_names() == ["Dr. Marie Curie"]
        assert board.summary_label.text().endswith("of 1 available")
        board.search_box.clear()

        physics = [v for v in views if v.department == "Physics"]
        physics_free = [v for v in physics if v.shown_status == "available"]
        button = board.strip.button("Physics")
        assert button.text() == f"Physics · {len(physics_free)} of {len(physics)}"
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert {v.department for v in shown_views(window)} == {"Physics"}
        assert board.summary_label.text() == f"{len(physics_free)} of {len(physics)} available"

        qtbot.mouseClick(board.available_toggle, Qt.MouseButton.LeftButton)
        assert sorted(board.visible_names()) == sorted(v.name for v in physics_free)
        # The toggle narrows the cards, not the count it is measured against.
        assert board.summary_label.text() == f"{len(physics_free)} of {len(physics)} available"
        qtbot.mouseClick(board.available_toggle, Qt.MouseButton.LeftButton)

        qtbot.keyClicks(board.search_box, "nobody like this")
        assert board.visible_names() == []
        assert board.pages.currentWidget() is board.empty_label
        assert board.empty_label.text().startswith("No faculty in Physics match “nobody like")
        qtbot.mouseClick(board.clear_button, Qt.MouseButton.LeftButton)
        assert len(board.visible_names()) == 30
        assert board.strip.selected is None
        assert board.pages.currentWidget() is board.grid
        assert not board.clear_button.isEnabled()


def test_available_only_with_nobody_available_says_so_not_no_match(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    seed_board(db, 8)
    db.execute("UPDATE faculty SET status = 'away'")
    with running_kiosk(qtbot, database_url) as window:
        board = window.board
        qtbot.mouseClick(board.available_toggle, Qt.MouseButton.LeftButton)
        assert board.visible_names() == []
        assert board.empty_label.isVisible()
        assert board.empty_label.text().splitlines() == [
            "Nobody is available right now",
            "Tap “Available only” again to see everyone",
        ]
        board.choose_department("Computer Science")
        assert board.empty_label.text().startswith("Nobody in Computer Science is available")


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
        board.choose_department("Physics")
        assert len(board.visible_names()) < 30
        qtbot.waitUntil(lambda: len(board.visible_names()) == 30, timeout=3000)
        assert board.search_box.text() == ""
        assert not board.available_toggle.isChecked()
        assert board.strip.selected is None and board.strip.all_button.isChecked()


def test_every_filter_change_scrolls_back_to_the_top(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    seed_roster(db, 120)
    with running_kiosk(qtbot, database_url, options=DEPARTMENTS) as window:
        board = window.board
        bar = board.grid.verticalScrollBar()

        def scrolled_down() -> None:
            bar.setValue(bar.maximum())
            assert bar.value() > 0

        scrolled_down()
        qtbot.keyClicks(board.search_box, "a")
        assert bar.value() == 0
        scrolled_down()
        qtbot.keyClicks(board.search_box, "n")
        assert bar.value() == 0, "every keystroke, not only the first"
        scrolled_down()
        board.choose_department("Physics")
        assert bar.value() == 0
        board.choose_department(None)
        board.search_box.clear()
        scrolled_down()
        qtbot.mouseClick(board.available_toggle, Qt.MouseButton.LeftButton)
        assert bar.value() == 0
        qtbot.mouseClick(board.available_toggle, Qt.MouseButton.LeftButton)
        scrolled_down()
        qtbot.keyClicks(board.search_box, "e")
        scrolled_down()
        qtbot.mouseClick(board.clear_button, Qt.MouseButton.LeftButton)
        assert bar.value() == 0


def control_geometry(window: KioskWindow) -> dict[str, QRect]:
    board = window.board
    widgets: dict[str, QWidget] = {
        "search": board.search_box,
        "available only": board.available_toggle,
        "clear": board.clear_button,
        "admin": board.admin_button,
        "title": board.title,
        "summary": board.summary_label,
        "clock": board.clock_label,
        "grid top": board.pages,
    }
    for department, button in board.strip.buttons().items():
        widgets[f"strip {department}"] = button
    geometry = {}
    for name, widget in widgets.items():
        rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
        geometry[name] = rect if name != "grid top" else QRect(rect.topLeft(), QPoint(0, 0))
    return geometry


def test_no_control_moves_when_filters_counts_the_banner_or_the_keyboard_change(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    ids = seed_board(db, 30)
    with running_kiosk(qtbot, database_url) as window:
        board = window.board
        qtbot.wait(50)  # the first layout pass, after the first counts
        before = control_geometry(window)
        steps = {
            "typing a search": lambda: qtbot.keyClicks(board.search_box, "dr"),
            "available only": lambda: board.available_toggle.setChecked(True),
            "a department": lambda: board.choose_department("Physics"),
            "live updates down": lambda: board.set_connection(False, "connection refused"),
            "retry countdown": lambda: board.note_reconnecting(4, 3.0),
            "clear": board.reset_filters,
        }
        for step, action in steps.items():
            action()
            qtbot.wait(10)
            assert control_geometry(window) == before, f"a control moved after {step}"
        assert board.banner.isVisible()
        # Counts change live (1 of 8 -> 8 of 8): the strip buttons keep their width.
        db.execute("UPDATE faculty SET status = 'available', desk_online = true")
        qtbot.waitUntil(lambda: board.strip.all_button.text() == "All · 30 of 30", timeout=3000)
        assert control_geometry(window) == before
        # The on-screen keyboard takes room from the cards, not from the controls.
        qtbot.mouseClick(board.search_box, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(window.keyboard.isVisible, timeout=1000)
        assert control_geometry(window) == before
        assert ids


def test_at_800x480_everything_fits_and_controls_stay_inside_the_window(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    seed_roster(db)
    with running_kiosk(qtbot, database_url, size=(800, 480)) as window:
        assert (window.width(), window.height()) == (800, 480)
        inside = QRect(0, 0, 800, 480)
        board = window.board
        for widget in (
            board.search_box,
            board.available_toggle,
            board.clear_button,
            board.admin_button,
            board.clock_label,
            board.title,
        ):
            rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
            assert inside.contains(rect), widget.objectName()
        assert board.grid.columns == 2
        assert board.grid.viewport().height() >= 2 * board.grid.cell_size.height()


def assert_no_text_is_cut(runs: Any, card_rect: QRect) -> list[str]:
    """Every run fits its rectangle inside the card, or says it was shortened."""
    shortened = []
    for run in runs:
        width = QFontMetrics(run.font).horizontalAdvance(run.text)
        assert width <= run.rect.width(), (run.part, run.text, width, run.rect.width())
        assert card_rect.contains(run.rect) or run.rect.width() == 0, (run.part, run.text)
        if run.text == run.full:
            continue
        shortened.append(run.text)
        if run.part == "name":
            surname = split_name(run.full).surname
            assert surname in run.text or (
                run.text.endswith("…") and surname.startswith(run.text[:-1].split()[-1])
            ), run.text
        else:
            assert "…" in run.text, (run.part, run.text)
    return shortened


@pytest.mark.parametrize(
    "options", [DEPARTMENTS, COMPACT, LARGE], ids=["departments", "compact", "large"]
)
def test_at_800x480_the_longest_names_keep_their_surname_and_nothing_is_cut_silently(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any], options: BoardOptions
) -> None:
    seed_roster(db)
    with running_kiosk(qtbot, database_url, size=(800, 480), options=options) as window:
        board = window.board
        grid = board.grid
        cell = QRect(QPoint(0, 0), grid.cell_size)
        shortened_names = []
        for row in range(board.proxy.rowCount()):
            index = board.proxy.index(row, 0)
            layout = board.delegate.layout_card(cell, index)
            shortened = assert_no_text_is_cut(layout.runs, layout.card)
            name = str(index.data(FacultyRole.NAME))
            if name in LONG_NAMES:
                shortened_names += [s for s in shortened if split_name(name).surname in s]
        assert shortened_names, "the longest names were shortened, keeping the surname"
        # The widgets' own texts: header, strip buttons, the search placeholder.
        for label in (board.title, board.summary_label, board.clock_label):
            assert label.fontMetrics().horizontalAdvance(label.text()) <= label.width()
        for button in board.strip.buttons().values():
            assert button.fontMetrics().horizontalAdvance(button.text()) <= button.width() - 16
        placeholder = board.search_box.fontMetrics().horizontalAdvance(
            board.search_box.placeholderText()
        )
        assert placeholder <= board.search_box.width() - 24
        long_department = board.strip.button("Electronics and Communications Engineering")
        assert "…" in long_department.text() or long_department.text().startswith("Electronics")
        assert long_department.toolTip().startswith("Electronics and Communications Engineering")


def test_a_bigger_screen_gets_more_columns_of_the_same_cards(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    seed_roster(db)
    cells = {}
    for size in ((800, 480), (1024, 600), (1920, 1080)):
        with running_kiosk(qtbot, database_url, size=size, options=DEPARTMENTS) as window:
            cells[size] = (window.board.grid.columns, window.board.grid.cell_size.height())
    assert [columns for columns, _ in cells.values()] == [2, 3, 6]
    assert len({height for _, height in cells.values()}) == 1, "cards do not grow"
    with running_kiosk(qtbot, database_url, size=(1920, 1080), options=LARGE) as window:
        columns, height = window.board.grid.columns, window.board.grid.cell_size.height()
    assert columns == 4 and height == round(theme.card_metrics(scale=1.5).height)


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
        db.execute("UPDATE faculty SET status = 'away' WHERE id = %s", (ada,))
        qtbot.waitUntil(lambda: "Away" in (card(window, ada) or ""), timeout=1000)


def test_a_database_down_at_startup_is_named_in_one_line_without_secrets_and_retried(
    qtbot: QtBot,
) -> None:
    url = f"postgresql://kiosk:s3cret-pw@127.0.0.1:{free_port()}/consultease"
    window = KioskWindow(url)
    try:
        window.resize(1024, 600)
        window.start()
        window.show()
        board = window.board
        qtbot.waitUntil(lambda: board.problem != "", timeout=10000)
        assert board.problem == "the database server is not reachable (connection refused)"
        attempts: list[int] = []

        def attempt_shown() -> bool:
            found = re.search(r"attempt (\d+)", board.banner.text())
            if found:
                attempts.append(int(found.group(1)))
            return len(set(attempts)) >= 2

        qtbot.waitUntil(attempt_shown, timeout=10000)
        assert attempts == sorted(attempts), "the attempt count only goes up"
        for text in (board.banner.text(), board.empty_label.text(), board.empty_text()):
            assert "s3cret" not in text and "kiosk:" not in text
        assert "\n" not in board.banner.text()
        assert board.banner.text().startswith("Cannot load the faculty list: the database server")
        assert board.empty_label.isVisible()
        assert board.empty_label.text().startswith("Cannot load the faculty list")
        assert "Retrying" in board.empty_label.text()
    finally:
        window.close()
        window.deleteLater()
    assert listener_threads() == []


def test_a_database_that_refuses_at_startup_loads_the_board_once_it_accepts(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any], pg_admin_url: str
) -> None:
    seed_board(db, 5)
    dbname = db.info.dbname
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
        window = KioskWindow(database_url)
        try:
            window.start()
            window.show()
            board = window.board
            qtbot.waitUntil(lambda: board.problem != "", timeout=10000)
            assert board.problem == "the database is not accepting connections right now"
            assert not window.model.loaded
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
            qtbot.waitUntil(lambda: window.model.loaded and board.live, timeout=20000)
            assert board.problem == "" and board.banner.isHidden()
            assert len(board.visible_names()) == 5
        finally:
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
            window.close()
            window.deleteLater()


def test_new_and_deactivated_faculty_come_and_go_in_board_order(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    ids = seed_board(db, 8)
    with running_kiosk(qtbot, database_url, options=DEPARTMENTS) as window:
        new_id = add_faculty(db, name="Dr. Anita Borg", department="Computer Science", room="CS-1")
        qtbot.waitUntil(lambda: window.model.row_of(new_id) is not None, timeout=1000)
        views = shown_views(window)
        assert views == sorted(views, key=lambda v: board_key(v, grouped=True))
        db.execute("UPDATE faculty SET active = false WHERE id = %s", (ids["Dr. Ada Lovelace"],))
        qtbot.waitUntil(
            lambda: "Dr. Ada Lovelace" not in window.board.visible_names(), timeout=1000
        )


def test_every_touch_target_is_at_least_48_px(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    seed_board(db, 30)
    with running_kiosk(qtbot, database_url, size=(800, 480), options=DEPARTMENTS) as window:
        qtbot.mouseClick(window.board.search_box, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(window.keyboard.isVisible, timeout=1000)
        targets = [
            w
            for w in window.findChildren(QWidget)
            if isinstance(w, QAbstractButton | QLineEdit) and w.isVisible()
        ]
        assert len(targets) >= 30  # controls, strip and keys
        for widget in targets:
            assert widget.width() >= theme.TOUCH, widget.objectName() or widget.text()
            assert widget.height() >= theme.TOUCH, widget.objectName() or widget.text()
        assert window.board.grid.verticalScrollBar().width() >= theme.TOUCH
        assert window.board.grid.cell_size.height() >= 2 * theme.TOUCH


def test_an_always_available_lecturer_shows_available_with_no_desk_and_since_is_dated(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    lone = add_faculty(db, name="Dr. Hedy Lamarr", status="away", desk_online=False)
    busy = add_faculty(db, name="Dr. Claude Shannon", status="busy", desk_online=True)
    db.execute("UPDATE faculty SET always_available = true WHERE id = %s", (lone,))
    since = db.execute("SELECT status_since FROM faculty WHERE id = %s", (busy,)).fetchone()
    assert since is not None
    local = since[0].astimezone()
    with running_kiosk(qtbot, database_url) as window:
        index = window.board.proxy.index(0, 0)
        assert index.data(FacultyRole.ID) == lone, "shown available, so first"
        assert index.data(FacultyRole.STATUS_TEXT) == "Available"
        assert index.data(FacultyRole.SINCE_TEXT) == "no desk unit"
        other = window.board.proxy.index(1, 0)
        assert other.data(FacultyRole.SINCE_TEXT) == f"busy since {local:%H:%M}"


def test_a_card_can_carry_an_action_that_reports_its_faculty(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    """The seam for consultation requests: a per-card button, disabled with a reason."""
    free = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    add_faculty(db, name="Dr. Alan Turing", status="away", desk_online=True)

    def request(view: FacultyView) -> CardAction:
        if view.shown_status == "available":
            return CardAction(key="request", label="Request consultation")
        return CardAction(
            key="request",
            label="Request consultation",
            enabled=False,
            reason=f"{view.shown_status.capitalize()} right now",
        )

    with running_kiosk(qtbot, database_url) as window:
        grid = window.board.grid
        plain_height = grid.cell_size.height()
        window.board.delegate.set_action_provider(request)
        grid.doItemsLayout()
        assert grid.cell_size.height() == plain_height + theme.ACTION_ROW
        pressed: list[tuple[int, str]] = []
        window.board.delegate.actionTriggered.connect(lambda i, k: pressed.append((i, k)))
        for row, expected in ((0, [(free, "request")]), (1, [])):
            pressed.clear()
            index = window.board.proxy.index(row, 0)
            cell = grid.visualRect(index)
            layout = window.board.delegate.layout_card(cell, index)
            assert layout.action is not None
            [action_run] = [r for r in layout.runs if r.part == "action"]
            assert action_run.text == ("Request consultation" if row == 0 else "Away right now")
            qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=layout.action.center())
            assert pressed == expected


def test_the_window_can_show_another_full_screen_view_and_come_back(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any]
) -> None:
    seed_board(db, 3)
    with running_kiosk(qtbot, database_url) as window:
        form = QLabel("a consultation form")
        window.show_view(form)
        assert window.pages.currentWidget() is form and not window.board.isVisible()
        window.show_board()
        assert window.board.isVisible()


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
    model = FacultyListModel()
    board = Board(model)
    qtbot.addWidget(board)
    board.show()
    assert board.banner.isVisible()
    assert board.banner.text() == "Connecting to live updates…"
    assert board.empty_label.text() == "Loading the faculty list…"
    model.apply_resync(())  # as the window does: the model first, then the board
    board.note_resynced(())
    assert board.banner.isHidden()
    assert board.empty_label.text() == "No faculty on the board yet"
    board.shutdown()


def test_a_painting_delegate_subclass_can_replace_the_cards(qtbot: QtBot) -> None:
    """What the kiosk benchmark does to record paints."""
    model = FacultyListModel()
    board = Board(model)
    qtbot.addWidget(board)
    painted: list[int] = []

    class Recording(CardDelegate):
        def paint(self, painter: Any, option: Any, index: Any) -> None:
            painted.append(int(index.data(FacultyRole.ID)))
            super().paint(painter, option, index)

    board.use_delegate(Recording(board))
    board.resize(1024, 600)
    board.show()
    model.apply_resync([view(1, "Dr. Ada Lovelace"), view(2, "Dr. Alan Turing")])
    board.note_resynced()
    qtbot.waitUntil(lambda: {1, 2} <= set(painted), timeout=2000)
    board.shutdown()
