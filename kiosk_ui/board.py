"""``Board``: the students' screen.

    +-------------------------------------------------------------------+
    | Faculty availability          7 of 31 available            14:02  |  header
    | Live updates paused, reconnecting… last update 14:02              |  banner (when down)
    | [search name or department] [All departments v] [Available only] [Admin] |
    | +---------+ +---------+ +---------+                                |
    | | card    | | card    | | card    |   a QListView of painted cards |
    +-------------------------------------------------------------------+

The board owns no data: it shows a ``FacultyListModel`` through a
``FacultyFilterModel`` and paints cards with ``CardDelegate``. What it owns is
presentation state: the filters, the banner, the clock, the idle reset.

Timers (all on the GUI thread): every minute the model recomputes its
"updated … ago" texts; every few seconds the clock; after ``idle_timeout``
seconds without a touch or key the search and filters reset, the grid
scrolls back to the top and ``idle`` fires (the window signs an admin out);
and the header count is recomputed at most every ``SUMMARY_DELAY_MS`` while
changes stream in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QScroller,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from kiosk_ui import theme
from kiosk_ui.delegate import CardDelegate
from kiosk_ui.filtering import FacultyFilterModel
from kiosk_ui.model import FacultyListModel, FacultyRole
from kiosk_ui.qtcompat import emit
from kiosk_ui.widgets import TouchComboBox

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
CLOCK_MS = 5_000
SUMMARY_DELAY_MS = 100
ALL_DEPARTMENTS = "All departments"

_INPUT_EVENTS = frozenset(
    {
        QEvent.Type.MouseButtonPress,
        QEvent.Type.MouseButtonRelease,
        QEvent.Type.MouseMove,
        QEvent.Type.Wheel,
        QEvent.Type.KeyPress,
        QEvent.Type.TouchBegin,
        QEvent.Type.TouchUpdate,
        QEvent.Type.InputMethod,
    }
)


def local_now() -> datetime:
    return datetime.now().astimezone()


def _timer(
    parent: QObject, interval_ms: int, slot: Callable[[], None], *, once: bool = False
) -> QTimer:
    timer = QTimer(parent)
    timer.setInterval(interval_ms)
    timer.setSingleShot(once)
    timer.timeout.connect(slot)
    return timer


class CardGrid(QListView):
    """A wrapping grid of painted cards whose columns follow the width."""

    def __init__(self, delegate: CardDelegate, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._delegate = delegate
        self._scale = 1.0
        self.setObjectName("grid")
        self.setItemDelegate(delegate)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setSpacing(0)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Always on: a scroll bar that comes and goes would change the width,
        # the columns and the layout under the user's finger.
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.setFrameShape(QFrame.Shape.NoFrame)
        QScroller.grabGesture(self.viewport(), QScroller.ScrollerGestureType.LeftMouseButtonGesture)
        self._relayout()

    def set_card_delegate(self, delegate: CardDelegate) -> None:
        """Draw cards with another delegate (a subclass, say, that records paints)."""
        self._delegate = delegate
        self.setItemDelegate(delegate)
        self._relayout()

    def set_scale(self, scale: float) -> None:
        if abs(scale - self._scale) > 0.01:
            self._scale = scale
            self._relayout()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._relayout()

    def _relayout(self) -> None:
        # QListView wraps a row that would end exactly at the edge; keep a pixel spare.
        width = max(1, self.viewport().width() - 1)
        min_width = round(theme.CARD_MIN_WIDTH * self._scale)
        columns = max(1, width // min_width)
        cell = QSize(width // columns, round(theme.CARD_HEIGHT * self._scale))
        self._delegate.set_geometry(cell, self._scale)
        if self.gridSize() != cell:
            self.setGridSize(cell)
        self.verticalScrollBar().setSingleStep(cell.height() // 4)


class Board(QWidget):
    """The student board: header, banner, filters and the card grid."""

    adminRequested = Signal()
    idle = Signal()
    """Nobody touched the kiosk for ``idle_timeout`` seconds (fires again each period)."""

    def __init__(
        self,
        model: FacultyListModel,
        *,
        idle_timeout: float = 60.0,
        clock: Callable[[], datetime] = local_now,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("board")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        # The board, not the search box, holds the focus at rest: no blinking
        # cursor, and no on-screen keyboard until someone taps the search.
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self._model = model
        self._clock = clock
        self._live = False
        self._last_update: datetime | None = None
        self._scale = 1.0
        self.proxy = FacultyFilterModel(model, self)
        self.delegate = CardDelegate(self)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._build_header())
        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setMinimumHeight(theme.TOUCH)
        layout.addWidget(self.banner)
        layout.addLayout(self._build_controls())
        layout.addWidget(self._build_grid(), 1)

        self._minute_timer = _timer(self, MINUTE_MS, model.refresh_times)
        self._clock_timer = _timer(self, CLOCK_MS, self._tick_clock)
        self._summary_timer = _timer(self, SUMMARY_DELAY_MS, self.refresh_summary, once=True)
        self._idle_timer = _timer(self, max(1, round(idle_timeout * 1000)), self._idle, once=True)
        for timer in (self._minute_timer, self._clock_timer, self._idle_timer):
            timer.start()
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)  # any touch or key anywhere restarts the idle timer

        # Any change of rows: recount (debounced) and refresh the departments.
        for changed in (
            model.rowsInserted,
            model.rowsRemoved,
            model.rowsMoved,
            model.modelReset,
            model.dataChanged,
        ):
            changed.connect(self._schedule_summary)
        for changed in (
            self.proxy.rowsInserted,
            self.proxy.rowsRemoved,
            self.proxy.modelReset,
            self.proxy.layoutChanged,
        ):
            changed.connect(self._update_empty_state)

        self.setStyleSheet(board_stylesheet(self._scale))
        self._tick_clock()
        self.refresh_summary()
        self._show_banner()

    def _build_header(self) -> QFrame:
        """Title, "7 of 31 available", clock."""
        self.title = QLabel("Faculty availability")
        self.title.setObjectName("title")
        self.summary_label = QLabel()
        self.summary_label.setObjectName("summary")
        self.summary_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.clock_label = QLabel()
        self.clock_label.setObjectName("clock")
        self.clock_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        header = QFrame()
        header.setObjectName("header")
        row = QHBoxLayout(header)
        row.setContentsMargins(20, 8, 20, 8)
        row.addWidget(self.title, 3)
        row.addWidget(self.summary_label, 2)
        row.addWidget(self.clock_label, 1)
        return header

    def _build_controls(self) -> QHBoxLayout:
        """Search, department, "available only", clear, admin."""
        self.search_box = QLineEdit()
        self.search_box.setObjectName("search")
        self.search_box.setPlaceholderText("Search name or department")
        self.search_box.textChanged.connect(self._search_changed)
        self.department_box = TouchComboBox()
        self.department_box.setObjectName("department")
        self.department_box.addItem(ALL_DEPARTMENTS, None)
        self.department_box.currentIndexChanged.connect(self._department_changed)
        self.available_toggle = QPushButton("Available only")
        self.available_toggle.setObjectName("available")
        self.available_toggle.setCheckable(True)
        self.available_toggle.toggled.connect(self._available_toggled)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setObjectName("clear")
        self.clear_button.clicked.connect(self.reset_filters)
        self.admin_button = QPushButton("Admin")
        self.admin_button.setObjectName("admin")
        self.admin_button.clicked.connect(self.adminRequested)
        row = QHBoxLayout()
        row.setContentsMargins(12, 10, 12, 4)
        row.setSpacing(10)
        row.addWidget(self.search_box, 3)
        row.addWidget(self.department_box, 2)
        for button in (self.available_toggle, self.clear_button, self.admin_button):
            row.addWidget(button)
        for widget in (
            self.search_box,
            self.department_box,
            self.available_toggle,
            self.clear_button,
            self.admin_button,
        ):
            widget.setMinimumSize(theme.TOUCH, theme.TOUCH)
        return row

    def _build_grid(self) -> QWidget:
        """The card grid, or a message in its place when it would be empty."""
        self.grid = CardGrid(self.delegate)
        self.grid.setModel(self.proxy)
        self.empty_label = QLabel()
        self.empty_label.setObjectName("empty")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.pages = QStackedWidget()
        self.pages.setContentsMargins(6, 4, 0, 0)
        self.pages.addWidget(self.grid)
        self.pages.addWidget(self.empty_label)
        return self.pages

    # -- live-update state (slots for the bridge) --------------------------------------

    def set_connection(self, up: bool, reason: str = "") -> None:
        """The listener connected (``up``) or lost the database.

        The banner appears at once when updates stop; it goes away only with
        the next resync, when the cards are right again.
        """
        if not up:
            if reason:
                log.info("live updates down: %s", reason)
            self._live = False
            self._show_banner()

    def note_resynced(self, _views: object = None) -> None:
        """A full picture arrived (the model has applied it): live again."""
        self._live = True
        self._last_update = self._clock()
        self._show_banner()
        self.refresh_summary()

    def note_update(self, _change: object = None) -> None:
        self._last_update = self._clock()

    @property
    def live(self) -> bool:
        return self._live

    def _show_banner(self) -> None:
        if self._live:
            self.banner.hide()
            return
        if self._last_update is None:
            self.banner.setText("Connecting to live updates…")
        else:
            self.banner.setText(
                "Live updates paused, reconnecting… "
                f"last update {self._last_update.strftime('%H:%M')}"
            )
        self.banner.show()

    # -- filters ------------------------------------------------------------------

    def reset_filters(self) -> None:
        """Back to the full board, scrolled to the top (the idle reset)."""
        self.setFocus(Qt.FocusReason.OtherFocusReason)
        self.search_box.clear()
        self.department_box.setCurrentIndex(0)
        self.available_toggle.setChecked(False)
        self.proxy.clear()
        self.grid.scrollToTop()
        self.refresh_summary()

    def _search_changed(self, text: str) -> None:
        self.proxy.set_search_text(text)
        self.refresh_summary()

    def _department_changed(self, _index: int) -> None:
        department = self.department_box.currentData()
        self.proxy.set_department(department if isinstance(department, str) else None)
        self.refresh_summary()

    def _available_toggled(self, on: bool) -> None:
        self.proxy.set_available_only(on)
        self.refresh_summary()

    def _schedule_summary(self, *_args: object) -> None:
        if not self._summary_timer.isActive():
            self._summary_timer.start()

    def refresh_summary(self) -> None:
        """Recount the header and refresh the department list."""
        self._summary_timer.stop()
        self.summary_label.setText(self.proxy.summary().text())
        self._refresh_departments()
        self.clear_button.setVisible(self.proxy.is_filtering())
        self._update_empty_state()

    def _refresh_departments(self) -> None:
        departments = self._model.departments()
        shown = [self.department_box.itemData(i) for i in range(1, self.department_box.count())]
        if shown == departments:
            return
        current = self.proxy.department
        self.department_box.blockSignals(True)
        try:
            while self.department_box.count() > 1:
                self.department_box.removeItem(1)
            for department in departments:
                self.department_box.addItem(department, department)
            index = self.department_box.findData(current) if current is not None else 0
            self.department_box.setCurrentIndex(max(0, index))
        finally:
            self.department_box.blockSignals(False)
        if current is not None and current not in departments:
            self.proxy.set_department(None)

    def _update_empty_state(self, *_args: object) -> None:
        if self.proxy.rowCount() > 0:
            self.pages.setCurrentWidget(self.grid)
            return
        if not self._model.loaded:
            self.empty_label.setText("Loading the faculty list…")
        elif self._model.rowCount() == 0:
            self.empty_label.setText("No faculty on the board yet")
        else:
            self.empty_label.setText("No faculty match your search\nTap Clear to see everyone")
        self.pages.setCurrentWidget(self.empty_label)

    def use_delegate(self, delegate: CardDelegate) -> None:
        """Paint the cards with ``delegate`` from now on."""
        self.delegate = delegate
        self.grid.set_card_delegate(delegate)

    # -- what is visible (for tests and the screen reader) -------------------------

    def visible_names(self) -> list[str]:
        return [
            str(self.proxy.data(self.proxy.index(row, 0))) for row in range(self.proxy.rowCount())
        ]

    def card_text(self, faculty_id: int) -> str | None:
        """The accessible text of a faculty's card, or ``None`` if it is not on the board."""
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            if index.data(FacultyRole.ID) == faculty_id:
                return str(index.data(Qt.ItemDataRole.AccessibleTextRole))
        return None

    # -- timers and events -----------------------------------------------------------

    def _tick_clock(self) -> None:
        self.clock_label.setText(self._clock().strftime("%a %H:%M"))

    def _idle(self) -> None:
        if (
            self.proxy.is_filtering()
            or self.search_box.text()
            or self.grid.verticalScrollBar().value()
        ):
            log.debug("idle: resetting search and filters")
            self.reset_filters()
        self._idle_timer.start()
        emit(self.idle)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in _INPUT_EVENTS:
            self._idle_timer.start()
        return False

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        scale = round(theme.scale_for(self.width(), self.height()), 2)
        if abs(scale - self._scale) > 0.01:
            self._scale = scale
            self.setStyleSheet(board_stylesheet(scale))
            self.grid.set_scale(scale)

    def shutdown(self) -> None:
        """Stop the timers and the idle watch (the window is closing)."""
        for timer in (self._minute_timer, self._clock_timer, self._summary_timer, self._idle_timer):
            timer.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)


def board_stylesheet(scale: float) -> str:
    def px(value: float) -> str:
        return f"{round(value * scale)}px"

    return f"""
    #board {{ background: {theme.BACKGROUND}; }}
    #header {{ background: {theme.HEADER}; }}
    #title {{ color: {theme.HEADER_TEXT}; font-size: {px(26)}; font-weight: bold; }}
    #summary {{ color: {theme.HEADER_TEXT}; font-size: {px(22)}; font-weight: bold; }}
    #clock {{ color: {theme.HEADER_MUTED}; font-size: {px(20)}; }}
    #banner {{ background: {theme.BANNER}; color: {theme.BANNER_TEXT};
               font-size: {px(19)}; font-weight: bold; padding: 6px 20px; }}
    QLineEdit, QComboBox, QPushButton {{
        font-size: {px(18)}; color: {theme.INK}; background: white;
        border: 1px solid {theme.CARD_BORDER}; border-radius: 8px; padding: 0 12px;
        min-height: {px(theme.TOUCH)};
    }}
    QComboBox::drop-down {{ border: none; width: 44px; }}
    QComboBox::down-arrow {{ image: none; width: 0; height: 0; }}
    QComboBox QAbstractItemView {{ font-size: {px(18)}; background: white; }}
    QComboBox QAbstractItemView::item {{ min-height: {px(theme.TOUCH)}; }}
    QPushButton:checked {{ background: {theme.STATUS_STYLES["available"].chip}; color: white;
                           border-color: {theme.STATUS_STYLES["available"].chip}; }}
    QPushButton#admin {{ color: {theme.ACCENT}; }}
    #grid {{ background: {theme.BACKGROUND}; }}
    #empty {{ color: {theme.MUTED}; font-size: {px(22)}; }}
    QScrollBar:vertical {{ width: {theme.SCROLLBAR}px; background: {theme.BACKGROUND}; margin: 0; }}
    QScrollBar::handle:vertical {{ background: #a9b6c5; border-radius: 10px;
                                   min-height: {theme.TOUCH}px; margin: 4px 12px; }}
    QScrollBar::add-line:vertical, QScrollBar::sub-line:vertical {{ height: 0; }}
    QScrollBar::add-page:vertical, QScrollBar::sub-page:vertical {{ background: none; }}
    """
