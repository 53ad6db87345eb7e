"""``CardGrid``: the board's cards in columns, with a heading per department.

A small ``QAbstractItemView`` of its own (QListView cannot put a full-width
heading between wrapping rows of cards). The layout is plain arithmetic over
the rows of the board's proxy model:

* columns follow the width (``theme.columns_for``): a bigger screen gets more
  columns, not bigger cards; cells share the width exactly;
* when ``grouped``, a heading ("Physics · 3 of 8 available") opens each run of
  rows of one department (the model sorts by department first then);
* the layout is recomputed once the event loop is idle after structural changes
  (insert, remove, move, reset, resize), so a burst costs one layout; a
  ``dataChanged`` repaints just that card; the board recounts the headings with
  its other counts (``refresh_headings``), a few times a second at most.

Only cards inside the viewport are painted. The delegate gets every mouse
event first (``editorEvent``), so a card's action button works; ``QScroller``
gives flick scrolling on a touchscreen.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, QRect, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPaintEvent, QRegion, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QStyleOptionViewItem,
    QWidget,
)

from kiosk_ui import theme
from kiosk_ui.delegate import CardDelegate
from kiosk_ui.model import FacultyRole
from kiosk_ui.widgets import flick_scrolling

AnyIndex = QModelIndex | QPersistentModelIndex
HeadingCounts = Callable[[], dict[str, Any]]
"""Department -> something with ``.text()`` ("3 of 8 available")."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Heading:
    top: int
    department: str


class CardGrid(QAbstractItemView):
    """Cards in columns that follow the width; a heading per department when grouped."""

    def __init__(self, delegate: CardDelegate, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("grid")
        self._delegate = delegate
        self._grouped = False
        self._heading_counts: HeadingCounts | None = None
        self._row_departments: Callable[[], list[str]] | None = None
        self._counts: dict[str, Any] = {}
        self._dirty = True
        self._tops: list[int] = []
        self._lefts: list[int] = []
        self._headings: list[Heading] = []
        self._cell = QSize(1, 1)
        self._columns = 1
        self._content_height = 0
        self._bottom_margin = 0
        self._shown: tuple[object, ...] = ()
        self._relayout = QTimer(self)
        self._relayout.setSingleShot(True)
        self._relayout.setInterval(0)
        self._relayout.timeout.connect(self._relayout_now)
        self.setItemDelegate(delegate)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Always on: a scroll bar that comes and goes would change the width,
        # the columns and the layout under the user's finger.
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.setFrameShape(QFrame.Shape.NoFrame)
        # The scroll bar's own minimum (~170 px) must not stop the window fitting an
        # 800x480 screen with the on-screen keyboard up.
        self.setMinimumHeight(theme.TOUCH)
        flick_scrolling(self)

    # -- configuration ----------------------------------------------------------------

    def setModel(self, model: Any) -> None:
        old = self.model()
        if old is not None:
            for signal in self._structure_signals(old):
                signal.disconnect(self._invalidate)
        super().setModel(model)
        if model is not None:
            for signal in self._structure_signals(model):
                signal.connect(self._invalidate)
        self._invalidate()

    @staticmethod
    def _structure_signals(model: Any) -> Sequence[Any]:
        return (
            model.rowsInserted,
            model.rowsRemoved,
            model.rowsMoved,
            model.layoutChanged,
            model.modelReset,
        )

    def set_card_delegate(self, delegate: CardDelegate) -> None:
        """Draw cards with another delegate (a subclass, say, that records paints)."""
        self._delegate = delegate
        self.setItemDelegate(delegate)
        self._invalidate()

    @property
    def card_delegate(self) -> CardDelegate:
        return self._delegate

    def set_grouped(
        self,
        grouped: bool,
        counts: HeadingCounts | None = None,
        departments: Callable[[], list[str]] | None = None,
    ) -> None:
        """A heading per department (the model must sort by department first).

        ``departments`` (optional) gives the department of every row at once, which is
        much cheaper than asking the model row by row at each layout.
        """
        self._grouped = grouped
        self._heading_counts = counts
        self._row_departments = departments
        self._invalidate()

    def set_metrics(self, metrics: theme.CardMetrics) -> None:
        self._delegate.set_metrics(metrics)
        self._invalidate()

    def set_bottom_margin(self, pixels: int) -> None:
        """Room to scroll the last cards above an overlay (the banner, say)."""
        if pixels != self._bottom_margin:
            self._bottom_margin = pixels
            self._invalidate()

    # -- what is where (for the view machinery, and for tests) -------------------------

    @property
    def columns(self) -> int:
        self._ensure_layout()
        return self._columns

    @property
    def cell_size(self) -> QSize:
        self._ensure_layout()
        return QSize(self._cell)

    def headings(self) -> list[tuple[str, str]]:
        """(department, count text) of every heading, top to bottom."""
        self._ensure_layout()
        return [(h.department, self._count_text(h.department)) for h in self._headings]

    def heading_rect(self, position: int) -> QRect:
        """Where heading ``position`` is, in viewport coordinates."""
        self._ensure_layout()
        heading = self._headings[position]
        height = self._delegate.metrics.heading_height
        return QRect(0, heading.top - self.verticalOffset(), self.viewport().width(), height)

    def visualRect(self, index: AnyIndex) -> QRect:
        # While a relayout is queued (it repaints whatever moved), Qt's own calls get
        # the last layout: laying out again for each would cost O(rows) per change.
        if not self._relayout.isActive():
            self._ensure_layout()
        if not index.isValid() or not 0 <= index.row() < len(self._tops):
            return QRect()
        row = index.row()
        return QRect(
            self._lefts[row],
            self._tops[row] - self.verticalOffset(),
            self._cell.width(),
            self._cell.height(),
        )

    def indexAt(self, point: QPoint) -> QModelIndex:
        if not self._relayout.isActive():
            self._ensure_layout()
        model = self.model()
        if model is None or not self._tops:
            return QModelIndex()
        y = point.y() + self.verticalOffset()
        last = bisect.bisect_right(self._tops, y) - 1
        if last < 0:
            return QModelIndex()
        top = self._tops[last]
        if y >= top + self._cell.height():
            return QModelIndex()  # on a heading, or below the last row
        first = bisect.bisect_left(self._tops, top)
        row = first + point.x() // max(1, self._cell.width())
        if row > last or point.x() < 0:
            return QModelIndex()
        return model.index(row, 0, self.rootIndex())

    def scrollTo(
        self,
        index: AnyIndex,
        hint: QAbstractItemView.ScrollHint = QAbstractItemView.ScrollHint.EnsureVisible,
    ) -> None:
        rect = self.visualRect(index)
        if not rect.isValid():
            return
        bar = self.verticalScrollBar()
        if rect.top() < 0 or hint == QAbstractItemView.ScrollHint.PositionAtTop:
            bar.setValue(bar.value() + rect.top())
        elif rect.bottom() > self.viewport().height():
            bar.setValue(bar.value() + rect.bottom() - self.viewport().height() + 1)

    def moveCursor(
        self, cursorAction: QAbstractItemView.CursorAction, modifiers: Qt.KeyboardModifier
    ) -> QModelIndex:
        return QModelIndex()  # cards are not a keyboard-navigated list

    def horizontalOffset(self) -> int:
        return 0

    def verticalOffset(self) -> int:
        return int(self.verticalScrollBar().value())

    def isIndexHidden(self, index: AnyIndex) -> bool:
        return False

    def setSelection(self, rect: QRect, command: Any) -> None:
        return  # nothing is selectable

    def visualRegionForSelection(self, selection: Any) -> QRegion:
        return QRegion()

    # -- layout ----------------------------------------------------------------------------

    def _invalidate(self, *_args: object) -> None:
        """Lay out again, once, when the event loop is next idle: a burst of moves (a
        status change moves its card) costs one layout, not one each."""
        self._dirty = True
        if not self._relayout.isActive():
            self._relayout.start()

    def _relayout_now(self) -> None:
        self.updateGeometries()
        shown = self._visible_signature()
        if shown != self._shown:
            # Something on screen moved, came or went: repaint it all. A card that
            # moved elsewhere off screen (most status changes on a long board) costs
            # no paint at all.
            self._shown = shown
            self.viewport().update()

    def _visible_signature(self) -> tuple[object, ...]:
        """What the viewport shows: the rows (id, version) at their places, the headings
        and the scroll position."""
        model = self.model()
        if model is None or not self._tops:
            return (self.verticalOffset(), len(self._headings))
        offset, height = self.verticalOffset(), self.viewport().height()
        first = max(0, bisect.bisect_right(self._tops, offset - self._cell.height()))
        last = min(len(self._tops), bisect.bisect_right(self._tops, offset + height))
        root = self.rootIndex()
        rows = tuple(
            (
                self._tops[row],
                self._lefts[row],
                model.index(row, 0, root).data(FacultyRole.ID),
                model.index(row, 0, root).data(FacultyRole.VERSION),
            )
            for row in range(first, last)
        )
        headings = tuple(
            (h.top, h.department) for h in self._headings if offset - 60 < h.top < offset + height
        )
        return (offset, self._cell.width(), self._cell.height(), rows, headings)

    def doItemsLayout(self) -> None:
        # Qt calls this on every layoutChanged; lay out once, when idle, instead.
        self._invalidate()

    def _ensure_layout(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        model = self.model()
        rows = model.rowCount(self.rootIndex()) if model is not None else 0
        metrics = self._delegate.metrics
        width = max(1, self.viewport().width())
        self._columns = columns = theme.columns_for(width, metrics)
        self._cell = QSize(width // columns, self._delegate.card_height())
        self._delegate.set_cell(self._cell)
        cell_w, cell_h = self._cell.width(), self._cell.height()
        tops = [0] * rows
        lefts = [0] * rows
        headings: list[Heading] = []
        y = column = 0
        group: object = object()
        departments: list[str] | None = None
        if self._grouped and model is not None:
            departments = self._row_departments() if self._row_departments else None
            if departments is None or len(departments) != rows:
                root = self.rootIndex()
                departments = [
                    str(model.index(row, 0, root).data(FacultyRole.DEPARTMENT))
                    for row in range(rows)
                ]
        for row in range(rows):
            if departments is not None:
                department = departments[row]
                if department != group:
                    if column:
                        y += cell_h
                        column = 0
                    group = department
                    headings.append(Heading(top=y, department=str(department)))
                    y += metrics.heading_height
            tops[row] = y
            lefts[row] = column * cell_w
            column += 1
            if column == columns:
                column = 0
                y += cell_h
        if column:
            y += cell_h
        self._tops, self._lefts, self._headings = tops, lefts, headings
        self._content_height = y + self._bottom_margin
        self._counts = self._heading_counts() if self._grouped and self._heading_counts else {}
        self._update_scroll_range()

    def _update_scroll_range(self) -> None:
        bar = self.verticalScrollBar()
        page = self.viewport().height()
        bar.setRange(0, max(0, self._content_height - page))
        bar.setPageStep(max(1, page))
        bar.setSingleStep(max(1, self._cell.height() // 4))

    def updateGeometries(self) -> None:
        self._ensure_layout()
        self._update_scroll_range()
        super().updateGeometries()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._invalidate()

    def dataChanged(
        self,
        topLeft: AnyIndex,
        bottomRight: AnyIndex,
        roles: Sequence[int] = (),
    ) -> None:
        if self._dirty:
            # A layout is pending (the row may have moved): it repaints everything.
            return
        super().dataChanged(topLeft, bottomRight, roles)

    def refresh_headings(self) -> None:
        """Take new heading counts (the board calls this after recounting)."""
        if self._heading_counts is None or not self._grouped:
            return
        self._counts = self._heading_counts()
        height = self._delegate.metrics.heading_height
        for heading in self._headings:
            top = heading.top - self.verticalOffset()
            if -height < top < self.viewport().height():
                self.viewport().update(QRect(0, top, self.viewport().width(), height))

    # -- painting --------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        self._ensure_layout()
        if event.rect() == self.viewport().rect():
            self._shown = self._visible_signature()
        model = self.model()
        painter = QPainter(self.viewport())
        try:
            offset = self.verticalOffset()
            visible = event.rect()
            for position in range(len(self._headings)):
                rect = self.heading_rect(position)
                if rect.intersects(visible):
                    self._paint_heading(painter, rect, self._headings[position].department)
            if model is None or not self._tops:
                return
            first = max(
                0, bisect.bisect_right(self._tops, offset + visible.top() - self._cell.height())
            )
            last = bisect.bisect_right(self._tops, offset + visible.bottom())
            option = QStyleOptionViewItem()
            self.initViewItemOption(option)
            for row in range(first, min(last, len(self._tops))):
                index = model.index(row, 0, self.rootIndex())
                option.rect = self.visualRect(index)
                if option.rect.intersects(visible):
                    self._delegate.paint(painter, option, index)
        finally:
            painter.end()

    def _count_text(self, department: str) -> str:
        summary = self._counts.get(department)
        return summary.text() if summary is not None else ""

    def _paint_heading(self, painter: QPainter, rect: QRect, department: str) -> None:
        metrics = self._delegate.metrics
        pad = metrics.pad
        inner = rect.adjusted(pad, 0, -pad, 0)
        count = self._count_text(department)
        title_font = QFont()
        title_font.setPixelSize(metrics.heading_px)
        title_font.setBold(True)
        count_font = QFont()
        count_font.setPixelSize(max(1, round(metrics.heading_px * 0.85)))
        count_width = QFontMetrics(count_font).horizontalAdvance(count)
        painter.save()
        painter.setPen(QColor(theme.MUTED))
        painter.setFont(count_font)
        align = Qt.AlignmentFlag.AlignVCenter
        painter.drawText(inner, int(Qt.AlignmentFlag.AlignRight | align), count)
        title = QFontMetrics(title_font).elidedText(
            department, Qt.TextElideMode.ElideRight, max(0, inner.width() - count_width - pad)
        )
        painter.setFont(title_font)
        painter.setPen(QColor(theme.INK))
        painter.drawText(inner, int(Qt.AlignmentFlag.AlignLeft | align), title)
        painter.setPen(QColor(theme.CARD_BORDER))
        painter.drawLine(inner.left(), rect.bottom() - 4, inner.right(), rect.bottom() - 4)
        painter.restore()
