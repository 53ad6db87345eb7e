"""``RequestsAdmin``: open consultation requests and the student register, for admins.

    +--------------------------------------------------------------------+
    | Requests and students          Signed in as alice  [Faculty] [Sign out]
    | [ Open requests (3) ] [ Students (120) ]                           |
    | Lecturer          Student        Status    Waiting  Message        |  live
    | Dr. Ada Lovelace  Sam Student    Waiting   4:12     Question …     |
    | Dr. Ada Lovelace  Kim Lee        Accepted  9:40     Thesis …       |
    | [ Cancel the selected request ]                    message line    |
    +--------------------------------------------------------------------+

Open requests come from a ``ConsultationWatcher`` with ``follow_all`` (its
own LISTEN connection), so the table follows every kiosk and desk live; they
are sorted by lecturer, then age, so one lecturer's requests stand together.
Cancelling takes two taps and is the backend's ``Consultations.cancel`` with
the admin as ``actor`` (audited as ``consultation.cancel``, closed by
``admin``); the desk gets its cancellation from the ingest service's dispatcher.

The Students page lists the register and adds a student (student id, name,
course, card UID: tap the UID field and touch the card on the reader) or
imports a CSV file (``student_id,name,course_code,rfid_uid``) by path, both
audited by ``Students``. Every database call runs on the window's worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from consultease.consultation import ClosedBy
from consultease.db.consultations import Consultation
from consultease.db.students import ImportResult, Student
from consultease.errors import ConsultEaseError, DatabaseUnavailable
from consultease.live.consultations import ConsultationView
from kiosk_ui import theme
from kiosk_ui.admin_panel import admin_stylesheet
from kiosk_ui.consultation_flow import ConsultationBridge
from kiosk_ui.consultation_status import elapsed_text
from kiosk_ui.keyboard import OnScreenKeyboard
from kiosk_ui.names import surname_key
from kiosk_ui.problems import describe_problem, scrub
from kiosk_ui.qtcompat import emit
from kiosk_ui.widgets import flick_scrolling
from kiosk_ui.worker import Worker

log = logging.getLogger(__name__)

AnyIndex = QModelIndex | QPersistentModelIndex
CONFIRM_MS = 4_000


class ConsultationAdminApi(Protocol):
    """``consultease.db.consultations.Consultations``, as far as this view uses it."""

    def cancel(
        self, consultation_id: int, *, by: ClosedBy = ..., actor: str | None = None
    ) -> Consultation: ...


class StudentAdminApi(Protocol):
    """``consultease.db.students.Students``, as far as this view uses it."""

    def add(
        self,
        *,
        student_id: str,
        name: str,
        course_code: str | None = None,
        rfid_uid: str | None = None,
        actor: str,
    ) -> Student: ...

    def import_csv(self, source: Any, *, actor: str) -> ImportResult: ...

    def list_all(self, *, include_inactive: bool = False) -> list[Student]: ...


class WatcherLike(Protocol):
    @property
    def connected(self) -> bool: ...

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]: ...

    def start(self) -> None: ...

    def close(self, timeout: float = 2.0) -> None: ...


# -- models ----------------------------------------------------------------------------


class OpenRequestsModel(QAbstractTableModel):
    """Open requests by lecturer, then age; closed ones leave the table."""

    HEADERS = ("Lecturer", "Student", "Status", "Waiting", "Message")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[ConsultationView] = []
        self._received: dict[int, float] = {}
        """When each row was read (monotonic): the wait goes on counting from there."""

    @staticmethod
    def _key(view: ConsultationView) -> tuple[tuple[str, str], int, int]:
        """By lecturer, as the board sorts them (surname first), then oldest first."""
        return (surname_key(view.faculty_name), view.faculty_id, view.id)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            role == Qt.ItemDataRole.DisplayRole
            and orientation == Qt.Orientation.Horizontal
            and 0 <= section < len(self.HEADERS)
        ):
            return self.HEADERS[section]
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        view = self._rows[index.row()]
        if role == Qt.ItemDataRole.UserRole:
            return view
        if role != Qt.ItemDataRole.DisplayRole or not 0 <= index.column() < len(self.HEADERS):
            return None
        return (
            view.faculty_name,
            view.student_name + (f" ({view.student_id})" if view.student_id else ""),
            theme.request_style(view.status).label,
            elapsed_text(self.waited(view)),
            view.message if len(view.message) <= 60 else view.message[:59] + "…",
        )[index.column()]

    def views(self) -> list[ConsultationView]:
        return list(self._rows)

    def waited(self, view: ConsultationView) -> float:
        since_read = time.monotonic() - self._received.get(view.id, time.monotonic())
        return view.waited.total_seconds() + since_read

    def view_at(self, row: int) -> ConsultationView:
        return self._rows[row]

    def replace(self, views: Sequence[ConsultationView]) -> None:
        self.beginResetModel()
        self._rows = sorted((v for v in views if v.open), key=self._key)
        now = time.monotonic()
        self._received = {v.id: now for v in self._rows}
        self.endResetModel()

    def apply(self, view: ConsultationView) -> None:
        """Insert, update or (once closed) remove one request, never with an older version."""
        for row, current in enumerate(self._rows):
            if current.id != view.id:
                continue
            if view.version < current.version:
                return
            if not view.open:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._rows[row]
                self._received.pop(view.id, None)
                self.endRemoveRows()
                return
            self._rows[row] = view
            self._received[view.id] = time.monotonic()
            emit(self.dataChanged, self.index(row, 0), self.index(row, len(self.HEADERS) - 1))
            return
        if not view.open:
            return
        row = sum(1 for r in self._rows if self._key(r) < self._key(view))
        self.beginInsertRows(QModelIndex(), row, row)
        self._rows.insert(row, view)
        self._received[view.id] = time.monotonic()
        self.endInsertRows()


class StudentsModel(QAbstractTableModel):
    HEADERS = ("Name", "Student ID", "Course", "Card")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Student] = []

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            role == Qt.ItemDataRole.DisplayRole
            and orientation == Qt.Orientation.Horizontal
            and 0 <= section < len(self.HEADERS)
        ):
            return self.HEADERS[section]
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole or not index.isValid():
            return None
        if not 0 <= index.row() < len(self._rows):
            return None
        student = self._rows[index.row()]
        values = (
            student.name,
            student.student_id,
            student.course_code or "",
            student.rfid_uid or "no card",
        )
        return values[index.column()] if 0 <= index.column() < len(values) else None

    def replace(self, students: Sequence[Student]) -> None:
        self.beginResetModel()
        self._rows = list(students)
        self.endResetModel()

    def students(self) -> list[Student]:
        return list(self._rows)


# -- the view ----------------------------------------------------------------------------


class RequestsAdmin(QWidget):
    """Open requests and students; ``facultyRequested``/``signedOut`` go to the window."""

    facultyRequested = Signal()
    signedOut = Signal()

    def __init__(
        self,
        *,
        actor: str,
        consultations: ConsultationAdminApi,
        students: StudentAdminApi,
        watcher: WatcherLike,
        worker: Worker,
        keyboard: OnScreenKeyboard | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("adminPanel")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self._actor = actor
        self._consultations = consultations
        self._students = students
        self._watcher = watcher
        self._worker = worker
        self._armed: int | None = None
        self._cancelling = False
        self.requests_model = OpenRequestsModel(self)
        self.students_model = StudentsModel(self)
        self.bridge = ConsultationBridge(self)
        self.bridge.resynced.connect(self._resynced)
        self.bridge.changed.connect(self.requests_model.apply)
        self.bridge.down.connect(self._down)
        self._unsubscribe = watcher.subscribe(self.bridge.deliver)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._build_header())
        layout.addLayout(self._build_tabs())
        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_requests_page())
        self.pages.addWidget(self._build_students_page())
        layout.addWidget(self.pages, 1)
        self.message = _label("message")
        foot = QHBoxLayout()
        foot.setContentsMargins(16, 4, 16, 8)
        foot.addWidget(self.message, 1)
        layout.addLayout(foot)
        for edit in self.findChildren(QLineEdit):
            edit.setMinimumHeight(theme.TOUCH)
            if keyboard is not None:
                keyboard.attach(edit)
        self.setStyleSheet(
            admin_stylesheet()
            + f"QHeaderView::section {{ font-size: 15px; font-weight: bold; padding: 6px;"
            f" color: {theme.INK}; background: {theme.KEY_SPECIAL}; border: none; }}"
        )

        self._confirm = QTimer(self)
        self._confirm.setSingleShot(True)
        self._confirm.setInterval(CONFIRM_MS)
        self._confirm.timeout.connect(self._disarm)
        self._tick = QTimer(self)
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self._refresh_times)
        self._tick.start()
        for signal in (
            self.requests_model.rowsInserted,
            self.requests_model.rowsRemoved,
            self.requests_model.modelReset,
        ):
            signal.connect(self._counts_changed)
        self.students_model.modelReset.connect(self._counts_changed)
        self.show_requests()

    def start(self) -> None:
        self._watcher.start()
        self.reload_students()

    # -- building --------------------------------------------------------------------

    def _build_header(self) -> QFrame:
        header = QFrame()
        header.setObjectName("adminHeader")
        row = QHBoxLayout(header)
        row.setContentsMargins(20, 6, 12, 6)
        row.addWidget(_label("adminTitle", "Requests and students"), 1)
        row.addWidget(_label("who", f"Signed in as {self._actor}"))
        row.addSpacing(12)
        self.faculty_button = _button("Faculty", self.facultyRequested, name="signOut")
        self.sign_out_button = _button("Sign out", self.signedOut, name="signOut")
        row.addWidget(self.faculty_button)
        row.addWidget(self.sign_out_button)
        return header

    def _build_tabs(self) -> QHBoxLayout:
        self.requests_tab = _button("Open requests", self.show_requests)
        self.students_tab = _button("Students", self.show_students)
        for tab in (self.requests_tab, self.students_tab):
            tab.setCheckable(True)
        row = QHBoxLayout()
        row.setContentsMargins(12, 10, 12, 4)
        row.addWidget(self.requests_tab)
        row.addWidget(self.students_tab)
        row.addStretch(1)
        return row

    def _build_requests_page(self) -> QWidget:
        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(12, 4, 12, 4)
        self.requests_table = _table(self.requests_model)
        self.requests_table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.live_line = _label("caption")
        self.cancel_button = _button("Cancel the selected request", self.cancel_selected)
        self.cancel_button.setObjectName("deactivate")
        self.cancel_button.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(self.cancel_button)
        row.addWidget(self.live_line, 1)
        column.addWidget(self.requests_table, 1)
        column.addLayout(row)
        return page

    def _build_students_page(self) -> QWidget:
        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(12, 4, 12, 4)
        self.students_table = _table(self.students_model)
        self.new_student_id = QLineEdit()
        self.new_student_id.setPlaceholderText("Student ID")
        self.new_name = QLineEdit()
        self.new_name.setPlaceholderText("Name")
        self.new_course = QLineEdit()
        self.new_course.setPlaceholderText("Course (optional)")
        self.new_card = QLineEdit()
        self.new_card.setPlaceholderText("Card UID: tap here, touch the card on the reader")
        self.add_student_button = _button("Add student", self.add_student, name="save")
        self.import_path = QLineEdit()
        self.import_path.setPlaceholderText("CSV file: student_id,name,course_code,rfid_uid")
        self.import_button = _button("Import CSV", self.import_students)
        form = QGridLayout()
        form.addWidget(self.new_student_id, 0, 0)
        form.addWidget(self.new_name, 0, 1)
        form.addWidget(self.new_course, 0, 2)
        form.addWidget(self.new_card, 1, 0, 1, 2)
        form.addWidget(self.add_student_button, 1, 2)
        form.addWidget(self.import_path, 2, 0, 1, 2)
        form.addWidget(self.import_button, 2, 2)
        column.addWidget(self.students_table, 1)
        column.addLayout(form)
        return page

    # -- pages -----------------------------------------------------------------------

    def show_requests(self) -> None:
        self.pages.setCurrentIndex(0)
        self.requests_tab.setChecked(True)
        self.students_tab.setChecked(False)

    def show_students(self) -> None:
        self.pages.setCurrentIndex(1)
        self.requests_tab.setChecked(False)
        self.students_tab.setChecked(True)

    def _counts_changed(self, *_args: object) -> None:
        self.requests_tab.setText(f"Open requests ({self.requests_model.rowCount()})")
        self.students_tab.setText(f"Students ({self.students_model.rowCount()})")
        self._selection_changed()

    # -- requests --------------------------------------------------------------------

    def _resynced(self, views: tuple[ConsultationView, ...]) -> None:
        self.requests_model.replace(views)
        self.live_line.setText("")

    def _down(self, reason: str) -> None:
        self.live_line.setText(f"Live updates paused: {describe_problem(reason)}")

    def _refresh_times(self) -> None:
        rows = self.requests_model.rowCount()
        if rows:
            emit(
                self.requests_model.dataChanged,
                self.requests_model.index(0, 3),
                self.requests_model.index(rows - 1, 3),
            )

    def selected(self) -> ConsultationView | None:
        rows = self.requests_table.selectionModel().selectedRows()
        return self.requests_model.view_at(rows[0].row()) if rows else None

    def select_request(self, consultation_id: int) -> None:
        for row, view in enumerate(self.requests_model.views()):
            if view.id == consultation_id:
                self.requests_table.selectRow(row)
                return
        raise LookupError(f"request {consultation_id} is not in the open list")

    def _selection_changed(self, *_args: object) -> None:
        chosen = self.selected()
        if chosen is None or chosen.id != self._armed:
            self._disarm()
        self.cancel_button.setEnabled(chosen is not None and not self._cancelling)

    def cancel_selected(self) -> None:
        """First tap: ask again. Second tap: cancel it, as this admin (audited)."""
        chosen = self.selected()
        if chosen is None:
            return
        if self._armed != chosen.id:
            self._armed = chosen.id
            self.cancel_button.setText(f"Tap again to cancel {chosen.student_name}'s request")
            self._confirm.start()
            return
        self._disarm()
        consultation_id = chosen.id
        self._cancelling = True
        self.cancel_button.setEnabled(False)

        def done(result: Any) -> None:
            self._cancelling = False
            self._say(f"Cancelled request {consultation_id}; the desk is told.")
            self._selection_changed()

        self._worker.submit(
            lambda: self._consultations.cancel(
                consultation_id, by=ClosedBy.ADMIN, actor=self._actor
            ),
            done,
            self._failed,
        )

    def _disarm(self) -> None:
        self._armed = None
        self._confirm.stop()
        self.cancel_button.setText("Cancel the selected request")

    # -- students --------------------------------------------------------------------

    def reload_students(self) -> None:
        self._worker.submit(self._students.list_all, self.students_model.replace, self._failed)

    def add_student(self) -> None:
        student_id, name = self.new_student_id.text(), self.new_name.text()
        course, card = self.new_course.text().strip(), self.new_card.text().strip()

        def done(student: Any) -> None:
            for box in (self.new_student_id, self.new_name, self.new_course, self.new_card):
                box.clear()
            self._say(f"Added {student.name} ({student.student_id}).")
            self.reload_students()

        self._worker.submit(
            lambda: self._students.add(
                student_id=student_id,
                name=name,
                course_code=course or None,
                rfid_uid=card or None,
                actor=self._actor,
            ),
            done,
            self._failed,
        )

    def import_students(self) -> None:
        path = self.import_path.text().strip()
        if not path:
            self._say("Type the path of a CSV file to import.", error=True)
            return

        def done(result: Any) -> None:
            self._say(f"Imported {path}: {result.added} added, {result.updated} updated.")
            self.reload_students()

        self._worker.submit(
            lambda: self._students.import_csv(path, actor=self._actor), done, self._failed
        )

    # -- small parts -----------------------------------------------------------------

    def _failed(self, exc: Exception) -> None:
        self._cancelling = False
        if isinstance(exc, ConsultEaseError) and not isinstance(exc, DatabaseUnavailable):
            text = scrub(str(exc))
        else:
            text = describe_problem(str(exc))
        self._say(theme.sentence(text), error=True)
        self._selection_changed()

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setProperty("error", error)
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)

    def shutdown(self) -> None:
        self._tick.stop()
        self._confirm.stop()
        self._unsubscribe()
        self._watcher.close()


def _table(model: QAbstractTableModel) -> QTableView:
    table = QTableView()
    table.setObjectName("adminList")
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(theme.TOUCH)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    flick_scrolling(table)
    return table


def _button(text: str, slot: Callable[..., Any] | Any, *, name: str = "") -> QPushButton:
    button = QPushButton(text)
    if name:
        button.setObjectName(name)
    button.setMinimumHeight(theme.TOUCH)
    button.clicked.connect(slot)
    return button


def _label(name: str, text: str = "") -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    label.setWordWrap(True)
    return label
