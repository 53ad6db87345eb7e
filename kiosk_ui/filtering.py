"""``FacultyFilterModel``: the board's search box, department filter and
"available only" toggle, as a proxy over ``FacultyListModel``.

The proxy never sorts (the source is already in board order) and re-filters
a row by itself when its data changes (``dynamicSortFilter``), so a faculty
who stops being available leaves an "available only" board at once.

Search is case- and accent-insensitive; every word typed must appear in the
name or the department ("ada comp" finds Ada in Computer Science).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel

from consultease.domain import FacultyView, Status
from kiosk_ui import names
from kiosk_ui.model import FacultyListModel

AVAILABLE = Status.AVAILABLE.value


@lru_cache(maxsize=8192)
def fold(text: str) -> str:
    """Lower case without accents: ``"José"`` -> ``"jose"``."""
    return names.fold(text)


@dataclass(frozen=True, kw_only=True, slots=True)
class Summary:
    """The header line: how many of the faculty matching search and department are available."""

    available: int
    total: int

    def text(self) -> str:
        return f"{self.available} of {self.total} available"

    def short_text(self) -> str:
        return f"{self.available}/{self.total}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Tally:
    summary: Summary
    """As ``FacultyFilterModel.summary``: search and department, not "available only"."""
    searched: dict[str, Summary]
    """Per department, among the faculty matching the search."""
    everyone: dict[str, Summary]
    """Per department, among everyone."""


class FacultyFilterModel(QSortFilterProxyModel):
    """Search text, department and "available only" over a ``FacultyListModel``."""

    def __init__(self, source: FacultyListModel, parent: Any = None) -> None:
        super().__init__(parent)
        self._source = source
        self._words: tuple[str, ...] = ()
        self._search = ""
        self._department: str | None = None
        self._available_only = False
        self.setDynamicSortFilter(True)
        self.setSourceModel(source)

    # -- the filter settings ----------------------------------------------------

    @property
    def search_text(self) -> str:
        return self._search

    def set_search_text(self, text: str) -> None:
        if text == self._search:
            return
        self.beginFilterChange()
        self._search = text
        self._words = tuple(fold(text).split())
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    @property
    def department(self) -> str | None:
        """The department shown, or ``None`` for every department."""
        return self._department

    def set_department(self, department: str | None) -> None:
        if department == self._department:
            return
        self.beginFilterChange()
        self._department = department
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    @property
    def available_only(self) -> bool:
        return self._available_only

    def set_available_only(self, on: bool) -> None:
        if on == self._available_only:
            return
        self.beginFilterChange()
        self._available_only = on
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def is_filtering(self) -> bool:
        return bool(self._words) or self._department is not None or self._available_only

    def clear(self) -> None:
        """Back to every faculty (the idle reset)."""
        if not self.is_filtering():
            return
        self.beginFilterChange()
        self._search, self._words = "", ()
        self._department = None
        self._available_only = False
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    # -- deciding -----------------------------------------------------------------

    def matches_selection(self, view: FacultyView) -> bool:
        """Search and department, *not* the "available only" toggle."""
        if self._department is not None and view.department != self._department:
            return False
        return self._matches_search(view)

    def accepts(self, view: FacultyView) -> bool:
        if self._available_only and view.shown_status != AVAILABLE:
            return False
        return self.matches_selection(view)

    def filterAcceptsRow(
        self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex
    ) -> bool:
        if source_parent.isValid():
            return False
        return self.accepts(self._source.view_at(source_row))

    def summary(self) -> Summary:
        """Available among the faculty that match search and department.

        The "available only" toggle does not change it, so the header keeps
        saying "7 of 31 available" while the board shows only those 7.
        """
        available = total = 0
        for view in self._source.views():
            if self.matches_selection(view):
                total += 1
                available += view.shown_status == AVAILABLE
        return Summary(available=available, total=total)

    def row_departments(self) -> list[str]:
        """The department of every row of this proxy, in order (it never sorts)."""
        views = self._source.views()
        if not self.is_filtering():
            return [v.department for v in views]
        return [v.department for v in views if self.accepts(v)]

    def tally(self) -> Tally:
        """Every count the board shows, in one pass over the rows."""
        available = total = 0
        searched: dict[str, list[int]] = {}
        everyone: dict[str, list[int]] = {}
        words = self._words
        for view in self._source.views():
            free = view.always_available or (view.desk_online and view.status is Status.AVAILABLE)
            pair = everyone.setdefault(view.department, [0, 0])
            pair[0] += free
            pair[1] += 1
            if words and not self._matches_search(view):
                continue
            pair = searched.setdefault(view.department, [0, 0])
            pair[0] += free
            pair[1] += 1
            if self._department is None or view.department == self._department:
                available += free
                total += 1
        return Tally(
            summary=Summary(available=available, total=total),
            searched={d: Summary(available=a, total=t) for d, (a, t) in searched.items()},
            everyone={d: Summary(available=a, total=t) for d, (a, t) in everyone.items()},
        )

    def summaries_by_department(self, *, searched: bool = True) -> dict[str, Summary]:
        """Available and total per department: among the faculty matching the search
        (``searched``), else among everyone. Never narrowed by "available only"."""
        counts: dict[str, list[int]] = {}
        for view in self._source.views():
            if searched and not self._matches_search(view):
                continue
            pair = counts.setdefault(view.department, [0, 0])
            pair[0] += view.shown_status == AVAILABLE
            pair[1] += 1
        return {d: Summary(available=a, total=t) for d, (a, t) in counts.items()}

    def _matches_search(self, view: FacultyView) -> bool:
        if not self._words:
            return True
        haystack = fold(view.name) + " " + fold(view.department)
        return all(word in haystack for word in self._words)
