"""``RequestStatusView``: the live state of the request a student just made.

    +--------------------------------------------------------------------+
    | Your consultation request                [ Waiting ]               |  header, chip
    |                                                                    |
    |   Waiting for Dr. Ada Lovelace to answer                           |  headline
    |   Your request was sent to their desk. Waiting 1:24.               |  detail
    |                                                                    |
    |   Room CS-101                                                      |  (accepted)
    |   Request 41 · sent 14:02 · "Question about assignment 3"          |  meta
    | [ Back to the board ]                        [ Cancel request ]    |
    +--------------------------------------------------------------------+

It draws a ``ConsultationView`` (``show_request``) and nothing else: the flow
feeds it every change the watcher reports. The state is a word on a chip as
well as a colour. While the request waits, the elapsed time counts up every
second from the database's own clock (``ConsultationView.waited``), so a kiosk
with a wrong clock still shows the right wait. Cancel is offered while the
request is open (pending or accepted) and asks once more before it cancels.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from consultease.live.consultations import ConsultationView
from kiosk_ui import theme
from kiosk_ui.consultation_form import form_stylesheet
from kiosk_ui.qtcompat import emit

NO_ROOM = "Ask at the department office for the room."
CONFIRM_MS = 4_000
"""How long "Tap again to cancel" waits for the second tap."""


def elapsed_text(seconds: float) -> str:
    """``0:07``, ``12:30``, ``1:02:03``."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


_CANCELLED_BY = {
    "student": "You cancelled this request.",
    "admin": "The request was cancelled by staff.",
    "desk": "The request was cancelled at the lecturer's desk.",
}


def describe(view: ConsultationView, waited: float) -> tuple[str, str]:
    """The headline and the line under it for ``view`` after ``waited`` seconds."""
    who = view.faculty_name
    texts = {
        "pending": (
            f"Waiting for {who} to answer",
            f"Your request was sent to their desk. Waiting {elapsed_text(waited)}.",
        ),
        "accepted": (f"{who} will see you", "Your request was accepted."),
        "declined": (
            f"{who} is busy right now",
            "Your request was declined. Try another lecturer, or come back later.",
        ),
        "expired": (
            "No answer in time",
            f"{who} did not answer your request. Try again later, or ask another lecturer.",
        ),
        "cancelled": (
            "Request cancelled",
            _CANCELLED_BY.get(view.closed_by or "", "The request was cancelled."),
        ),
        "completed": ("Consultation completed", f"Your consultation with {who} is over."),
    }
    return texts.get(view.status, (view.status.capitalize(), ""))


class RequestStatusView(QWidget):
    """One request, live. ``cancelRequested(id)`` and ``backRequested()`` go to the flow."""

    cancelRequested = Signal("qlonglong")  # type: ignore[arg-type]  # a C++ type name
    backRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("requestStatus")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self._view: ConsultationView | None = None
        self._waited_at_read = 0.0
        self._received = 0.0
        self._armed = False

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._build_header())
        layout.addLayout(self._build_body(), 1)
        layout.addLayout(self._build_buttons())
        self.setStyleSheet(form_stylesheet())

        self._tick = QTimer(self)
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self._redraw)
        self._confirm = QTimer(self)
        self._confirm.setSingleShot(True)
        self._confirm.setInterval(CONFIRM_MS)
        self._confirm.timeout.connect(self._disarm)

    def _build_header(self) -> QFrame:
        title = QLabel("Your consultation request")
        title.setObjectName("formTitle")
        self.chip = QLabel()
        self.chip.setObjectName("statusChip")
        self.chip.setMinimumHeight(36)
        header = QFrame()
        header.setObjectName("formHeader")
        row = QHBoxLayout(header)
        row.setContentsMargins(20, 8, 20, 8)
        row.addWidget(title, 1)
        row.addWidget(self.chip)
        return header

    def _build_body(self) -> QVBoxLayout:
        self.headline = _label("statusHeadline")
        self.detail = _label("statusDetail")
        self.room = _label("statusRoom")
        self.meta = _label("statusMeta")
        self.live_line = _label("statusMeta")
        body = QVBoxLayout()
        body.setContentsMargins(32, 20, 32, 10)
        body.setSpacing(10)
        for label in (self.headline, self.detail, self.room, self.meta):
            body.addWidget(label)
        body.addStretch(1)
        body.addWidget(self.live_line)
        return body

    def _build_buttons(self) -> QHBoxLayout:
        self.back_button = QPushButton("Back to the board")
        self.back_button.setObjectName("backButton")
        self.back_button.clicked.connect(self.backRequested)
        self.cancel_button = QPushButton("Cancel request")
        self.cancel_button.setObjectName("cancelRequest")
        self.cancel_button.clicked.connect(self._cancel_clicked)
        for button in (self.back_button, self.cancel_button):
            button.setMinimumHeight(theme.TOUCH)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(20, 6, 20, 10)
        buttons.addWidget(self.back_button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        return buttons

    @property
    def request(self) -> ConsultationView | None:
        return self._view

    def show_request(self, view: ConsultationView) -> None:
        """Draw ``view``; a stale one (an older version of the same request) is ignored."""
        current = self._view
        if current is not None and current.id == view.id and view.version < current.version:
            return
        if current is None or current.id != view.id or current.status != view.status:
            self._disarm()
        self._view = view
        self._waited_at_read = view.waited.total_seconds()
        self._received = time.monotonic()
        if view.status == "pending":
            self._tick.start()
        else:
            self._tick.stop()
        self._redraw()

    def set_live(self, live: bool, reason: str = "") -> None:
        """Say when the state shown may be old (the watcher is reconnecting)."""
        self.live_line.setText(
            "" if live else "Live updates paused, reconnecting… this may not be the latest."
        )
        self.live_line.setVisible(not live)

    def set_cancelling(self, busy: bool, problem: str = "") -> None:
        self.cancel_button.setEnabled(not busy and self._view is not None and self._view.open)
        if problem:
            self.live_line.setText(problem)
            self.live_line.setVisible(True)

    def waited_seconds(self) -> float:
        return self._waited_at_read + (time.monotonic() - self._received)

    def _redraw(self) -> None:
        view = self._view
        if view is None:
            return
        style = theme.request_style(view.status)
        self.chip.setText(style.label)
        self.chip.setStyleSheet(f"background: {style.chip}; color: {style.text};")
        headline, detail = describe(view, self.waited_seconds())
        self.headline.setText(headline)
        self.detail.setText(detail)
        if view.status == "accepted":
            self.room.setText(f"Go to Room {view.room}" if view.room else NO_ROOM)
            self.room.show()
        else:
            self.room.hide()
        sent = view.created_at.astimezone()
        message = view.message if len(view.message) <= 80 else view.message[:79] + "…"
        self.meta.setText(f"Request {view.id} · sent {sent:%H:%M} · “{message}”")
        self.cancel_button.setVisible(view.open)
        self.cancel_button.setEnabled(view.open)
        self.cancel_button.setText("Tap again to cancel" if self._armed else "Cancel request")

    def _cancel_clicked(self) -> None:
        view = self._view
        if view is None or not view.open:
            return
        if not self._armed:
            self._armed = True
            self._confirm.start()
            self._redraw()
            return
        self._disarm()
        self.cancel_button.setEnabled(False)
        emit(self.cancelRequested, view.id)

    def _disarm(self) -> None:
        self._armed = False
        self._confirm.stop()
        if self._view is not None:
            self.cancel_button.setText("Cancel request")

    def shutdown(self) -> None:
        self._tick.stop()
        self._confirm.stop()


def _label(name: str, text: str = "") -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    label.setWordWrap(True)
    return label
