"""``AdminPanel``: faculty management for a signed-in admin.

On the left, the live faculty list (the board's own model, sorted by surname
here) with a search box and "Add faculty". On the right, the form of the
selected faculty and its actions: save, set status by hand, reset desk,
deactivate.

Edits are field-level (``FacultyAdmin.edit_fields``): the panel remembers, for
each field, the value it had when the admin began editing it, and a save sends
only the fields the admin changed, each with that value. So a desk changing
the status, or another admin changing another field, never makes a save
conflict, and a save never writes a field the admin did not touch. While the
admin types, a newer row from the listener is merged into the untouched fields.

When someone else changed one of the admin's fields first, ``FacultyAdmin``
raises ``FieldConflict`` carrying the current row (read under the same lock);
the panel says which fields and to what, keeps the admin's edit in the form
(with everyone else's changes merged in), and offers "Reapply my edit" (the
admin's fields again, now based on the current values: a merge, never an
overwrite of the other fields) or "Use their version". Setting the status by
hand conflicts only when the status itself moved; taking off the board never
conflicts on unrelated changes.

Every database call runs on the ``Worker`` thread and comes back by a queued
signal; the action buttons are disabled meanwhile, so the board never freezes
and a double tap never writes twice. The audit actor is the admin who signed in.

A public kiosk must not stay signed in: when the kiosk has been idle, the panel
first shows a countdown ("Signing out in 30 s… Stay signed in"); any touch
cancels it. At the end, an unsaved edit is kept as a ``Draft`` for the same
admin's next sign-in, and they are told so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QObject,
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
    QApplication,
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

from consultease.admin.faculty import EDITABLE_FIELDS, FacultyAdmin, FieldEdit, FieldValue
from consultease.domain import FacultyView, Status
from consultease.errors import ConsultEaseError, FieldConflict, ValidationError, VersionConflict
from kiosk_ui import theme
from kiosk_ui.admin_form import FacultyForm, FormValues, field_errors
from kiosk_ui.filtering import FacultyFilterModel
from kiosk_ui.keyboard import OnScreenKeyboard
from kiosk_ui.model import FacultyListModel, FacultyRole
from kiosk_ui.names import surname_key
from kiosk_ui.qtcompat import emit
from kiosk_ui.theme import sentence
from kiosk_ui.widgets import flick_scrolling
from kiosk_ui.worker import Worker

log = logging.getLogger(__name__)

CONFLICT_MESSAGE = (
    "Someone else changed this faculty while you were editing. "
    "Your edit was not saved and is still in the form."
)
CONFIRM_MS = 4000
STATUS_BUTTONS = (Status.AVAILABLE, Status.BUSY, Status.AWAY)
CAPTIONS = {
    "name": "name",
    "department": "department",
    "email": "email",
    "room": "room",
    "always_available": "always available",
    "status": "status",
    "active": "on the board",
}
SORT_ROLE = int(Qt.ItemDataRole.UserRole) + 100
"""The admin list's sort key (surname), served by ``_SurnameSorted``."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Conflict:
    """A write lost the race: ``current`` is the row as it is now, ``fields`` what clashed
    (empty when the whole row was checked)."""

    current: FacultyView
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Draft:
    """An unsaved edit kept across a sign-out, for the same admin's next sign-in."""

    actor: str
    faculty_id: int | None
    """``None``: a new faculty that was not added yet."""
    bases: Mapping[str, FieldValue]
    values: FormValues
    kept_at: datetime


def _shown(field: str, value: FieldValue) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value or "(none)"


def describe_changes(before: FacultyView, after: FacultyView) -> list[str]:
    """What differs between two versions of a row, one phrase per field, in plain words."""
    phrases: list[str] = []
    for caption, old, new in (
        ("name", before.name, after.name),
        ("department", before.department, after.department),
        ("email", before.email, after.email),
        ("room", before.room or "(none)", after.room or "(none)"),
        ("status", before.shown_status, after.shown_status),
        (
            "always available",
            _shown("", before.always_available),
            _shown("", after.always_available),
        ),
    ):
        if old != new:
            phrases.append(f"{caption}: {old} → {new}")
    if before.active != after.active:
        phrases.append("taken off the board" if not after.active else "put back on the board")
    return phrases


def _value(view: FacultyView, field: str) -> FieldValue:
    return FormValues.of(view).field(field)


class _SurnameSorted(FacultyFilterModel):
    """The board's filter, sorted by surname for finding people."""

    def data(self, index: Any, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == SORT_ROLE:
            return "\x1f".join(surname_key(str(super().data(index, FacultyRole.NAME))))
        return super().data(index, role)

    def lessThan(self, left: Any, right: Any) -> bool:
        model = self.sourceModel()
        a = surname_key(str(model.data(left, FacultyRole.NAME)))
        b = surname_key(str(model.data(right, FacultyRole.NAME)))
        return a < b


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
        painter.fillRect(rect, QColor(theme.SELECTED if selected else theme.CARD))
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
    """List, form and actions.

    ``signedOut`` asks the window to go back to the board (the Sign out button);
    ``idleExpired`` does too, after the idle warning ran out.
    """

    signedOut = Signal()
    idleExpired = Signal()
    requestsRequested = Signal()
    """The "Requests & students" button: the window shows ``admin_requests.RequestsAdmin``."""

    def __init__(
        self,
        admin: FacultyAdmin,
        *,
        actor: str,
        model: FacultyListModel,
        worker: Worker,
        keyboard: OnScreenKeyboard | None = None,
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
        self._bases: dict[str, FieldValue] = {}
        self._conflict: Conflict | None = None
        self._retry: Callable[[], None] | None = None
        self._undo: Callable[[], None] | None = None
        self._warning_ends: float | None = None

        self.proxy = _SurnameSorted(model, self)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.sort(0)
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
        header_row.addWidget(self._requests_button())
        header_row.addWidget(self.back_button)
        body = QHBoxLayout()
        body.setContentsMargins(12, 10, 12, 10)
        body.addLayout(self._build_list(), 2)
        body.addWidget(self._build_editor(), 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(header)
        layout.addWidget(self._build_warning())
        layout.addLayout(body, 1)

        self._confirm_timer = QTimer(self)
        self._confirm_timer.setSingleShot(True)
        self._confirm_timer.setInterval(CONFIRM_MS)
        self._confirm_timer.timeout.connect(self._unarm_deactivate)
        for edit in self.findChildren(QLineEdit):
            edit.setMinimumHeight(theme.TOUCH)
            if keyboard is not None:
                keyboard.attach(edit)
        self.setStyleSheet(admin_stylesheet())
        model.dataChanged.connect(self._model_changed)
        model.rowsRemoved.connect(self._model_rows_removed)
        model.rowsInserted.connect(self._model_rows_inserted)
        self.start_new()

    @property
    def actor(self) -> str:
        return self._actor

    def _requests_button(self) -> QPushButton:
        self.requests_button = _button(
            "Requests & students", self.requestsRequested, name="signOut"
        )
        return self.requests_button

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
        self.list_view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.list_view.setUniformItemSizes(True)
        self.list_view.setMinimumHeight(theme.TOUCH)  # fits 800x480 with the keyboard up
        flick_scrolling(self.list_view)
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
        column.addWidget(caption)
        column.addLayout(_row(*self.status_buttons.values()))
        column.addLayout(_row(self.reset_desk_button, self.deactivate_button))
        column.addLayout(_row(self.message, self.undo_button, stretch=False))
        column.addStretch(1)
        self.editor_scroll = QScrollArea()
        self.editor_scroll.setWidgetResizable(True)
        self.editor_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.editor_scroll.setWidget(inner)
        self.editor_scroll.setMinimumHeight(theme.TOUCH)
        return self.editor_scroll

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

    def _build_warning(self) -> QFrame:
        """The idle sign-out countdown, with the way to stay."""
        self.warning_box = QFrame()
        self.warning_box.setObjectName("signOutWarning")
        self.warning_label = _label("warningText")
        self.stay_button = _button("Stay signed in", self.cancel_signout_warning, name="stay")
        row = QHBoxLayout(self.warning_box)
        row.setContentsMargins(20, 4, 12, 4)
        row.addWidget(self.warning_label, 1)
        row.addWidget(self.stay_button)
        self.warning_box.hide()
        self._warning_timer = QTimer(self)
        self._warning_timer.setInterval(250)
        self._warning_timer.timeout.connect(self._tick_warning)
        return self.warning_box

    # -- what the form is showing ----------------------------------------------------------

    @property
    def loaded(self) -> FacultyView | None:
        """The row (and version) the form shows; ``None`` for a new faculty."""
        return self._loaded

    @property
    def conflict(self) -> Conflict | None:
        return self._conflict

    def dirty_fields(self) -> list[str]:
        """The fields the admin changed (from the value each had when they began)."""
        if self._loaded is None:
            return []
        values = self.form.values()
        return [f for f in EDITABLE_FIELDS if values.field(f) != self._bases.get(f)]

    def is_dirty(self) -> bool:
        if self._loaded is None:
            values = self.form.values()
            return any(values.as_dict().values()) or values.always_available
        return bool(self.dirty_fields())

    def select(self, faculty_id: int) -> None:
        """Load a faculty into the form (as tapping it in the list does)."""
        row = self._model.row_of(faculty_id)
        if row is None:
            raise LookupError(f"faculty {faculty_id} is not on the board")
        self.load(self._model.view_at(row))

    def load(self, view: FacultyView) -> None:
        self._loaded = view
        values = FormValues.of(view)
        self._bases = values.fields()
        self.form.set_values(values)
        self._hide_conflict()
        self._show_heading()
        self._select_in_list(view.id)
        self._refresh_buttons()

    def merge(self, view: FacultyView) -> list[str]:
        """Take a newer row into every field the admin has not touched; keep their edits
        (and the values those edits were based on). Returns what changed, in words."""
        started = self._loaded
        dirty = set(self.dirty_fields())
        fresh = FormValues.of(view)
        kept = self.form.values()
        merged = kept.replace(**{f: fresh.field(f) for f in EDITABLE_FIELDS if f not in dirty})
        for field in EDITABLE_FIELDS:
            if field not in dirty:
                self._bases[field] = fresh.field(field)
        self._loaded = view
        self.form.set_values(merged)
        self._show_heading()
        return describe_changes(started, view) if started is not None else []

    def start_new(self) -> None:
        self._loaded = None
        self._bases = {}
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
        if view.always_available:
            where = "always available: no desk"
            if view.desk_online:
                where += " (a desk is online, but the board does not follow it)"
        else:
            source = "set by hand" if view.status_source.value == "admin" else "from the desk"
            desk = "desk online" if view.desk_online else "desk offline"
            where = f"{view.status.value} {source}, {desk}"
        self.detail.setText(
            f"Shown as {theme.status_style(view.shown_status).label} ({where}) · "
            f"version {view.version}"
        )

    # -- drafts ----------------------------------------------------------------------------

    def draft(self) -> Draft | None:
        """The unsaved edit, if there is one, to keep across a sign-out."""
        if not self.is_dirty():
            return None
        return Draft(
            actor=self._actor,
            faculty_id=self._loaded.id if self._loaded is not None else None,
            bases=dict(self._bases),
            values=self.form.values(),
            kept_at=datetime.now().astimezone(),
        )

    def restore(self, draft: Draft) -> None:
        """Put a kept edit back in the form, merged with what changed since."""
        when = draft.kept_at.strftime("%H:%M")
        if draft.faculty_id is None:
            self.start_new()
            self.form.set_values(draft.values)
            self._say(f"Your unsaved new faculty from {when} is back in the form.")
            self._refresh_buttons()
            return
        row = self._model.row_of(draft.faculty_id)
        if row is None:
            self._say(f"Your unsaved edit from {when} was for a faculty no longer on the board.")
            return
        self.load(self._model.view_at(row))
        self._bases = dict(draft.bases)
        edited = {
            f: draft.values.field(f)
            for f in EDITABLE_FIELDS
            if draft.values.field(f) != draft.bases.get(f)
        }
        self.form.set_values(self.form.values().replace(**edited))
        current = self._loaded
        if current is not None:
            # Fields not edited follow the row as it is now.
            for field in EDITABLE_FIELDS:
                if field not in edited:
                    self._bases[field] = _value(current, field)
        self._refresh_buttons()
        self._say(
            f"Your unsaved edit from {when} was kept when you were signed out. "
            "Save it, or Undo changes."
        )

    # -- idle sign-out warning ----------------------------------------------------------------

    @property
    def warning_active(self) -> bool:
        return self._warning_ends is not None

    def begin_signout_warning(self, seconds: float) -> None:
        """Count down to an idle sign-out; a touch or key anywhere cancels it."""
        if self._warning_ends is not None:
            return
        self._warning_ends = time.monotonic() + seconds
        self.warning_box.show()
        self._tick_warning()
        self._warning_timer.start()
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)

    def cancel_signout_warning(self) -> None:
        if self._warning_ends is None:
            return
        self._warning_ends = None
        self._warning_timer.stop()
        self.warning_box.hide()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)

    def _tick_warning(self) -> None:
        ends = self._warning_ends
        if ends is None:
            return
        left = max(0, round(ends - time.monotonic()))
        kept = " Your unsaved edit will be kept." if self.is_dirty() else ""
        self.warning_label.setText(f"Idle: signing out in {left} s.{kept}")
        if time.monotonic() >= ends:
            self.cancel_signout_warning()
            if self._worker.busy:
                return  # let the save finish; the next idle period tries again
            emit(self.idleExpired)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if self._warning_ends is not None and event.type() in (
            QEvent.Type.MouseButtonPress,
            QEvent.Type.KeyPress,
            QEvent.Type.TouchBegin,
        ):
            self.cancel_signout_warning()
        return False

    def shutdown(self) -> None:
        self.cancel_signout_warning()
        self._confirm_timer.stop()

    # -- actions ------------------------------------------------------------------------------

    def save(self) -> None:
        """Add the new faculty, or save the fields the admin changed."""
        if self._loaded is None:
            self._submit_add()
        else:
            self._submit_edit()

    def set_status(self, status: Status) -> None:
        view = self._loaded
        if view is None:
            return
        self._submit_status(status, view.status)

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
        self._run(
            lambda: admin.deactivate(faculty_id, actor=actor, expect_active=True),
            done=self._deactivated,
        )

    def reapply(self) -> None:
        """Send the admin's fields again, now based on the values they lost to."""
        conflict, retry = self._conflict, self._retry
        if conflict is None or retry is None:
            return
        for field in conflict.fields:
            if field in self._bases:
                self._bases[field] = _value(conflict.current, field)
        self._hide_conflict()
        retry()

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

        def added(view: FacultyView) -> None:
            if view.always_available:
                how = "as Available (always available, no desk)"
            else:
                how = "as Offline until their desk unit connects"
            self._saved(view, f"Added {view.name}; they appear on the board {how}.")

        self._run(
            lambda: admin.add(
                actor=actor,
                name=values.name,
                department=values.department,
                email=values.email,
                room=values.room,
                always_available=values.always_available,
            ),
            done=added,
        )

    def _submit_edit(self) -> None:
        view = self._loaded
        if view is None:
            return
        values = self.form.values()
        errors = field_errors(values)
        self.form.show_errors(errors)
        if errors:
            self._say("Please correct the fields marked in red.")
            return
        edits = {
            field: FieldEdit(base=self._bases.get(field), value=values.field(field))
            for field in self.dirty_fields()
        }
        if not edits:
            self._say("Nothing to save.")
            return
        admin, actor, faculty_id, version = self._admin, self._actor, view.id, view.version
        self._run(
            lambda: admin.edit_fields(
                faculty_id, actor=actor, edits=edits, based_on_version=version
            ),
            done=lambda v: self._saved(v, "Saved."),
            retry=self._submit_edit,
        )

    def _submit_status(self, status: Status, expected: Status) -> None:
        view = self._loaded
        if view is None:
            return
        admin, actor, faculty_id = self._admin, self._actor, view.id
        label = theme.status_style(status.value).label

        def retry() -> None:
            current = self._loaded
            if current is not None:
                self._submit_status(status, current.status)

        self._run(
            lambda: admin.set_status(faculty_id, status, actor=actor, expect_status=expected),
            done=lambda v: self._status_set(v, label),
            retry=retry,
        )

    def _run(
        self,
        call: Callable[[], FacultyView],
        *,
        done: Callable[[FacultyView], None],
        retry: Callable[[], None] | None = None,
    ) -> None:
        """Run ``call`` on the worker; a ``VersionConflict`` becomes a ``Conflict`` to show."""
        faculty_id = self._loaded.id if self._loaded is not None else None

        def work() -> FacultyView | Conflict:
            try:
                return call()
            except VersionConflict as conflict:
                if faculty_id is None or conflict.latest is None:
                    raise
                fields = conflict.fields if isinstance(conflict, FieldConflict) else ()
                return Conflict(current=conflict.latest, fields=fields)

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
            # Keep the admin's unsaved field edits; the rest follows the row.
            self.merge(view)
        else:
            self.load(view)
        if view.always_available:
            note = " The board shows them as Available anyway (always available is on)."
        elif not view.desk_online:
            note = " The desk is offline, so the board shows Offline."
        else:
            note = ""
        self._say(f"Status set to {label} by hand; the desk's next change overrides it.{note}")

    def _deactivated(self, view: FacultyView) -> None:
        name = view.name
        self.start_new()
        self._say(f"{name} was taken off the board.")
        admin, actor = self._admin, self._actor

        def undo() -> None:
            self._run(
                lambda: admin.reactivate(view.id, actor=actor, expect_active=False),
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

    def _show_conflict(self, conflict: Conflict, retry: Callable[[], None] | None) -> None:
        current = conflict.current
        lines = [CONFLICT_MESSAGE, ""]
        mine = self.form.values()
        clashes = []
        for field in conflict.fields:
            if field in EDITABLE_FIELDS:
                was, now = self._bases.get(field), _value(current, field)
                yours = f" (yours: {_shown(field, mine.field(field))})"
            else:
                started = self._loaded
                was = _shown(field, getattr(started, field, None)) if started else "?"
                now, yours = getattr(current, field), ""
                was, now = getattr(was, "value", was), getattr(now, "value", now)
            clashes.append(
                f"{CAPTIONS.get(field, field)}: {_shown(field, was)} → {_shown(field, now)}{yours}"
            )
        # Everything the admin did not touch follows the row as it is now.
        changes = self.merge(current)
        clashing = {CAPTIONS.get(f, f) for f in conflict.fields}
        others = [c for c in changes if c.split(":")[0] not in clashing]
        if clashes:
            lines.append("They changed: " + "; ".join(clashes) + ".")
            if others:
                lines.append("Also changed, and taken into the form: " + "; ".join(others) + ".")
        elif changes:
            lines.append("They changed: " + "; ".join(changes) + ".")
        lines.append(
            f"Now: {current.name} · {current.department} · {current.email} · "
            f"room {current.room or '(none)'} · "
            f"{theme.status_style(current.shown_status).label} (version {current.version})."
        )
        if not current.active:
            lines.append("This faculty has been taken off the board.")
        self._conflict = conflict
        self._retry = retry
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
        self._follow(top.row(), bottom.row())

    def _model_rows_inserted(self, _parent: QModelIndex, first: int, last: int) -> None:
        # A row that changed its place in the order comes back as an insertion.
        self._follow(first, last)
        view = self._loaded
        if view is not None and first <= (self._model.row_of(view.id) or -1) <= last:
            self._select_in_list(view.id)

    def _follow(self, first: int, last: int) -> None:
        """A newer version of the loaded row: reload an untouched form, else merge."""
        view = self._loaded
        if view is None or self._worker.busy or self._conflict is not None:
            return
        row = self._model.row_of(view.id)
        if row is None or not first <= row <= last:
            return
        fresh = self._model.view_at(row)
        if fresh.version <= view.version:
            return
        if not self.is_dirty():
            self.load(fresh)
            return
        changes = self.merge(fresh)
        if changes:
            self.detail.setText(
                "Changed elsewhere while you edit (taken into the form): "
                + "; ".join(changes)
                + f". Now version {fresh.version}."
            )

    def _model_rows_removed(self, *_args: object) -> None:
        # Decided once the model is done: a row that moves is removed, then inserted.
        QTimer.singleShot(0, self._check_still_on_board)

    def _check_still_on_board(self) -> None:
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
        always = self._loaded is not None and self._loaded.always_available
        self.save_button.setText("Save" if existing else "Add to board")
        self.save_button.setEnabled(not busy and self.is_dirty())
        self.revert_button.setEnabled(not busy and self.is_dirty())
        for button in self.status_buttons.values():
            button.setEnabled(not busy and existing)
            button.setToolTip(
                "Always available is on: the board shows Available whatever is set here"
                if always
                else ""
            )
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
    # Height only: a fixed minimum width would let the layout squeeze the text away.
    button.setMinimumHeight(theme.TOUCH)
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
    """Every styled button also has its disabled look: an ID rule (``#deactivate``) would
    otherwise beat ``QPushButton:disabled`` and draw a disabled button as enabled."""
    disabled = (
        f"color: {theme.DISABLED_TEXT}; background: {theme.DISABLED_BG}; "
        f"border: 1px dashed {theme.DISABLED_TEXT};"
    )
    return f"""
    #adminPanel {{ background: {theme.BACKGROUND}; }}
    QLabel {{ font-size: 17px; color: {theme.INK}; }}
    #adminHeader {{ background: {theme.HEADER}; }}
    #adminTitle {{ color: {theme.HEADER_TEXT}; font-size: 24px; font-weight: bold; }}
    #who {{ color: {theme.HEADER_MUTED}; font-size: 18px; }}
    QPushButton#signOut {{ background: transparent; color: {theme.HEADER_TEXT};
                           border: 1px solid {theme.HEADER_MUTED}; }}
    #signOutWarning {{ background: {theme.WARNING_BG}; }}
    #warningText {{ color: {theme.WARNING_TEXT}; font-size: 18px; font-weight: bold; }}
    #heading {{ font-size: 24px; font-weight: bold; }}
    #detail {{ color: {theme.MUTED}; }}
    #caption {{ color: {theme.MUTED}; font-size: 15px; }}
    #fieldError {{ color: {theme.ERROR}; font-weight: bold; font-size: 15px; }}
    QLineEdit {{ font-size: 18px; padding: 0 10px; background: {theme.CARD}; color: {theme.INK};
                 border: 1px solid {theme.CARD_BORDER}; border-radius: 6px; }}
    QLineEdit[invalid="true"] {{ border: 2px solid {theme.ERROR}; }}
    QPushButton {{ font-size: 17px; padding: 0 16px; background: {theme.CARD}; color: {theme.INK};
                   border: 1px solid {theme.CARD_BORDER}; border-radius: 8px; }}
    QPushButton:checked {{ background: {theme.ACCENT}; color: {theme.ACCENT_TEXT};
                           border-color: {theme.ACCENT}; }}
    QPushButton#save, QPushButton#reapply {{ background: {theme.ACCENT};
        color: {theme.ACCENT_TEXT}; border-color: {theme.ACCENT}; }}
    QPushButton#deactivate {{ color: {theme.ERROR}; border-color: {theme.ERROR}; }}
    QPushButton:disabled, QPushButton#save:disabled, QPushButton#reapply:disabled,
    QPushButton#deactivate:disabled {{ {disabled} }}
    #conflict {{ background: {theme.CONFLICT_BG}; border: 2px solid {theme.CONFLICT_BORDER};
                 border-radius: 8px; }}
    #conflictText {{ font-size: 16px; }}
    #message[error="true"] {{ color: {theme.ERROR}; font-weight: bold; }}
    #adminList {{ font-size: 17px; background: {theme.CARD};
                  border: 1px solid {theme.CARD_BORDER}; }}
    QScrollBar:vertical {{ width: {theme.TOUCH}px; background: {theme.BACKGROUND}; margin: 0; }}
    QScrollBar::handle:vertical {{ background: {theme.SCROLL_HANDLE}; border-radius: 8px;
                                   min-height: {theme.TOUCH}px; margin: 4px 12px; }}
    QScrollBar::add-line:vertical, QScrollBar::sub-line:vertical {{ height: 0; }}
    QScrollBar::add-page:vertical, QScrollBar::sub-page:vertical {{ background: none; }}
    """
