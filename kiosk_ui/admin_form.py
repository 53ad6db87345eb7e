"""``FacultyForm``: the editable fields of a faculty, each with its error beside it.

Name, department, email and room are text fields; "no desk: always show as
available" is a toggle.

The form is plain widgets and knows nothing of the database. It holds the
values an admin types and shows messages under the field they belong to.
``field_errors`` checks every field with the core's own rules
(``FacultyFields.clean``), so the kiosk and the CLI always agree on what
is valid, and all problems show at once instead of one per save.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from consultease.admin.faculty import EDITABLE_FIELDS, FacultyFields, FieldValue
from consultease.domain import FacultyView
from consultease.errors import ValidationError
from kiosk_ui import theme
from kiosk_ui.qtcompat import emit
from kiosk_ui.theme import sentence

FIELDS: tuple[tuple[str, str], ...] = (
    ("name", "Name"),
    ("department", "Department"),
    ("email", "Email"),
    ("room", "Room"),
)
"""Field names as ``ValidationError.field`` spells them, with their captions."""

_VALID = {"name": "N", "department": "D", "email": "a@b.cd", "room": ""}
"""A value of each field that passes, to check the others one at a time."""


ALWAYS_AVAILABLE_LABEL = "No desk: always show as available"


@dataclass(frozen=True, kw_only=True, slots=True)
class FormValues:
    name: str
    department: str
    email: str
    room: str
    always_available: bool = False

    def as_dict(self) -> dict[str, str]:
        """The text fields."""
        return {
            "name": self.name,
            "department": self.department,
            "email": self.email,
            "room": self.room,
        }

    def field(self, name: str) -> FieldValue:
        """A field as ``FacultyAdmin.edit_fields`` compares it (no room is ``None``)."""
        if name == "always_available":
            return self.always_available
        value = self.as_dict()[name]
        return (value.strip() or None) if name == "room" else value

    def fields(self) -> dict[str, FieldValue]:
        return {name: self.field(name) for name in EDITABLE_FIELDS}

    def replace(self, **changes: object) -> FormValues:
        values: dict[str, object] = {**self.as_dict(), "always_available": self.always_available}
        for name, value in changes.items():
            values[name] = (value or "") if name == "room" else value
        return FormValues(**values)  # type: ignore[arg-type]

    @classmethod
    def of(cls, view: FacultyView) -> FormValues:
        return cls(
            name=view.name,
            department=view.department,
            email=view.email,
            room=view.room or "",
            always_available=view.always_available,
        )


def field_errors(values: FormValues) -> dict[str, str]:
    """Every field's problem by the core's rules (``FacultyFields.clean``); empty when valid."""
    errors: dict[str, str] = {}
    given = values.as_dict()
    for field, _caption in FIELDS:
        trial = {**_VALID, field: given[field]}
        try:
            FacultyFields.clean(**trial)
        except ValidationError as exc:
            errors[exc.field or field] = sentence(str(exc))
    return errors


class FacultyForm(QWidget):
    """Name, department, email and room, each with an error label beneath it."""

    edited = Signal()
    """The admin typed something."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._edits: dict[str, QLineEdit] = {}
        self._errors: dict[str, QLabel] = {}
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(16)
        grid.setVerticalSpacing(4)
        for position, (field, caption) in enumerate(FIELDS):
            cell = QVBoxLayout()
            cell.setSpacing(2)
            label = QLabel(caption)
            label.setObjectName("caption")
            edit = QLineEdit()
            edit.setObjectName(f"field_{field}")
            edit.setMinimumHeight(theme.TOUCH)
            edit.textEdited.connect(self._typed)
            label.setBuddy(edit)
            error = QLabel()
            error.setObjectName("fieldError")
            error.setWordWrap(True)
            error.hide()
            cell.addWidget(label)
            cell.addWidget(edit)
            cell.addWidget(error)
            grid.addLayout(cell, position // 2, position % 2, Qt.AlignmentFlag.AlignTop)
            self._edits[field] = edit
            self._errors[field] = error
        self.always_available = QPushButton(ALWAYS_AVAILABLE_LABEL)
        self.always_available.setObjectName("alwaysAvailable")
        self.always_available.setCheckable(True)
        self.always_available.setMinimumHeight(theme.TOUCH)
        self.always_available.setToolTip(
            "For a lecturer without a working desk unit: the board shows them as Available"
        )
        self.always_available.clicked.connect(lambda _checked: emit(self.edited))
        grid.addWidget(self.always_available, 2, 0, 1, 2, Qt.AlignmentFlag.AlignLeft)
        self.set_placeholders()

    # -- values ---------------------------------------------------------------------

    def values(self) -> FormValues:
        return FormValues(
            name=self._edits["name"].text(),
            department=self._edits["department"].text(),
            email=self._edits["email"].text(),
            room=self._edits["room"].text(),
            always_available=self.always_available.isChecked(),
        )

    def set_values(self, values: FormValues) -> None:
        for field, value in values.as_dict().items():
            if self._edits[field].text() != value:
                self._edits[field].setText(value)
        self.always_available.setChecked(values.always_available)
        self.clear_errors()

    def clear(self) -> None:
        self.set_values(FormValues(name="", department="", email="", room=""))

    def text_fields(self) -> list[QLineEdit]:
        return list(self._edits.values())

    def edit(self, field: str) -> QLineEdit:
        return self._edits[field]

    def set_placeholders(self) -> None:
        self._edits["name"].setPlaceholderText("Dr. Ada Lovelace")
        self._edits["department"].setPlaceholderText("Computer Science")
        self._edits["email"].setPlaceholderText("ada@uni.example")
        self._edits["room"].setPlaceholderText("optional, e.g. B-204")

    def set_enabled_fields(self, enabled: bool) -> None:
        for edit in self._edits.values():
            edit.setReadOnly(not enabled)
        self.always_available.setEnabled(enabled)

    # -- errors -----------------------------------------------------------------------

    def show_errors(self, errors: dict[str, str]) -> None:
        """Show each message beside its field; clear the others."""
        for field, label in self._errors.items():
            message = errors.get(field, "")
            label.setText(message)
            label.setVisible(bool(message))
            self._edits[field].setProperty("invalid", bool(message))
            self._edits[field].style().unpolish(self._edits[field])
            self._edits[field].style().polish(self._edits[field])

    def clear_errors(self) -> None:
        self.show_errors({})

    def error(self, field: str) -> str:
        """The message shown beside ``field`` (``""`` when none)."""
        label = self._errors[field]
        return label.text() if not label.isHidden() else ""

    def error_label(self, field: str) -> QLabel:
        return self._errors[field]

    def _typed(self, _text: str) -> None:
        emit(self.edited)
