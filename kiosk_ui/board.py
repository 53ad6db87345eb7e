"""``Board``: the students' screen.

    +--------------------------------------------------------------------+
    | Faculty availability        14 of 241 available          Mon 14:02 |  header
    | [All · 14 of 241] [Biology · 1 of 20] [Chemistry · 2 of 20] …      |  department strip
    | [search name or department      ] [Available only] [Clear] [Admin] |  controls
    | Biology                                          1 of 20 available |  heading (grouped)
    | +----------+ +----------+ +----------+ +----------+                |
    | | card     | | card     | | card     | | card     |   CardGrid     |
    | Live updates paused, reconnecting… last update 14:02               |  banner (overlay)
    +--------------------------------------------------------------------+

The board owns no data: it shows a ``FacultyListModel`` through a
``FacultyFilterModel`` and paints cards with ``CardDelegate`` in a ``CardGrid``.
Available lecturers come first, then busy, away, offline, each by surname;
``BoardOptions`` chooses department headings (the default) or a compact flat
board, and large type for a wall screen read from a few metres.

Nothing moves under a finger when state changes: Clear is always there (it is
disabled when there is nothing to clear), the banner is drawn over the bottom of
the card area instead of pushing it down, and the strip's buttons keep their
width when counts change. Every filter change scrolls the cards back to the top.

Timers (all on the GUI thread): every minute the model recomputes its "since"
texts; every few seconds the clock; every second, while live updates are down,
the retry countdown; after ``idle_timeout`` seconds without a touch or key the
search and filters reset and ``idle`` fires (the window signs an admin out);
and the counts are recomputed at most every ``SUMMARY_DELAY_MS`` while changes
stream in.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from kiosk_ui import theme
from kiosk_ui.delegate import CardDelegate
from kiosk_ui.filtering import FacultyFilterModel, Summary
from kiosk_ui.grid import CardGrid
from kiosk_ui.model import FacultyListModel, FacultyRole
from kiosk_ui.names import fold
from kiosk_ui.problems import describe_problem
from kiosk_ui.qtcompat import emit
from kiosk_ui.strip import DepartmentStrip

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
CLOCK_MS = 5_000
COUNTDOWN_MS = 1_000
SUMMARY_DELAY_MS = 250
SEARCH_PLACEHOLDER = "Search name or department"

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


class BoardLayout(enum.StrEnum):
    COMPACT = "compact"
    """The default. No headings: everyone, available first, by surname, on smaller
    cards, so the first screen answers "who is free now?" for every department."""
    DEPARTMENTS = "departments"
    """A heading per department; in each, available first, by surname."""


@dataclass(frozen=True, kw_only=True, slots=True)
class BoardOptions:
    layout: BoardLayout = BoardLayout.COMPACT
    large_type: bool = False

    @property
    def grouped(self) -> bool:
        return self.layout is BoardLayout.DEPARTMENTS

    @property
    def scale(self) -> float:
        return theme.LARGE_TYPE if self.large_type else 1.0

    def metrics(self) -> theme.CardMetrics:
        return theme.card_metrics(compact=self.layout is BoardLayout.COMPACT, scale=self.scale)


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


class Board(QWidget):
    """The student board: header, department strip, controls and the card grid."""

    adminRequested = Signal()
    idle = Signal()
    """Nobody touched the kiosk for ``idle_timeout`` seconds (fires again each period)."""

    def __init__(
        self,
        model: FacultyListModel,
        *,
        options: BoardOptions | None = None,
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
        self.options = options or BoardOptions()
        self._model = model
        self._clock = clock
        self._live = False
        self._last_update: datetime | None = None
        self._problem = ""
        self._attempt = 0
        self._retry_at: float | None = None
        model.set_grouped(self.options.grouped)
        self.proxy = FacultyFilterModel(model, self)
        self._tally = self.proxy.tally()
        self.delegate = CardDelegate(self)
        self.delegate.set_metrics(self.options.metrics())
        self.delegate.set_show_department(not self.options.grouped)

        self.setStyleSheet(board_stylesheet(self.options))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._build_header())
        self.strip = DepartmentStrip()
        self.strip.chosen.connect(self._department_chosen)
        layout.addWidget(self.strip)
        layout.addLayout(self._build_controls())
        layout.addWidget(self._build_body(), 1)

        self._minute_timer = _timer(self, MINUTE_MS, model.refresh_times)
        self._clock_timer = _timer(self, CLOCK_MS, self._tick_clock)
        self._countdown_timer = _timer(self, COUNTDOWN_MS, self._show_banner)
        self._summary_timer = _timer(self, SUMMARY_DELAY_MS, self.refresh_summary, once=True)
        self._idle_timer = _timer(self, max(1, round(idle_timeout * 1000)), self._idle, once=True)
        for timer in (self._minute_timer, self._clock_timer, self._idle_timer):
            timer.start()
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)  # any touch or key anywhere restarts the idle timer

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

        self._tick_clock()
        self.refresh_summary()
        self._show_banner()

    # -- building ---------------------------------------------------------------------

    def _build_header(self) -> QFrame:
        """Title, "14 of 241 available", clock."""
        self.title = QLabel("Faculty availability")
        self.title.setObjectName("title")
        self.summary_label = QLabel()
        self.summary_label.setObjectName("summary")
        self.summary_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.clock_label = QLabel()
        self.clock_label.setObjectName("clock")
        self.clock_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        for label in (self.title, self.summary_label, self.clock_label):
            # Text never widens a label: the header's thirds stay where they are.
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        header = QFrame()
        header.setObjectName("header")
        row = QHBoxLayout(header)
        row.setContentsMargins(16, 6, 16, 6)
        row.addWidget(self.title, 5)
        row.addWidget(self.summary_label, 4)
        row.addWidget(self.clock_label, 2)
        return header

    def _build_controls(self) -> QHBoxLayout:
        """Search, "available only", clear, admin: always all there, never moving."""
        self.search_box = QLineEdit()
        self.search_box.setObjectName("search")
        self.search_box.setPlaceholderText(SEARCH_PLACEHOLDER)
        self.search_box.setClearButtonEnabled(False)
        palette = self.search_box.palette()
        palette.setColor(QPalette.ColorRole.PlaceholderText, QColor(theme.MUTED))
        self.search_box.setPalette(palette)
        self.search_box.textChanged.connect(self._search_changed)
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
        row.setContentsMargins(12, 8, 12, 6)
        row.setSpacing(10)
        row.addWidget(self.search_box, 1)
        for button in (self.available_toggle, self.clear_button, self.admin_button):
            button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
            row.addWidget(button)
        for widget in (
            self.search_box,
            self.available_toggle,
            self.clear_button,
            self.admin_button,
        ):
            widget.setMinimumSize(theme.TOUCH, theme.TOUCH)
        self.search_box.setMinimumWidth(self._placeholder_width())
        return row

    def _placeholder_width(self) -> int:
        """Wide enough for the whole placeholder (text margins and padding included)."""
        self.search_box.ensurePolished()
        return self.search_box.fontMetrics().horizontalAdvance(SEARCH_PLACEHOLDER) + 40

    def _build_body(self) -> QWidget:
        """The card grid (or a message in its place), with the banner drawn over its foot."""
        self.grid = CardGrid(self.delegate)
        self.grid.setModel(self.proxy)
        self.grid.set_grouped(
            self.options.grouped, self._heading_counts, self.proxy.row_departments
        )
        self.grid.pressed.connect(lambda _index: self.setFocus(Qt.FocusReason.OtherFocusReason))
        self.empty_label = QLabel()
        self.empty_label.setObjectName("empty")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.pages = QStackedWidget()
        self.pages.setContentsMargins(6, 0, 0, 0)
        self.pages.addWidget(self.grid)
        self.pages.addWidget(self.empty_label)
        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(False)
        self.banner.setMinimumHeight(theme.TOUCH)
        self.banner.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        body = QWidget()
        overlay = QGridLayout(body)
        overlay.setContentsMargins(0, 0, 0, 0)
        overlay.addWidget(self.pages, 0, 0)
        overlay.addWidget(self.banner, 0, 0, Qt.AlignmentFlag.AlignBottom)
        return body

    # -- live-update state (slots for the bridge) --------------------------------------

    def set_connection(self, up: bool, reason: str = "") -> None:
        """The listener connected (``up``) or lost the database.

        The banner appears at once when updates stop; it goes away only with
        the next resync, when the cards are right again.
        """
        if not up:
            if reason:
                log.info("live updates down: %s", reason)
                self._problem = describe_problem(reason)
            self._live = False
            self._show_banner()
            self._update_empty_state()

    def note_reconnecting(self, attempt: int, delay: float) -> None:
        """The listener waits ``delay`` seconds before connection attempt ``attempt``."""
        self._attempt = attempt
        self._retry_at = time.monotonic() + delay
        if not self._live:
            self._countdown_timer.start()
        self._show_banner()
        self._update_empty_state()

    def note_resynced(self, _views: object = None) -> None:
        """A full picture arrived (the model has applied it): live again."""
        self._live = True
        self._problem = ""
        self._attempt = 0
        self._retry_at = None
        self._countdown_timer.stop()
        self._last_update = self._clock()
        self._show_banner()
        self.refresh_summary()

    def note_update(self, _change: object = None) -> None:
        self._last_update = self._clock()

    @property
    def live(self) -> bool:
        return self._live

    @property
    def problem(self) -> str:
        """What is wrong with the live updates, in plain words ("" when nothing is)."""
        return self._problem

    def _retry_text(self) -> str:
        if self._retry_at is None:
            return "retrying…"
        seconds = max(0, round(self._retry_at - time.monotonic()))
        when = f"retrying in {seconds} s" if seconds else "retrying now"
        return f"{when} (attempt {self._attempt + 1})" if self._attempt else when

    def _show_banner(self) -> None:
        if self._live:
            self.banner.hide()
            self.grid.set_bottom_margin(0)
            return
        if self._last_update is None:
            text = (
                f"Cannot load the faculty list: {self._problem} · {self._retry_text()}"
                if self._problem
                else "Connecting to live updates…"
            )
        else:
            text = (
                "Live updates paused, reconnecting… "
                f"last update {self._last_update.strftime('%H:%M')}"
            )
        self.banner.setText(text)
        self.banner.setToolTip(text)
        self.banner.show()
        self.banner.raise_()
        self.grid.set_bottom_margin(self.banner.sizeHint().height())
        if self._last_update is None and self._problem:
            self._update_empty_state()

    # -- filters ------------------------------------------------------------------

    def reset_filters(self) -> None:
        """Back to the full board, scrolled to the top (the idle reset, and Clear)."""
        self.setFocus(Qt.FocusReason.OtherFocusReason)
        self.search_box.clear()
        self.strip.select(None)
        self.available_toggle.setChecked(False)
        self.proxy.clear()
        self._filters_changed()

    def _search_changed(self, text: str) -> None:
        self.proxy.set_search_text(text)
        self._filters_changed()

    def _department_chosen(self, department: object) -> None:
        self.proxy.set_department(department if isinstance(department, str) else None)
        self._filters_changed()

    def choose_department(self, department: str | None) -> None:
        """What tapping a department in the strip does."""
        self.strip.select(department)
        self._department_chosen(department)

    def _available_toggled(self, on: bool) -> None:
        self.proxy.set_available_only(on)
        self._filters_changed()

    def _filters_changed(self) -> None:
        self.grid.scrollToTop()
        self.refresh_summary()

    def _schedule_summary(self, *_args: object) -> None:
        if not self._summary_timer.isActive():
            self._summary_timer.start()

    def _heading_counts(self) -> dict[str, Summary]:
        return self._tally.searched

    def refresh_summary(self) -> None:
        """Recount the header, the department strip and the headings (one pass)."""
        self._summary_timer.stop()
        self._tally = tally = self.proxy.tally()
        self.summary_label.setText(tally.summary.text())
        everyone = tally.everyone
        departments = [(d, everyone[d]) for d in sorted(everyone, key=lambda d: (fold(d), d))]
        total = Summary(
            available=sum(s.available for _, s in departments),
            total=sum(s.total for _, s in departments),
        )
        self.strip.update_counts(total, departments)
        if self.proxy.department is not None and self.proxy.department not in everyone:
            self.strip.select(None)
            self.proxy.set_department(None)
        self.clear_button.setEnabled(self.proxy.is_filtering() or bool(self.search_box.text()))
        self.grid.refresh_headings()
        self._update_empty_state()

    def _update_empty_state(self, *_args: object) -> None:
        if self.proxy.rowCount() > 0:
            self.pages.setCurrentWidget(self.grid)
            return
        self.empty_label.setText(self.empty_text())
        self.pages.setCurrentWidget(self.empty_label)

    def empty_text(self) -> str:
        """What the board says in place of cards when there are none to show."""
        if not self._model.loaded:
            if self._problem:
                return (
                    f"Cannot load the faculty list: {self._problem}.\n"
                    f"{self._retry_text().capitalize()}. "
                    "Staff: consultease health on this kiosk tells more."
                )
            return "Loading the faculty list…"
        if self._model.rowCount() == 0:
            return "No faculty on the board yet"
        where = f" in {self.proxy.department}" if self.proxy.department else ""
        search = self.proxy.search_text.strip()
        if self.proxy.available_only and self._tally.summary.total > 0:
            found = f" matching “{search}”" if search else ""
            return (
                f"Nobody{where}{found} is available right now\n"
                "Tap “Available only” again to see everyone"
            )
        if search:
            return f"No faculty{where} match “{search}”\nTap Clear to see everyone"
        return f"No faculty{where} on the board\nTap Clear to see everyone"

    def use_delegate(self, delegate: CardDelegate) -> None:
        """Paint the cards with ``delegate`` from now on."""
        delegate.set_metrics(self.delegate.metrics)
        delegate.set_show_department(not self.options.grouped)
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
            or self.search_box.hasFocus()
        ):
            log.debug("idle: resetting search and filters")
            self.reset_filters()
        self._idle_timer.start()
        emit(self.idle)

    def restart_idle(self) -> None:
        self._idle_timer.start()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in _INPUT_EVENTS:
            self._idle_timer.start()
        return False

    def shutdown(self) -> None:
        """Stop the timers and the idle watch (the window is closing)."""
        for timer in (
            self._minute_timer,
            self._clock_timer,
            self._countdown_timer,
            self._summary_timer,
            self._idle_timer,
        ):
            timer.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)


def board_stylesheet(options: BoardOptions) -> str:
    scale = 1.25 if options.large_type else 1.0

    def px(value: float) -> str:
        return f"{round(value * scale)}px"

    available = theme.STATUS_STYLES["available"]
    return f"""
    #board {{ background: {theme.BACKGROUND}; }}
    #header {{ background: {theme.HEADER}; }}
    #title {{ color: {theme.HEADER_TEXT}; font-size: {px(22)}; font-weight: bold; }}
    #summary {{ color: {theme.HEADER_TEXT}; font-size: {px(20)}; font-weight: bold; }}
    #clock {{ color: {theme.HEADER_MUTED}; font-size: {px(18)}; }}
    #banner {{ background: {theme.BANNER}; color: {theme.BANNER_TEXT};
               font-size: {px(17)}; font-weight: bold; padding: 4px 16px; }}
    #strip, #stripInner {{ background: {theme.BACKGROUND}; }}
    QLineEdit, QPushButton {{
        font-size: {px(17)}; color: {theme.INK}; background: {theme.CARD};
        border: 1px solid {theme.CARD_BORDER}; border-radius: 8px; padding: 0 12px;
        min-height: {theme.TOUCH}px;
    }}
    QPushButton#stripAll, QPushButton#stripDepartment {{ font-size: {px(16)}; padding: 0 10px; }}
    QPushButton#stripDepartment[free="true"] {{ border: 2px solid {available.chip}; }}
    QPushButton:checked {{ background: {available.chip}; color: {available.text};
                           border-color: {available.chip}; }}
    QPushButton#stripAll:checked, QPushButton#stripDepartment:checked {{
        background: {theme.ACCENT}; color: {theme.ACCENT_TEXT}; border-color: {theme.ACCENT}; }}
    QPushButton:disabled {{ color: {theme.DISABLED_TEXT}; background: {theme.DISABLED_BG};
                            border: 1px dashed {theme.DISABLED_TEXT}; }}
    QPushButton#admin {{ color: {theme.ACCENT}; }}
    #grid {{ background: {theme.BACKGROUND}; }}
    #empty {{ color: {theme.MUTED}; font-size: {px(20)}; padding: 12px; }}
    QScrollBar:vertical {{ width: {theme.TOUCH}px; background: {theme.BACKGROUND}; margin: 0; }}
    QScrollBar::handle:vertical {{ background: {theme.SCROLL_HANDLE}; border-radius: 8px;
                                   min-height: {theme.TOUCH}px; margin: 4px 12px; }}
    QScrollBar::add-line:vertical, QScrollBar::sub-line:vertical {{ height: 0; }}
    QScrollBar::add-page:vertical, QScrollBar::sub-page:vertical {{ background: none; }}
    """
