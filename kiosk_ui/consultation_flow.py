"""``ConsultationFlow``: from a card's "Request consultation" to the lecturer's answer.

    board card --actionTriggered--> RequestForm --submitted--> worker: create
        --> RequestStatusView <-- queued signals <-- ConsultationWatcher (LISTEN)

It puts a "Request consultation" button on every card (the delegate's action
seam, ``CardAction``): enabled on an available lecturer, disabled with the
reason ("Busy right now", "Away right now", "Desk offline") otherwise. The
button opens the form in place of the board (``show_view``); a card read
(``kiosk_ui.rfid``) is looked up on the worker thread and fills the form; a
valid form is created on the worker thread, and the status view then follows
that request live through the watcher, whose events reach the GUI thread only
through ``ConsultationBridge``'s queued signals.

The board's idle signal (no touch for the idle timeout) brings the board back
from the form or the status view, and the form is emptied: the next student
must not see the last one's name. A request left behind keeps going: the desk
has it and the lecturer can still answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from consultease.domain import OFFLINE, FacultyView, Status
from consultease.errors import ConsultEaseError, DatabaseUnavailable
from consultease.live.consultations import (
    ConsultationChanged,
    ConsultationsDown,
    ConsultationsResynced,
    ConsultationView,
    ConsultationWatcher,
    WatcherEvent,
)
from consultease.live.requests import CardHolder, NewRequest
from kiosk_ui import theme
from kiosk_ui.board import Board
from kiosk_ui.consultation_form import RequestDraft, RequestForm, StudentCard
from kiosk_ui.consultation_status import RequestStatusView
from kiosk_ui.delegate import CardAction
from kiosk_ui.keyboard import OnScreenKeyboard
from kiosk_ui.model import FacultyListModel
from kiosk_ui.problems import describe_problem, scrub
from kiosk_ui.qtcompat import emit
from kiosk_ui.rfid import CardReaderWedge
from kiosk_ui.worker import Worker

log = logging.getLogger(__name__)

ACTION_KEY = "request"
ACTION_LABEL = "Request consultation"
UNAVAILABLE_REASONS = {
    Status.BUSY.value: "Busy right now",
    Status.AWAY.value: "Away right now",
    OFFLINE: "Desk offline right now",
}


class RequestService(Protocol):
    """What the flow needs from the database (``consultease.live.requests.KioskRequests``)."""

    def create(self, request: NewRequest) -> ConsultationView: ...

    def cancel(self, consultation_id: int) -> ConsultationView: ...

    def card_holder(self, uid: str) -> CardHolder | None: ...

    def close(self) -> None: ...


def request_action(view: FacultyView) -> CardAction:
    """The card button for ``view``: enabled only when the lecturer is available now."""
    shown = view.shown_status
    if shown == Status.AVAILABLE.value:
        return CardAction(key=ACTION_KEY, label=ACTION_LABEL)
    return CardAction(
        key=ACTION_KEY,
        label=ACTION_LABEL,
        enabled=False,
        reason=UNAVAILABLE_REASONS.get(shown, "Not available right now"),
    )


class ConsultationBridge(QObject):
    """Carries watcher events (watcher thread) onto the GUI thread as queued signals."""

    changed = Signal(object)
    resynced = Signal(object)
    down = Signal(str)

    def deliver(self, event: WatcherEvent) -> None:
        match event:
            case ConsultationChanged(view=view):
                emit(self.changed, view)
            case ConsultationsResynced(views=views):
                emit(self.resynced, views)
            case ConsultationsDown(reason=reason):
                emit(self.down, reason)


class ConsultationFlow(QObject):
    """The request form and status view of one kiosk window (see the module docstring)."""

    requestShown = Signal(object)
    """The status view shows a new state of the request (a ``ConsultationView``)."""

    def __init__(
        self,
        *,
        board: Board,
        model: FacultyListModel,
        worker: Worker,
        requests: RequestService,
        watcher: ConsultationWatcher,
        show_view: Callable[[QWidget], None],
        show_board: Callable[[], None],
        current_view: Callable[[], QWidget | None],
        keyboard: OnScreenKeyboard | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._board = board
        self._model = model
        self._worker = worker
        self._requests = requests
        self._watcher = watcher
        self._show_view = show_view
        self._show_board = show_board
        self._current_view = current_view
        self._keyboard = keyboard
        self._following: int | None = None
        self.form = RequestForm(keyboard=keyboard)
        self.status_view = RequestStatusView()
        self.bridge = ConsultationBridge(self)
        self._unsubscribe = watcher.subscribe(self.bridge.deliver)

        board.delegate.set_action_provider(request_action)
        board.delegate.actionTriggered.connect(self._triggered)
        board.idle.connect(self._idle)
        # A card touched to the reader while the board shows: its digits must not end up
        # in the search box (the reader types wherever the focus is). Taken back, ignored.
        self.board_wedge = CardReaderWedge(board)
        self.board_wedge.cardRead.connect(self._card_on_board)
        self.form.submitted.connect(self._submit)
        self.form.backRequested.connect(self.back_to_board)
        self.form.cardRead.connect(self._look_up_card)
        self.status_view.cancelRequested.connect(self._cancel)
        self.status_view.backRequested.connect(self.back_to_board)
        self.bridge.changed.connect(self._changed)
        self.bridge.resynced.connect(self._resynced)
        self.bridge.down.connect(self._down)

    def start(self) -> None:
        self._watcher.start()

    @property
    def following(self) -> int | None:
        """The id of the request the status view follows, if any."""
        return self._following

    # -- the card button ------------------------------------------------------------

    def _triggered(self, faculty_id: int, key: str) -> None:
        if key != ACTION_KEY:
            return
        row = self._model.row_of(faculty_id)
        if row is None:
            return
        self.open_form(self._model.view_at(row))

    def open_form(self, faculty: FacultyView) -> None:
        """The form for a request to ``faculty``, in place of the board."""
        self.form.begin(faculty)
        self._show_view(self.form)

    def back_to_board(self) -> None:
        """Leave the form or the status view; forget the student's input."""
        if self._keyboard is not None:
            self._keyboard.close_for_now()
        self._stop_following()
        if self.form.faculty is not None:
            self.form.begin(self.form.faculty)  # empty, for the next student
        self._show_board()

    def _idle(self) -> None:
        if self._current_view() in (self.form, self.status_view):
            log.info("the kiosk is idle: back to the board from the consultation request")
            self.back_to_board()

    def _card_on_board(self, uid: str) -> None:
        log.info("a card was read on the board; a student first picks a lecturer")

    # -- the form ---------------------------------------------------------------------

    def _look_up_card(self, uid: str) -> None:
        self.form.card_line.setText("Reading your card…")

        def found(holder: Any) -> None:
            card = (
                StudentCard(
                    student_name=holder.student_name,
                    student_id=holder.student_id,
                    course_code=holder.course_code,
                )
                if isinstance(holder, CardHolder)
                else None
            )
            self.form.fill_from_card(card, uid)

        def failed(exc: Exception) -> None:
            self.form.card_line.setText(
                f"Could not read your card ({_problem(exc)}): please type your details."
            )

        self._worker.submit(lambda: self._requests.card_holder(uid), found, failed)

    def _submit(self, draft: RequestDraft) -> None:
        request = NewRequest(
            faculty_id=draft.faculty_id,
            student_name=draft.student_name,
            student_id=draft.student_id,
            course_code=draft.course_code,
            message=draft.message,
        )

        def created(view: Any) -> None:
            self.form.set_busy(False)
            if isinstance(view, ConsultationView):
                self.follow(view)

        def failed(exc: Exception) -> None:
            self.form.set_busy(False)
            self.form.say(theme.sentence(_problem(exc)), error=True)

        self._worker.submit(lambda: self._requests.create(request), created, failed)

    # -- the status view ----------------------------------------------------------------

    def follow(self, view: ConsultationView) -> None:
        """Show ``view`` and follow it live from now on."""
        self._stop_following()
        if self._keyboard is not None:
            self._keyboard.close_for_now()
        self._following = view.id
        self.status_view.show_request(view)
        self.status_view.set_live(self._watcher.connected)
        self._watcher.watch(view.id)
        self._show_view(self.status_view)
        emit(self.requestShown, view)

    def _stop_following(self) -> None:
        if self._following is not None:
            self._watcher.unwatch(self._following)
            self._following = None

    def _changed(self, view: ConsultationView) -> None:
        if view.id == self._following:
            self.status_view.show_request(view)
            emit(self.requestShown, self.status_view.request)

    def _resynced(self, views: tuple[ConsultationView, ...]) -> None:
        self.status_view.set_live(True)
        for view in views:
            self._changed(view)

    def _down(self, reason: str) -> None:
        log.info("consultation updates down: %s", reason)
        self.status_view.set_live(False, reason)

    def _cancel(self, consultation_id: int) -> None:
        self.status_view.set_cancelling(True)

        def done(view: Any) -> None:
            self.status_view.set_cancelling(False)
            if isinstance(view, ConsultationView):
                self._changed(view)

        def failed(exc: Exception) -> None:
            self.status_view.set_cancelling(False, f"Could not cancel: {_problem(exc)}")

        self._worker.submit(lambda: self._requests.cancel(consultation_id), done, failed)

    def shutdown(self) -> None:
        self._unsubscribe()
        self._watcher.close()
        self._worker.wait(5000)
        self._requests.close()
        self.form.shutdown()
        self.status_view.shutdown()
        self.board_wedge.shutdown()


def _problem(exc: Exception) -> str:
    """A refusal of ours as it is ("you already have an open request…"); a fault in
    plain words without secrets."""
    if isinstance(exc, ConsultEaseError) and not isinstance(exc, DatabaseUnavailable):
        return scrub(str(exc))
    return describe_problem(str(exc))
