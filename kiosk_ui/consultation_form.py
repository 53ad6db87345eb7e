"""``RequestForm``: a student asks an available lecturer for a consultation.

    +--------------------------------------------------------------------+
    | Request a consultation              Dr. Ada Lovelace · Room CS-101 |  header
    | Tap your ID card on the reader, or type your details.              |  card line
    | Your name        [                                             ]   |
    | Student ID       [              ]   Course  [          ]           |
    | Message          [                                             ]   |
    |                  [                                             ]   |
    |                                                     42 / 500       |  counter
    | [ Back to the board ]                        [ Send request ]      |
    +--------------------------------------------------------------------+

Touch first: every field and button is at least ``theme.TOUCH`` high and the
window's on-screen keyboard comes up under the field tapped. A USB RFID reader
(``kiosk_ui.rfid``) fills name, student ID and course from the ``student``
table; the lookup itself is the flow's (``kiosk_ui.consultation_flow``), off
the GUI thread. ``validate`` is the form's rule, the same limits the
``consultation`` table's CHECKs hold: a name, a message of 1..500 characters.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from consultease.consultation import (
    MAX_COURSE_CODE,
    MAX_MESSAGE,
    MAX_STUDENT_ID,
    MAX_STUDENT_NAME,
    RequestFields,
)
from consultease.domain import FacultyView
from consultease.errors import ValidationError
from kiosk_ui import theme
from kiosk_ui.keyboard import OnScreenKeyboard
from kiosk_ui.qtcompat import emit
from kiosk_ui.rfid import CardReaderWedge
from kiosk_ui.theme import sentence

MESSAGE_MAX = MAX_MESSAGE
NAME_MAX = MAX_STUDENT_NAME
STUDENT_ID_MAX = MAX_STUDENT_ID
COURSE_MAX = MAX_COURSE_CODE
_FIELDS = {
    "student_name": "name",
    "student_id": "student_id",
    "course_code": "course",
    "message": "message",
}
"""The backend's field names (``RequestFields``) -> the form's."""
CARD_HINT = "Tap your ID card on the reader, or type your details."


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestDraft:
    """What the student filled in, trimmed; empty optional fields are ``None``."""

    faculty_id: int
    student_name: str
    student_id: str | None
    course_code: str | None
    message: str


@dataclass(frozen=True, kw_only=True, slots=True)
class StudentCard:
    """A student found by card UID in the ``student`` table."""

    student_name: str
    student_id: str | None
    course_code: str | None = None


def validate(
    *, faculty_id: int, name: str, student_id: str, course: str, message: str
) -> RequestDraft | dict[str, str]:
    """The draft, or the problem with each field that has one (field -> sentence)."""
    problems: dict[str, str] = {}
    name, student_id, course, message = (
        name.strip(),
        student_id.strip(),
        course.strip(),
        message.strip(),
    )
    if not name:
        problems["name"] = "Please enter your name."
    elif len(name) > NAME_MAX:
        problems["name"] = f"A name has at most {NAME_MAX} characters."
    if len(student_id) > STUDENT_ID_MAX:
        problems["student_id"] = f"A student ID has at most {STUDENT_ID_MAX} characters."
    if len(course) > COURSE_MAX:
        problems["course"] = f"A course code has at most {COURSE_MAX} characters."
    if not message:
        problems["message"] = "Please say briefly what you would like to discuss."
    elif len(message) > MESSAGE_MAX:
        problems["message"] = f"The message is {len(message) - MESSAGE_MAX} characters too long."
    if problems:
        return problems
    try:  # the backend's rule has the last word (e.g. which characters a student id takes)
        fields = RequestFields.clean(
            student_name=name, student_id=student_id, course_code=course, message=message
        )
    except ValidationError as exc:
        return {_FIELDS.get(exc.field or "", "message"): sentence(str(exc))}
    return RequestDraft(
        faculty_id=faculty_id,
        student_name=fields.student_name,
        student_id=fields.student_id,
        course_code=fields.course_code,
        message=fields.message,
    )


class RequestForm(QWidget):
    """The form; ``submitted(RequestDraft)`` or ``backRequested()``."""

    submitted = Signal(object)
    backRequested = Signal()
    cardRead = Signal(str)
    """The card reader typed a UID (the flow looks it up)."""

    def __init__(
        self, *, keyboard: OnScreenKeyboard | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("requestForm")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # a card read reaches the form
        self._faculty: FacultyView | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._build_header())
        layout.addWidget(self._build_fields(), 1)
        layout.addLayout(self._build_buttons())
        self.setStyleSheet(form_stylesheet())

        self.wedge = CardReaderWedge(self)
        self.wedge.cardRead.connect(self.cardRead)
        if keyboard is not None:
            for box in (self.name_box, self.student_id_box, self.course_box):
                keyboard.attach(box)
            keyboard.attach(self.message_box)
        self._count()

    def _build_header(self) -> QFrame:
        self.title = _label("formTitle", "Request a consultation")
        self.lecturer = _label("formLecturer")
        self.lecturer.setWordWrap(False)
        header = QFrame()
        header.setObjectName("formHeader")
        header_row = QHBoxLayout(header)
        header_row.setContentsMargins(20, 8, 20, 8)
        header_row.addWidget(self.title, 1)
        header_row.addWidget(self.lecturer)
        return header

    def _build_fields(self) -> QScrollArea:
        self.card_line = _label("cardLine", CARD_HINT)
        self.name_box = _line("Your name", NAME_MAX)
        self.student_id_box = _line("Optional", STUDENT_ID_MAX)
        self.course_box = _line("Optional, e.g. CS101", COURSE_MAX)
        self.message_box = QPlainTextEdit()
        self.message_box.setObjectName("messageBox")
        self.message_box.setPlaceholderText("What would you like to discuss?")
        self.message_box.setMinimumHeight(theme.TOUCH * 2)
        self.message_box.setTabChangesFocus(True)
        self.counter = _label("counter")
        self.counter.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.message_box.textChanged.connect(self._count)
        self.errors = {
            key: _label("fieldError") for key in ("name", "student_id", "course", "message")
        }
        for problem in self.errors.values():
            problem.hide()

        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(4)
        grid.addWidget(_label("fieldLabel", "Your name"), 0, 0)
        grid.addWidget(self.name_box, 0, 1, 1, 3)
        grid.addWidget(self.errors["name"], 1, 1, 1, 3)
        grid.addWidget(_label("fieldLabel", "Student ID"), 2, 0)
        grid.addWidget(self.student_id_box, 2, 1)
        grid.addWidget(_label("fieldLabel", "Course"), 2, 2)
        grid.addWidget(self.course_box, 2, 3)
        grid.addWidget(self.errors["student_id"], 3, 1)
        grid.addWidget(self.errors["course"], 3, 3)
        grid.addWidget(_label("fieldLabel", "Message"), 4, 0, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(self.message_box, 4, 1, 1, 3)
        grid.addWidget(self.errors["message"], 5, 1, 1, 2)
        grid.addWidget(self.counter, 5, 3)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)

        body = QWidget()
        body.setObjectName("formBody")
        column = QVBoxLayout(body)
        column.setContentsMargins(20, 10, 20, 10)
        column.addWidget(self.card_line)
        column.addLayout(grid)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setObjectName("formScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(body)
        return scroll

    def _build_buttons(self) -> QHBoxLayout:
        self.status_line = _label("formStatus")
        self.back_button = _button("Back to the board", "backButton")
        self.back_button.clicked.connect(self.backRequested)
        self.send_button = _button("Send request", "sendButton")
        self.send_button.clicked.connect(self.submit)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(20, 6, 20, 10)
        buttons.addWidget(self.back_button)
        buttons.addWidget(self.status_line, 1)
        buttons.addWidget(self.send_button)
        return buttons

    # -- state --------------------------------------------------------------------

    @property
    def faculty(self) -> FacultyView | None:
        return self._faculty

    def begin(self, faculty: FacultyView) -> None:
        """A fresh, empty form for a request to ``faculty``."""
        self._faculty = faculty
        self.lecturer.setText(
            f"{faculty.name} · Room {faculty.room}" if faculty.room else faculty.name
        )
        for box in (self.name_box, self.student_id_box, self.course_box):
            box.clear()
        self.message_box.clear()
        self.card_line.setText(CARD_HINT)
        self._show_problems({})
        self.set_busy(False)
        self.say("")
        self.setFocus(Qt.FocusReason.OtherFocusReason)

    def fill_from_card(self, card: StudentCard | None, uid: str) -> None:
        """The card reader's lookup came back: fill the fields, or say it is unknown."""
        if card is None:
            self.card_line.setText(f"Card {uid} is not registered: please type your details.")
            return
        self.name_box.setText(card.student_name)
        self.student_id_box.setText(card.student_id or "")
        if card.course_code:
            self.course_box.setText(card.course_code)
        self.card_line.setText(f"Card read: welcome, {card.student_name}.")
        self._show_problems({})
        self.message_box.setFocus(Qt.FocusReason.OtherFocusReason)

    def set_busy(self, busy: bool) -> None:
        self.send_button.setEnabled(not busy)
        self.send_button.setText("Sending…" if busy else "Send request")

    def say(self, text: str, *, error: bool = False) -> None:
        self.status_line.setText(text)
        self.status_line.setProperty("error", error)
        self.status_line.style().unpolish(self.status_line)
        self.status_line.style().polish(self.status_line)

    def submit(self) -> None:
        """Check the fields; emit ``submitted`` with the draft, or show each problem."""
        if self._faculty is None:
            return
        result = validate(
            faculty_id=self._faculty.id,
            name=self.name_box.text(),
            student_id=self.student_id_box.text(),
            course=self.course_box.text(),
            message=self.message_box.toPlainText(),
        )
        if isinstance(result, dict):
            self._show_problems(result)
            self.say("Please check the fields marked in red.", error=True)
            return
        self._show_problems({})
        self.say("")
        self.set_busy(True)
        emit(self.submitted, result)

    def problems(self) -> dict[str, str]:
        """The problems shown now, by field (tests)."""
        return {k: v.text() for k, v in self.errors.items() if not v.isHidden()}

    def _show_problems(self, problems: dict[str, str]) -> None:
        boxes: dict[str, QWidget] = {
            "name": self.name_box,
            "student_id": self.student_id_box,
            "course": self.course_box,
            "message": self.message_box,
        }
        for key, label in self.errors.items():
            text = problems.get(key, "")
            label.setText(text)
            label.setVisible(bool(text))
            box = boxes[key]
            box.setProperty("invalid", bool(text))
            box.style().unpolish(box)
            box.style().polish(box)

    def _count(self) -> None:
        used = len(self.message_box.toPlainText().strip())
        self.counter.setText(f"{used} / {MESSAGE_MAX}")
        self.counter.setProperty("error", used > MESSAGE_MAX)
        self.counter.style().unpolish(self.counter)
        self.counter.style().polish(self.counter)

    def shutdown(self) -> None:
        self.wedge.shutdown()


def _label(name: str, text: str = "") -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    label.setWordWrap(True)
    return label


def _line(placeholder: str, limit: int) -> QLineEdit:
    box = QLineEdit()
    box.setPlaceholderText(placeholder)
    box.setMaxLength(limit)
    box.setMinimumHeight(theme.TOUCH)
    return box


def _button(text: str, name: str) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.setMinimumHeight(theme.TOUCH)
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the caret stays in the field
    return button


def form_stylesheet() -> str:
    disabled = (
        f"color: {theme.DISABLED_TEXT}; background: {theme.DISABLED_BG}; "
        f"border: 1px dashed {theme.DISABLED_TEXT};"
    )
    return f"""
    #requestForm, #requestStatus, #formBody {{ background: {theme.BACKGROUND}; }}
    #formScroll {{ background: {theme.BACKGROUND}; }}
    QLabel {{ font-size: 18px; color: {theme.INK}; }}
    #formHeader {{ background: {theme.HEADER}; }}
    #formTitle {{ color: {theme.HEADER_TEXT}; font-size: 24px; font-weight: bold; }}
    #formLecturer {{ color: {theme.HEADER_TEXT}; font-size: 20px; }}
    #cardLine {{ color: {theme.MUTED}; font-size: 17px; padding: 4px 0 8px 0; }}
    #fieldLabel {{ font-size: 18px; font-weight: bold; }}
    #fieldError {{ color: {theme.ERROR}; font-weight: bold; font-size: 15px; }}
    #counter {{ color: {theme.MUTED}; font-size: 15px; }}
    #counter[error="true"], #formStatus[error="true"] {{ color: {theme.ERROR};
                                                        font-weight: bold; }}
    #formStatus {{ font-size: 16px; padding: 0 12px; }}
    QLineEdit, QPlainTextEdit {{ font-size: 19px; padding: 0 10px; background: {theme.CARD};
        color: {theme.INK}; border: 1px solid {theme.CARD_BORDER}; border-radius: 6px; }}
    QLineEdit[invalid="true"], QPlainTextEdit[invalid="true"] {{
        border: 2px solid {theme.ERROR}; }}
    QPushButton {{ font-size: 19px; padding: 0 22px; background: {theme.CARD};
        color: {theme.INK}; border: 1px solid {theme.CARD_BORDER}; border-radius: 8px; }}
    QPushButton#sendButton, QPushButton#primary {{ background: {theme.ACCENT};
        color: {theme.ACCENT_TEXT}; border-color: {theme.ACCENT}; font-weight: bold; }}
    QPushButton#cancelRequest {{ color: {theme.ERROR}; border-color: {theme.ERROR}; }}
    QPushButton:disabled, QPushButton#sendButton:disabled,
    QPushButton#cancelRequest:disabled {{ {disabled} }}
    #statusHeadline {{ font-size: 34px; font-weight: bold; }}
    #statusDetail {{ font-size: 20px; }}
    #statusRoom {{ font-size: 28px; font-weight: bold; }}
    #statusMeta {{ color: {theme.MUTED}; font-size: 17px; }}
    #statusChip {{ font-size: 20px; font-weight: bold; border-radius: 18px; padding: 4px 18px; }}
    """
