"""``AdminPanel``: faculty management for a signed-in admin.

On the left, the live faculty list (the board's own model, so it updates as
the board does) with a search box and "Add faculty". On the right, the form
of the selected faculty and its actions: save, set status by hand, reset
desk, deactivate.

Optimistic locking: the form remembers the ``version`` it was loaded with and
every write passes it as ``expect_version``. When someone else changed the
row first, ``FacultyAdmin`` raises ``VersionConflict`` carrying the current
row (read under the same lock, so no second query); the panel says plainly
what changed, keeps the admin's edit in the form, and offers "Reapply my
edit" (the same write against the new version) or "Use their version".
While the form has no unsaved edit, a newer version arriving from the
listener simply reloads it, so idle forms never go stale.

Every database call runs on the ``Worker`` thread and comes back by a queued
signal; the action buttons are disabled meanwhile, so the board never
freezes and a double tap never writes twice. The audit actor is the admin
who signed in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
    SignalInstance,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QScrollArea,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from consultease.admin.faculty import FacultyAdmin
from consultease.domain import FacultyView, Status
from consultease.errors import ConsultEaseError, ValidationError, VersionConflict
from kiosk_ui import theme
from kiosk_ui.admin_form import FacultyForm, FormValues, field_errors
from kiosk_ui.filtering import FacultyFilterModel
from kiosk_ui.model import FacultyListModel, FacultyRole
from kiosk_ui.theme import sentence
from kiosk_ui.worker import Worker

log = logging.getLogger(__name__)

CONFLICT_MESSAGE = (
    "Someone else changed this faculty while you were editing. "
    "Your edit was not saved and is still in the form."
)
CONFIRM_MS = 4000
STATUS_BUTTONS = (Status.AVAILABLE, Status.BUSY, Status.AWAY)


@dataclass(frozen=True, kw_only=True, slots=True)
class Conflict:
    """A write lost the race: ``current`` is the row as it is now."""

    current: FacultyView


def describe_changes(before: FacultyView, after: FacultyView) -> list[str]:
    """What differs between two versions of a row, one phrase per field, in plain words."""
    phrases: list[str] = []
    for caption, old, new in (
        ("name", before.name, after.name),
        ("department", before.department, after.department),
        ("email", before.email, after.email),
        ("room", before.room or "(none)", after.room or "(none)"),
        ("status", before.shown_status, after.shown_status),
    ):
        if old != new:
            phrases.append(f"{caption}: {old} → {new}")
    if before.active != after.active:
        phrases.append("taken off the board" if not after.active else "put back on the board")
    return phrases


class _ListDelegate(QStyledItemDelegate):
    """One faculty per row, 60 px tall: name in bold, then department; status on the right."""

    ROW_HEIGHT = 60

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        return QSize(200, self.ROW_HEIGHT)

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        rect = QRect(option.rect)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        style = theme.status_style(str(index.data(FacultyRole.STATUS)))
        painter.save()
        painter.fillRect(rect, QColor("#dbe7f6" if selected else "white"))
        painter.fillRect(QRect(rect.left(), rect.top(), 6, rect.height()), QColor(style.chip))
        painter.setPen(QColor(theme.CARD_BORDER))
        painter.drawLine(rect.bottomLeft(), rect.bottomRight())
        label = style.label
        bold = QFont(painter.font())
        bold.setPixelSize(17)
        bold.setBold(True)
        small = QFont(bold)
        small.setBold(False)
        small.setPixelSize(15)
        label_width = QFontMetrics(small).horizontalAdvance(label) + 16
        text = rect.adjusted(16, 6, -label_width - 12, -6)
        name = QFontMetrics(bold).elidedText(
            str(index.data(FacultyRole.NAME)), Qt.TextElideMode.ElideRight, text.width()
        )
        painter.setFont(bold)
        painter.setPen(QColor(theme.INK))
        painter.drawText(text, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop), name)
        painter.setFont(small)
        painter.setPen(QColor(theme.MUTED))
        department = QFontMetrics(small).elidedText(
            str(index.data(FacultyRole.DEPARTMENT)), Qt.TextElideMode.ElideRight, text.width()
        )
        painter.drawText(
            text, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom), department
        )
        painter.setPen(QColor(theme.INK))
        status = QRect(rect.right() - label_width - 8, rect.top(), label_width, rect.height())
        painter.drawText(status, int(Qt.AlignmentFlag.AlignCenter), label)
        painter.restore()


class AdminPanel(QWidget):
    """List, form and actions. ``signedOut`` asks the window to go back to the board."""

    signedOut = Signal()

    def __init__(
        self,
        admin: FacultyAdmin,
        *,
        actor: str,
        model: FacultyListModel,
        worker: Worker,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("adminPanel")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self._admin = admin
        self._actor = actor
        self._model = model
        self._worker = worker
        self._loaded: FacultyView | None = None
        self._conflict: Conflict | None = None
        self._retry: Callable[[int], None] | None = None
        self._undo: Callable[[], None] | None = None

        self.proxy = FacultyFilterModel(model, self)
        title = _label("adminTitle", "Faculty admin")
        who = _label("who", f"Signed in as {actor}")
        self.back_button = _button("Sign out", self.signedOut, name="signOut")
        header = QFrame()
        header.setObjectName("adminHeader")
        header_row = QHBoxLayout(header)
        header_row.setContentsMargins(20, 6, 12, 6)
        header_row.addWidget(title, 1)
        header_row.addWidget(who)
        header_row.addSpacing(12)
        header_row.addWidget(self.back_button)
        body = QHBoxLayout()
        body.setContentsMargins(12, 10, 12, 10)
        body.addLayout(self._build_list(), 2)
        body.addWidget(self._build_editor(), 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(header)
        layout.addLayout(body, 1)

        self._confirm_timer = QTimer(self)
        self._confirm_timer.setSingleShot(True)
        self._confirm_timer.setInterval(CONFIRM_MS)
        self._confirm_timer.timeout.connect(self._unarm_deactivate)
        for edit in self.findChildren(QLineEdit):
            edit.setMinimumHeight(theme.TOUCH)
        self.setStyleSheet(admin_stylesheet())
        model.dataChanged.connect(self._model_changed)
        model.rowsRemoved.connect(self._model_rows_removed)
        self.start_new()

    def _build_list(self) -> QVBoxLayout:
        """Left: search, the live faculty list, "Add faculty"."""
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Find faculty")
        self.search_box.textChanged.connect(self.proxy.set_search_text)
        self.list_view = QListView()
        self.list_view.setObjectName("adminList")
        self.list_view.setModel(self.proxy)
        self.list_view.setItemDelegate(_ListDelegate(self.list_view))
        self.list_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list_view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list_view.setUniformItemSizes(True)
        self.list_view.clicked.connect(self._picked)
        self.add_button = _button("+ Add faculty", self.start_new)
        left = QVBoxLayout()
        left.addWidget(self.search_box)
        left.addWidget(self.list_view, 1)
        left.addWidget(self.add_button)
        return left

    def _build_editor(self) -> QScrollArea:
        """Right: heading, conflict box, form and actions, scrollable on a small screen."""
        self.heading = _label("heading")
        self.detail = _label("detail")
        self.form = FacultyForm()
        self.form.edited.connect(self._form_edited)
        self.save_button = _button("Save", self.save, name="save")
        self.revert_button = _button("Undo changes", self.revert)
        self.status_buttons: dict[Status, QPushButton] = {}
        for status in STATUS_BUTTONS:
            self.status_buttons[status] = _button(
                theme.status_style(status.value).label,
                lambda _=False, s=status: self.set_status(s),
                name=f"status_{status.value}",
            )
        caption = _label("caption", "Set status by hand:")
        self.reset_desk_button = _button("Reset desk", self.reset_desk)
        self.reset_desk_button.setToolTip("Forget the desk unit's counter (after replacing a desk)")
        self.deactivate_button = _button("Take off the board", self.deactivate, name="deactivate")
        self.message = _label("message")
        self.undo_button = _button("Undo", self._run_undo)
        self.undo_button.hide()

        inner = QWidget()
        column = QVBoxLayout(inner)
        column.setContentsMargins(8, 0, 12, 8)
        column.setSpacing(10)
        column.addWidget(self.heading)
        column.addWidget(self.detail)
        column.addWidget(self._build_conflict_box())
        column.addWidget(self.form)
        column.addLayout(_row(self.save_button, self.revert_button))
        column.addLayout(_row(caption, *self.status_buttons.values()))
        column.addLayout(_row(self.reset_desk_button, self.deactivate_button))
        column.addLayout(_row(self.message, self.undo_button, stretch=False))
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(inner)
        return scroll

    def _build_conflict_box(self) -> QFrame:
        """What changed under the admin's feet, and the two ways on."""
        self.conflict_box = QFrame()
        self.conflict_box.setObjectName("conflict")
        self.conflict_label = _label("conflictText")
        self.reapply_button = _button("Reapply my edit", self.reapply, name="reapply")
        self.theirs_button = _button("Use their version", self.use_theirs)
        box = QVBoxLayout(self.conflict_box)
        box.addWidget(self.conflict_label)
        box.addLayout(_row(self.reapply_button, self.theirs_button))
        self.conflict_box.hide()
        return self.conflict_box

    # -- what the form is showing ----------------------------------------------------------

    @property
    def loaded(self) -> FacultyView | None:
        """The row (and version) the form was loaded with; ``None`` for a new faculty."""
        return self._loaded

    @property
    def conflict(self) -> Conflict | None:
        return self._conflict

    def is_dirty(self) -> bool:
        if self._loaded is None:
            return any(self.form.values().as_dict().values())
        return self.form.values() != FormValues.of(self._loaded)

    def select(self, faculty_id: int) -> None:
        """Load a faculty into the form (as tapping it in the list does)."""
        row = self._model.row_of(faculty_id)
        if row is None:
            raise LookupError(f"faculty {faculty_id} is not on the board")
        self.load(self._model.view_at(row))

    def load(self, view: FacultyView) -> None:
        self._loaded = view
        self.form.set_values(FormValues.of(view))
        self._hide_conflict()
        self._show_heading()
        self._select_in_list(view.id)
        self._refresh_buttons()

    def start_new(self) -> None:
        self._loaded = None
        self.form.clear()
        self._hide_conflict()
        self.list_view.clearSelection()
        self._show_heading()
        self._refresh_buttons()

    def revert(self) -> None:
        if self._loaded is None:
            self.start_new()
        else:
            self.load(self._loaded)
        self._say("")

    def _show_heading(self) -> None:
        view = self._loaded
        if view is None:
            self.heading.setText("New faculty")
            self.detail.setText("Fill in the fields and tap Save to add a faculty to the board.")
            return
        self.heading.setText(view.name)
        source = "set by hand" if view.status_source.value == "admin" else "from the desk"
        desk = "desk online" if view.desk_online else "desk offline"
        self.detail.setText(
            f"Shown as {theme.status_style(view.shown_status).label} "
            f"({view.status.value} {source}, {desk}) · version {view.version}"
        )

    # -- actions ------------------------------------------------------------------------------

    def save(self) -> None:
        """Add the new faculty, or save the edit against the version the form was loaded with."""
        if self._loaded is None:
            self._submit_add()
        else:
            self._submit_edit(self._loaded.version)

    def set_status(self, status: Status) -> None:
        view = self._loaded
        if view is None:
            return
        self._submit_status(status, view.version)

    def reset_desk(self) -> None:
        view = self._loaded
        if view is None:
            return
        admin, actor, faculty_id = self._admin, self._actor, view.id
        self._run(
            lambda: admin.reset_desk(faculty_id, actor=actor),
            done=lambda v: self._saved(
                v, "Desk reset: the next message from a new desk unit will be accepted."
            ),
        )

    def deactivate(self) -> None:
        """Two taps: the first arms the button for a few seconds, the second acts."""
        view = self._loaded
        if view is None:
            return
        if not self._confirm_timer.isActive():
            self.deactivate_button.setText("Tap again to confirm")
            self._confirm_timer.start()
            return
        self._unarm_deactivate()
        admin, actor, faculty_id = self._admin, self._actor, view.id

        def submit(version: int) -> None:
            self._run(
                lambda: admin.deactivate(faculty_id, actor=actor, expect_version=version),
                done=self._deactivated,
                retry=submit,
            )

        submit(view.version)

    def reapply(self) -> None:
        """Run the write that lost the race again, against the version it lost to."""
        conflict, retry = self._conflict, self._retry
        if conflict is None or retry is None:
            return
        self._hide_conflict()
        retry(conflict.current.version)

    def use_theirs(self) -> None:
        conflict = self._conflict
        if conflict is not None:
            self.load(conflict.current)
            self._say("Loaded their version; your edit was discarded.")

    # -- submitting ----------------------------------------------------------------------------

    def _submit_add(self) -> None:
        values = self.form.values()
        errors = field_errors(values)
        self.form.show_errors(errors)
        if errors:
            self._say("Please correct the fields marked in red.")
            return
        admin, actor = self._admin, self._actor
        self._run(
            lambda: admin.add(
                actor=actor,
                name=values.name,
                department=values.department,
                email=values.email,
                room=values.room,
            ),
            done=lambda v: self._saved(v, f"Added {v.name}; they appear on the board as Away."),
        )

    def _submit_edit(self, version: int) -> None:
        view = self._loaded
        if view is None:
            return
        values = self.form.values()
        errors = field_errors(values)
        self.form.show_errors(errors)
        if errors:
            self._say("Please correct the fields marked in red.")
            return
        admin, actor, faculty_id = self._admin, self._actor, view.id
        self._run(
            lambda: admin.edit(
                faculty_id,
                actor=actor,
                expect_version=version,
                name=values.name,
                department=values.department,
                email=values.email,
                room=values.room,
            ),
            done=lambda v: self._saved(v, "Saved."),
            retry=self._submit_edit,
        )

    def _submit_status(self, status: Status, version: int) -> None:
        view = self._loaded
        if view is None:
            return
        admin, actor, faculty_id = self._admin, self._actor, view.id
        label = theme.status_style(status.value).label
        self._run(
            lambda: admin.set_status(faculty_id, status, actor=actor, expect_version=version),
            done=lambda v: self._status_set(v, label),
            retry=lambda new_version: self._submit_status(status, new_version),
        )

    def _run(
        self,
        call: Callable[[], FacultyView],
        *,
        done: Callable[[FacultyView], None],
        retry: Callable[[int], None] | None = None,
    ) -> None:
        """Run ``call`` on the worker; a ``VersionConflict`` becomes a ``Conflict`` to show."""
        faculty_id = self._loaded.id if self._loaded is not None else None

        def work() -> FacultyView | Conflict:
            try:
                return call()
            except VersionConflict as conflict:
                if faculty_id is None or conflict.latest is None:
                    raise
                return Conflict(current=conflict.latest)

        def finished(result: Any) -> None:
            self._set_busy(False)
            if isinstance(result, Conflict):
                self._show_conflict(result, retry)
            else:
                done(result)

        self._say("Saving…")
        self._hide_undo()
        self._set_busy(True)
        self._worker.submit(work, finished, self._failed)

    # -- outcomes --------------------------------------------------------------------------------

    def _saved(self, view: FacultyView, message: str) -> None:
        self.load(view)
        self._say(message)

    def _status_set(self, view: FacultyView, label: str) -> None:
        if self.is_dirty():
            # Keep the admin's unsaved field edits; only the version moves on.
            self._loaded = view
            self._show_heading()
        else:
            self.load(view)
        note = "" if view.desk_online else " The desk is offline, so the board shows Offline."
        self._say(f"Status set to {label} by hand; the desk's next change overrides it.{note}")

    def _deactivated(self, view: FacultyView) -> None:
        name = view.name
        self.start_new()
        self._say(f"{name} was taken off the board.")
        admin, actor = self._admin, self._actor

        def undo() -> None:
            self._run(
                lambda: admin.reactivate(view.id, actor=actor, expect_version=view.version),
                done=lambda v: self._saved(v, f"{v.name} is back on the board."),
            )

        self._offer_undo(undo)

    def _failed(self, exc: Exception) -> None:
        self._set_busy(False)
        if isinstance(exc, ValidationError) and exc.field in {
            "name",
            "department",
            "email",
            "room",
        }:
            self.form.show_errors({exc.field: sentence(str(exc))})
            self._say("Please correct the fields marked in red.")
        elif isinstance(exc, ConsultEaseError):
            self._say(sentence(str(exc)), error=True)
        else:
            log.error("admin action failed unexpectedly", exc_info=exc)
            self._say("That did not work; see the kiosk log.", error=True)

    # -- the conflict box --------------------------------------------------------------------------

    def _show_conflict(self, conflict: Conflict, retry: Callable[[int], None] | None) -> None:
        self._conflict = conflict
        self._retry = retry
        current = conflict.current
        started = self._loaded
        theirs = describe_changes(started, current) if started is not None else []
        lines = [CONFLICT_MESSAGE, ""]
        if theirs:
            lines.append("They changed: " + "; ".join(theirs) + ".")
        lines.append(
            f"Now: {current.name} · {current.department} · {current.email} · "
            f"room {current.room or '(none)'} · "
            f"{theme.status_style(current.shown_status).label} (version {current.version})."
        )
        if not current.active:
            lines.append("This faculty has been taken off the board.")
        self.conflict_label.setText("\n".join(lines))
        self.reapply_button.setEnabled(retry is not None)
        self.conflict_box.show()
        self._say("Not saved: someone else changed this faculty first.", error=True)

    def _hide_conflict(self) -> None:
        self._conflict = None
        self._retry = None
        self.conflict_box.hide()

    # -- live updates ------------------------------------------------------------------------------

    def _model_changed(self, top: QModelIndex, bottom: QModelIndex, *_roles: object) -> None:
        view = self._loaded
        if view is None or self._worker.busy or self._conflict is not None:
            return
        row = self._model.row_of(view.id)
        if row is None or not top.row() <= row <= bottom.row():
            return
        fresh = self._model.view_at(row)
        if fresh.version <= view.version:
            return
        if self.is_dirty():
            self.detail.setText(
                f"Changed elsewhere since you opened it (now version {fresh.version}); "
                "saving will ask what to do."
            )
        else:
            self.load(fresh)

    def _model_rows_removed(self, *_args: object) -> None:
        view = self._loaded
        if view is not None and self._model.row_of(view.id) is None and not self._worker.busy:
            self.detail.setText("This faculty is no longer on the board.")

    # -- small parts -----------------------------------------------------------------------------

    def _picked(self, index: QModelIndex) -> None:
        view = index.data(FacultyRole.VIEW)
        if isinstance(view, FacultyView):
            self.load(view)
            self._say("")

    def _select_in_list(self, faculty_id: int) -> None:
        row = self._model.row_of(faculty_id)
        if row is None:
            self.list_view.clearSelection()
            return
        proxy_index = self.proxy.mapFromSource(self._model.index(row))
        if proxy_index.isValid():
            self.list_view.setCurrentIndex(proxy_index)

    def _form_edited(self) -> None:
        self._refresh_buttons()

    def _refresh_buttons(self) -> None:
        busy = self._worker.busy
        existing = self._loaded is not None
        self.save_button.setText("Save" if existing else "Add to board")
        self.save_button.setEnabled(not busy and self.is_dirty())
        self.revert_button.setEnabled(not busy and self.is_dirty())
        for button in self.status_buttons.values():
            button.setEnabled(not busy and existing)
        self.reset_desk_button.setEnabled(not busy and existing)
        self.deactivate_button.setEnabled(not busy and existing)
        self.reapply_button.setEnabled(not busy and self._retry is not None)
        self.theirs_button.setEnabled(not busy)
        self.add_button.setEnabled(not busy)

    def _set_busy(self, busy: bool) -> None:
        self.form.set_enabled_fields(not busy)
        self._refresh_buttons()
        if busy:
            for button in (self.save_button, self.revert_button):
                button.setEnabled(False)

    def _unarm_deactivate(self) -> None:
        self._confirm_timer.stop()
        self.deactivate_button.setText("Take off the board")

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setProperty("error", error)
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)

    def _offer_undo(self, undo: Callable[[], None]) -> None:
        self._undo = undo
        self.undo_button.show()

    def _hide_undo(self) -> None:
        self._undo = None
        self.undo_button.hide()

    def _run_undo(self) -> None:
        undo = self._undo
        self._hide_undo()
        if undo is not None:
            undo()


def _button(text: str, slot: Callable[..., Any] | SignalInstance, *, name: str = "") -> QPushButton:
    button = QPushButton(text)
    if name:
        button.setObjectName(name)
    button.setMinimumSize(theme.TOUCH, theme.TOUCH)
    button.clicked.connect(slot)
    return button


def _label(name: str, text: str = "") -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    label.setWordWrap(True)
    return label


def _row(*widgets: QWidget, stretch: bool = True) -> QHBoxLayout:
    """Widgets side by side; with ``stretch`` they keep to the left, else the first one grows."""
    row = QHBoxLayout()
    for position, widget in enumerate(widgets):
        row.addWidget(widget, 1 if not stretch and position == 0 else 0)
    if stretch:
        row.addStretch(1)
    return row


def admin_stylesheet() -> str:
    return f"""
    #adminPanel {{ background: {theme.BACKGROUND}; }}
    QLabel {{ font-size: 17px; color: {theme.INK}; }}
    #adminHeader {{ background: {theme.HEADER}; }}
    #adminTitle {{ color: {theme.HEADER_TEXT}; font-size: 24px; font-weight: bold; }}
    #who {{ color: {theme.HEADER_MUTED}; font-size: 18px; }}
    QPushButton#signOut {{ background: transparent; color: {theme.HEADER_TEXT};
                           border: 1px solid {theme.HEADER_MUTED}; }}
    #heading {{ font-size: 24px; font-weight: bold; }}
    #detail {{ color: {theme.MUTED}; }}
    #caption {{ color: {theme.MUTED}; font-size: 15px; }}
    #fieldError {{ color: {theme.ERROR}; font-weight: bold; font-size: 15px; }}
    QLineEdit {{ font-size: 18px; padding: 0 10px; background: white;
                 border: 1px solid {theme.CARD_BORDER}; border-radius: 6px; }}
    QLineEdit[invalid="true"] {{ border: 2px solid {theme.ERROR}; }}
    QPushButton {{ font-size: 17px; padding: 0 16px; background: white; color: {theme.INK};
                   border: 1px solid {theme.CARD_BORDER}; border-radius: 8px; }}
    QPushButton:disabled {{ color: #9aa3ad; background: #f3f5f7; }}
    QPushButton#save {{ background: {theme.ACCENT}; color: white; border-color: {theme.ACCENT}; }}
    QPushButton#save:disabled {{ background: #9db8da; }}
    QPushButton#deactivate {{ color: {theme.ERROR}; }}
    QPushButton#reapply {{ background: {theme.ACCENT}; color: white; }}
    #conflict {{ background: {theme.CONFLICT_BG}; border: 2px solid {theme.CONFLICT_BORDER};
                 border-radius: 8px; }}
    #conflictText {{ font-size: 16px; }}
    #message[error="true"] {{ color: {theme.ERROR}; font-weight: bold; }}
    #adminList {{ font-size: 17px; background: white; border: 1px solid {theme.CARD_BORDER}; }}
    """
