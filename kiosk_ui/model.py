"""``FacultyListModel``: the board's rows, one ``FacultyView`` each, in board order.

The model adapts plain state (frozen ``FacultyView`` values) to Qt. It is
changed only on the GUI thread, by the bridge's queued signals, and always
in the smallest step that describes the change:

* a changed row (same place in the order) emits ``dataChanged`` for that row only;
* a row whose place in the order changed (a status change, a rename) is removed
  and inserted at its new place (see ``_place`` for why not ``beginMoveRows``);
* a new or removed faculty is inserted or removed where the order says;
* a resync is diffed against the current rows with the steps above, so
  views keep their scroll position; ``beginResetModel`` is used only for the
  very first load.

Rows are kept in board order (``board_key``): who is available first, then busy,
away and offline, each by surname; when ``grouped``, by department first (the
board draws a heading per department). So a status change moves its card, never
with a reset.
"""

from __future__ import annotations

import bisect
import enum
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)

from consultease.domain import FacultyView
from kiosk_ui.names import fold, surname_key
from kiosk_ui.qtcompat import emit
from kiosk_ui.theme import STATUS_RANK, since_text, status_style

log = logging.getLogger(__name__)

AnyIndex = QModelIndex | QPersistentModelIndex


class FacultyRole(enum.IntEnum):
    """Data roles of ``FacultyListModel`` (``Qt.DisplayRole`` is the name)."""

    VIEW = Qt.ItemDataRole.UserRole + 1
    """The whole ``FacultyView``."""
    ID = Qt.ItemDataRole.UserRole + 2
    NAME = Qt.ItemDataRole.UserRole + 3
    DEPARTMENT = Qt.ItemDataRole.UserRole + 4
    ROOM = Qt.ItemDataRole.UserRole + 5
    """The room, or ``""`` when none is set."""
    STATUS = Qt.ItemDataRole.UserRole + 6
    """``shown_status``: ``available``, ``busy``, ``away`` or ``offline``."""
    STATUS_TEXT = Qt.ItemDataRole.UserRole + 7
    """The status as a student reads it: ``Available``, ``Offline``…"""
    UPDATED_AT = Qt.ItemDataRole.UserRole + 8
    SINCE_TEXT = Qt.ItemDataRole.UserRole + 9
    """``available since 11:02``, against the model's clock (see ``refresh_times``)."""
    VERSION = Qt.ItemDataRole.UserRole + 10
    ALWAYS_AVAILABLE = Qt.ItemDataRole.UserRole + 11
    SINCE = Qt.ItemDataRole.UserRole + 12
    """When the shown status began (``status_since``, else ``updated_at``)."""


ROLE_NAMES: dict[int, QByteArray] = {
    int(Qt.ItemDataRole.DisplayRole): QByteArray(b"display"),
    **{int(role): QByteArray(role.name.lower().encode()) for role in FacultyRole},
}


def _accessible_text(view: FacultyView) -> str:
    room = f", room {view.room}" if view.room else ""
    return f"{view.name}, {view.department}{room}: {status_style(view.shown_status).label}"


def _since(view: FacultyView) -> datetime:
    return view.status_since if view.status_since is not None else view.updated_at


_ROLE_GETTERS: dict[int, Callable[[FacultyView], Any]] = {
    int(Qt.ItemDataRole.DisplayRole): lambda v: v.name,
    int(Qt.ItemDataRole.AccessibleTextRole): _accessible_text,
    FacultyRole.VIEW: lambda v: v,
    FacultyRole.ID: lambda v: v.id,
    FacultyRole.NAME: lambda v: v.name,
    FacultyRole.DEPARTMENT: lambda v: v.department,
    FacultyRole.ROOM: lambda v: v.room or "",
    FacultyRole.STATUS: lambda v: v.shown_status,
    FacultyRole.STATUS_TEXT: lambda v: status_style(v.shown_status).label,
    FacultyRole.UPDATED_AT: lambda v: v.updated_at,
    FacultyRole.VERSION: lambda v: v.version,
    FacultyRole.ALWAYS_AVAILABLE: lambda v: v.always_available,
    FacultyRole.SINCE: _since,
}
"""How each role reads a row (``SINCE_TEXT`` also needs the model's clock)."""


BoardKey = tuple[Any, ...]


def board_key(view: FacultyView, *, grouped: bool) -> BoardKey:
    """Board order: status (available first), then surname; department first if grouped."""
    rank = STATUS_RANK.get(view.shown_status, len(STATUS_RANK))
    person = (*surname_key(view.name), fold(view.name), view.id)
    if grouped:
        return (fold(view.department), view.department, rank, *person)
    return (rank, *person)


def utc_now() -> datetime:
    return datetime.now(UTC)


class FacultyListModel(QAbstractListModel):
    """Active faculty as a flat list in board order (see ``board_key``)."""

    def __init__(
        self,
        parent: Any = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        grouped: bool = True,
    ) -> None:
        super().__init__(parent)
        self._grouped = grouped
        self._rows: list[FacultyView] = []
        self._keys: list[BoardKey] = []  # board_key of each row, for bisect
        self._row_of: dict[int, int] = {}
        self._clock = clock
        self._now = clock()
        self._loaded = False

    # -- Qt's read interface ---------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.parent().isValid() or index.column() != 0:
            return None
        row = index.row()
        if not 0 <= row < len(self._rows):
            return None
        if role == FacultyRole.SINCE_TEXT:
            view = self._rows[row]
            return since_text(
                view.shown_status, _since(view), self._now, always_available=view.always_available
            )
        getter = _ROLE_GETTERS.get(role)
        return None if getter is None else getter(self._rows[row])

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemNeverHasChildren

    def roleNames(self) -> dict[int, QByteArray]:
        return dict(ROLE_NAMES)

    # -- plain reads --------------------------------------------------------------------

    def view_at(self, row: int) -> FacultyView:
        return self._rows[row]

    def views(self) -> list[FacultyView]:
        return list(self._rows)

    def row_of(self, faculty_id: int) -> int | None:
        return self._row_of.get(faculty_id)

    def departments(self) -> list[str]:
        """Departments present, alphabetically, each once."""
        return sorted({view.department for view in self._rows}, key=lambda d: (fold(d), d))

    @property
    def grouped(self) -> bool:
        """Whether rows are ordered by department first (a heading per department)."""
        return self._grouped

    def set_grouped(self, grouped: bool) -> None:
        """Reorder the rows by department first, or not (a layout change, not a reset)."""
        if grouped == self._grouped:
            return
        emit(self.layoutAboutToBeChanged)
        old = self.persistentIndexList()
        old_ids = [self._rows[index.row()].id for index in old]
        self._grouped = grouped
        self._set_rows(sorted(self._rows, key=self._key))
        self.changePersistentIndexList(old, [self.index(self._row_of[i]) for i in old_ids])
        emit(self.layoutChanged)

    @property
    def loaded(self) -> bool:
        """True once the first full picture arrived."""
        return self._loaded

    # -- updates (GUI thread only) --------------------------------------------------------

    def apply_resync(self, views: Iterable[FacultyView]) -> None:
        """Make the rows exactly ``views`` (a full reload from the database).

        The first load resets the model; later ones are applied row by row.
        """
        fresh = sorted((v for v in views if v.active), key=self._key)
        if not self._loaded and not self._rows:
            self.beginResetModel()
            self._set_rows(fresh)
            self._loaded = True
            self.endResetModel()
            return
        self._loaded = True
        wanted = {v.id: v for v in fresh}
        for row in range(len(self._rows) - 1, -1, -1):
            if self._rows[row].id not in wanted:
                self._remove_row(row)
        for view in fresh:
            current = self._current(view.id)
            if current is None or current != view:
                self._place(view)

    def apply_change(self, view: FacultyView) -> None:
        """A faculty was added or changed. Older versions than the one shown are ignored."""
        if not view.active:
            self.apply_removal(view.id)
            return
        current = self._current(view.id)
        if current is not None and view.version <= current.version:
            return
        self._place(view)

    def apply_removal(self, faculty_id: int) -> None:
        row = self._row_of.get(faculty_id)
        if row is not None:
            self._remove_row(row)

    def refresh_times(self) -> None:
        """Recompute every ``since`` text against the clock (once a minute: "yesterday")."""
        self._now = self._clock()
        if self._rows:
            emit(
                self.dataChanged,
                self.index(0),
                self.index(len(self._rows) - 1),
                [FacultyRole.SINCE_TEXT],
            )

    # -- internals ---------------------------------------------------------------------------

    def _key(self, view: FacultyView) -> BoardKey:
        return board_key(view, grouped=self._grouped)

    def _current(self, faculty_id: int) -> FacultyView | None:
        row = self._row_of.get(faculty_id)
        return None if row is None else self._rows[row]

    def _place(self, view: FacultyView) -> None:
        """Insert ``view``, or replace its row, moving it when its sort position changed."""
        row = self._row_of.get(view.id)
        key = self._key(view)
        if row is None:
            target = bisect.bisect_left(self._keys, key)
            self.beginInsertRows(QModelIndex(), target, target)
            self._rows.insert(target, view)
            self._keys.insert(target, key)
            self._reindex(target)
            self.endInsertRows()
            return
        if self._keys[row] != key:
            # Where the row goes among the *other* rows.
            others = self._keys[:row] + self._keys[row + 1 :]
            target = bisect.bisect_left(others, key)
            if target != row:
                # Removed and inserted, not moved: QSortFilterProxyModel answers a
                # source move by filtering every row again (all of them, in Python),
                # but a removal and an insertion one row each. Status changes move
                # cards all day, so this is the difference between 50 ms and 0.5 ms.
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._rows[row]
                del self._keys[row]
                self.endRemoveRows()
                self.beginInsertRows(QModelIndex(), target, target)
                self._rows.insert(target, view)
                self._keys.insert(target, key)
                # Only the rows between the two places changed number.
                self._reindex(min(row, target), max(row, target) + 1)
                self.endInsertRows()
                return
        self._rows[row] = view
        self._keys[row] = key
        changed = self.index(row)
        emit(self.dataChanged, changed, changed)

    def _remove_row(self, row: int) -> None:
        self.beginRemoveRows(QModelIndex(), row, row)
        view = self._rows.pop(row)
        del self._keys[row]
        del self._row_of[view.id]
        self._reindex(row)
        self.endRemoveRows()

    def _set_rows(self, views: Sequence[FacultyView]) -> None:
        self._rows = list(views)
        self._keys = [self._key(v) for v in self._rows]
        self._row_of = {}
        self._reindex(0)

    def _reindex(self, start: int, stop: int | None = None) -> None:
        rows = self._rows
        row_of = self._row_of
        for row in range(start, len(rows) if stop is None else stop):
            row_of[rows[row].id] = row
