"""The board's model and filter proxy, fed plain ``FacultyView`` values (no database)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtTest import QSignalSpy
from pytestqt.modeltest import ModelTester

from kiosk_ui.filtering import FacultyFilterModel
from kiosk_ui.model import FacultyListModel, FacultyRole, board_key
from tests.ui.support import T0, view

CS, MATH, PHYS = "Computer Science", "Mathematics", "Physics"


def sample() -> list:
    return [
        view(1, "Dr. Grace Hopper", CS),
        view(2, "Dr. Ada Lovelace", CS, status="busy"),
        view(3, "Dr. Emmy Noether", MATH, status="away"),
        view(4, "Dr. Kurt Gödel", MATH, status="available", desk_online=False),
        view(5, "Dr. Marie Curie", PHYS),
        view(6, "Dr. José Martí", PHYS, status="busy"),
    ]


@pytest.fixture
def model() -> FacultyListModel:
    m = FacultyListModel(clock=lambda: T0 + timedelta(minutes=2))
    m.apply_resync(sample())
    return m


def names(model: FacultyListModel | FacultyFilterModel) -> list[str]:
    return [str(model.data(model.index(r, 0))) for r in range(model.rowCount())]


class Spy:
    """Counts a model's change signals, with the rows ``dataChanged`` named."""

    def __init__(self, model: FacultyListModel) -> None:
        self.data_changed: list[tuple[int, int]] = []
        self.resets = QSignalSpy(model.modelReset)
        self.inserted = QSignalSpy(model.rowsInserted)
        self.removed = QSignalSpy(model.rowsRemoved)
        self.moved = QSignalSpy(model.rowsMoved)
        model.dataChanged.connect(
            lambda top, bottom, _roles=(): self.data_changed.append((top.row(), bottom.row()))
        )


def test_rows_go_by_department_then_available_busy_away_offline_then_surname(
    model: FacultyListModel,
) -> None:
    assert names(model) == [
        "Dr. Grace Hopper",  # Computer Science: available
        "Dr. Ada Lovelace",  # busy
        "Dr. Emmy Noether",  # Mathematics: away
        "Dr. Kurt Gödel",  # available, but the desk is offline: last
        "Dr. Marie Curie",  # Physics: available
        "Dr. José Martí",  # busy
    ]


def test_within_a_status_rows_sort_by_surname_not_title_or_first_name() -> None:
    m = FacultyListModel(grouped=False)
    m.apply_resync(
        [
            view(1, "Prof. Alan Zuniga"),
            view(2, "Dr. Zoe Abbott"),
            view(3, "Engr. Mia dela Cruz"),
            view(4, "Dr. Kurt Gödel"),
            view(5, "Dr. Ben Godwin"),
            view(6, "Dr. Amy Busy", status="busy"),
            view(7, "Dr. Aaron Offline", desk_online=False),
            view(8, "Dr. Adam Away", status="away"),
        ]
    )
    assert names(m) == [
        "Dr. Zoe Abbott",
        "Engr. Mia dela Cruz",
        "Dr. Kurt Gödel",
        "Dr. Ben Godwin",
        "Prof. Alan Zuniga",
        "Dr. Amy Busy",
        "Dr. Adam Away",
        "Dr. Aaron Offline",
    ]


def test_compact_order_is_status_first_across_departments(model: FacultyListModel) -> None:
    model.set_grouped(False)
    assert names(model) == [
        "Dr. Marie Curie",
        "Dr. Grace Hopper",
        "Dr. Ada Lovelace",
        "Dr. José Martí",
        "Dr. Emmy Noether",
        "Dr. Kurt Gödel",
    ]


def test_switching_the_order_is_a_layout_change_that_keeps_persistent_indexes(
    qtmodeltester: ModelTester, model: FacultyListModel
) -> None:
    kept = QPersistentModelIndex(model.index(model.row_of(6) or 0))
    resets = QSignalSpy(model.modelReset)
    model.set_grouped(False)
    assert resets.count() == 0
    assert kept.row() == model.row_of(6) and kept.data() == "Dr. José Martí"
    qtmodeltester.check(model)


def test_a_status_change_moves_the_card_to_its_new_place_without_a_reset(
    model: FacultyListModel,
) -> None:
    spy = Spy(model)
    model.apply_change(view(2, "Dr. Ada Lovelace", CS, status="available", version=2))
    assert names(model)[:2] == ["Dr. Grace Hopper", "Dr. Ada Lovelace"]  # H before L
    model.apply_change(view(1, "Dr. Grace Hopper", CS, status="away", version=2))
    assert names(model)[:2] == ["Dr. Ada Lovelace", "Dr. Grace Hopper"]
    # One row out and in (not a move: see FacultyListModel._place), never a reset.
    assert (spy.removed.count(), spy.inserted.count(), spy.moved.count()) == (1, 1, 0)
    assert spy.resets.count() == 0
    assert spy.data_changed == [(1, 1)], "the first change kept its place"


def test_an_always_available_lecturer_shows_available_with_no_desk(
    model: FacultyListModel,
) -> None:
    model.apply_change(
        view(
            3,
            "Dr. Emmy Noether",
            MATH,
            status="away",
            desk_online=False,
            version=2,
            always_available=True,
        )
    )
    index = model.index(model.row_of(3) or 0)
    assert index.data(FacultyRole.STATUS) == "available"
    assert index.data(FacultyRole.SINCE_TEXT) == "no desk unit"
    assert names(model)[2] == "Dr. Emmy Noether", "first in Mathematics now"


@pytest.mark.parametrize("force_py", [False, True], ids=["qt-tester", "python-tester"])
def test_model_passes_qtmodeltester_with_rows(
    qtmodeltester: ModelTester, model: FacultyListModel, force_py: bool
) -> None:
    qtmodeltester.check(model, force_py=force_py)


def test_model_passes_qtmodeltester_through_every_kind_of_update(
    qtmodeltester: ModelTester, model: FacultyListModel
) -> None:
    qtmodeltester.check(model)
    model.apply_change(view(3, "Dr. Emmy Noether", MATH, status="available", version=2))
    model.apply_change(view(7, "Dr. Alan Turing", CS, version=1))
    model.apply_change(view(1, "Dr. Zoe Hopper", CS, version=2))  # moves within CS
    model.apply_change(view(5, "Dr. Marie Curie", "Chemistry", version=2))  # moves to the top
    model.apply_removal(2)
    model.apply_change(view(6, "Dr. José Martí", PHYS, version=2, active=False))
    model.apply_resync([view(8, "Dr. Lise Meitner", PHYS), view(3, "Dr. Emmy Noether", MATH)])
    qtmodeltester.check(model)
    assert names(model) == ["Dr. Emmy Noether", "Dr. Lise Meitner"]


def test_filter_proxy_passes_qtmodeltester(
    qtmodeltester: ModelTester, model: FacultyListModel
) -> None:
    proxy = FacultyFilterModel(model)
    proxy.set_search_text("dr")
    proxy.set_available_only(True)
    qtmodeltester.check(proxy)
    model.apply_change(view(3, "Dr. Emmy Noether", MATH, status="available", version=2))
    qtmodeltester.check(proxy)


def test_a_change_emits_one_data_changed_for_that_row_only(model: FacultyListModel) -> None:
    spy = Spy(model)
    row = model.row_of(3)
    model.apply_change(view(3, "Dr. Emmy Noether", MATH, status="available", version=2))
    assert spy.data_changed == [(row, row)]
    assert (spy.resets.count(), spy.inserted.count(), spy.removed.count()) == (0, 0, 0)
    assert model.index(row).data(FacultyRole.STATUS_TEXT) == "Available"


def test_an_older_or_equal_version_never_replaces_a_newer_row(model: FacultyListModel) -> None:
    model.apply_change(view(3, "Dr. Emmy Noether", MATH, status="busy", version=5))
    spy = Spy(model)
    model.apply_change(view(3, "Dr. Emmy Noether", MATH, status="available", version=4))
    model.apply_change(view(3, "Dr. Emmy Noether", MATH, status="available", version=5))
    assert spy.data_changed == []
    assert model.view_at(model.row_of(3) or 0).status.value == "busy"


def test_a_new_faculty_is_inserted_where_the_order_says(model: FacultyListModel) -> None:
    spy = Spy(model)
    model.apply_change(view(9, "Dr. Barbara Liskov", CS))
    assert spy.inserted.count() == 1
    assert spy.inserted.at(0)[1:] == [1, 1]
    assert names(model)[:3] == ["Dr. Grace Hopper", "Dr. Barbara Liskov", "Dr. Ada Lovelace"]
    assert spy.resets.count() == 0


def test_a_renamed_faculty_moves_to_its_new_place(model: FacultyListModel) -> None:
    spy = Spy(model)
    model.apply_change(view(5, "Dr. Marie Curie", "Biology", version=2))
    assert (spy.removed.count(), spy.inserted.count()) == (1, 1)
    assert spy.inserted.at(0)[1:] == [0, 0]
    assert names(model)[0] == "Dr. Marie Curie"
    assert model.row_of(5) == 0
    assert [model.row_of(v.id) for v in model.views()] == list(range(6))


def test_removed_and_deactivated_faculty_leave_the_board(model: FacultyListModel) -> None:
    spy = Spy(model)
    model.apply_removal(1)
    model.apply_change(view(4, "Dr. Kurt Gödel", MATH, version=2, active=False))
    model.apply_removal(99)  # unknown: nothing happens
    assert spy.removed.count() == 2
    assert 1 not in {v.id for v in model.views()}
    assert model.row_of(4) is None
    assert model.rowCount() == 4


def test_only_the_first_load_resets_and_a_resync_is_applied_as_a_diff() -> None:
    m = FacultyListModel()
    resets = QSignalSpy(m.modelReset)
    m.apply_resync(sample())
    assert resets.count() == 1 and m.loaded

    spy = Spy(m)
    fresh = [v for v in sample() if v.id != 2]  # 2 removed while we were away
    fresh[0] = view(1, "Dr. Grace Hopper", CS, status="away", version=3)  # changed
    fresh.append(view(7, "Dr. Alan Turing", CS))  # added
    m.apply_resync(fresh)
    assert spy.resets.count() == 0
    # 2 gone, 7 new, and 1 moved behind Lovelace (out and in): nothing else touched.
    assert (spy.removed.count(), spy.inserted.count()) == (2, 2)
    assert spy.data_changed == []
    assert m.views() == sorted(fresh, key=lambda v: board_key(v, grouped=True))

    unchanged = Spy(m)
    m.apply_resync(fresh)
    assert unchanged.data_changed == [] and unchanged.inserted.count() == 0


def test_an_offline_desk_shows_offline_whatever_its_status(model: FacultyListModel) -> None:
    index = model.index(model.row_of(4) or 0)
    assert index.data(FacultyRole.STATUS) == "offline"
    assert index.data(FacultyRole.STATUS_TEXT) == "Offline"
    assert "Offline" in index.data(Qt.ItemDataRole.AccessibleTextRole)


def test_since_texts_say_what_the_status_means_and_follow_the_day() -> None:
    now = [T0 + timedelta(minutes=5)]
    m = FacultyListModel(clock=lambda: now[0])
    since = T0 - timedelta(minutes=1)
    m.apply_resync(
        [
            view(1, "A", updated_at=T0, status_since=since),
            view(2, "B", status="busy", updated_at=T0, status_since=since),
        ]
    )
    m.refresh_times()
    local = since.astimezone()
    clock = f"{local.hour:02d}:{local.minute:02d}"
    assert m.index(0).data(FacultyRole.SINCE_TEXT) == f"available since {clock}"
    assert m.index(1).data(FacultyRole.SINCE_TEXT) == f"busy since {clock}"
    now[0] = since + timedelta(days=1)
    spy = Spy(m)
    m.refresh_times()
    assert spy.data_changed == [(0, 1)]
    assert m.index(0).data(FacultyRole.SINCE_TEXT) == f"available since yesterday {clock}"


def test_search_is_case_and_accent_insensitive_and_matches_every_word(
    model: FacultyListModel,
) -> None:
    proxy = FacultyFilterModel(model)
    proxy.set_search_text("jose")
    assert names(proxy) == ["Dr. José Martí"]
    proxy.set_search_text("MATH emmy")
    assert names(proxy) == ["Dr. Emmy Noether"]
    proxy.set_search_text("physics")
    assert names(proxy) == ["Dr. Marie Curie", "Dr. José Martí"]
    proxy.set_search_text("")
    assert proxy.rowCount() == 6


def test_department_and_available_only_narrow_and_the_summary_ignores_the_toggle(
    model: FacultyListModel,
) -> None:
    proxy = FacultyFilterModel(model)
    assert proxy.summary().text() == "2 of 6 available"  # Gödel's desk is offline
    proxy.set_department(CS)
    assert names(proxy) == ["Dr. Grace Hopper", "Dr. Ada Lovelace"]
    assert proxy.summary().text() == "1 of 2 available"
    proxy.set_available_only(True)
    assert names(proxy) == ["Dr. Grace Hopper"]
    assert proxy.summary().text() == "1 of 2 available"
    proxy.set_department(None)
    assert names(proxy) == ["Dr. Grace Hopper", "Dr. Marie Curie"]
    proxy.clear()
    assert proxy.rowCount() == 6 and not proxy.is_filtering()


def test_available_only_follows_live_changes(model: FacultyListModel) -> None:
    proxy = FacultyFilterModel(model)
    proxy.set_available_only(True)
    model.apply_change(view(3, "Dr. Emmy Noether", MATH, status="available", version=2))
    assert "Dr. Emmy Noether" in names(proxy)
    model.apply_change(view(1, "Dr. Grace Hopper", CS, status="busy", version=2))
    assert "Dr. Grace Hopper" not in names(proxy)
    assert proxy.index(0, 0).parent() == QModelIndex()
