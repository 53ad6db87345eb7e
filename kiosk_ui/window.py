"""``KioskWindow``: puts the pieces together and owns their lifetime.

    LiveFeed (its own thread) --events--> ListenerBridge --queued signals-->
        FacultyListModel (rows) --> Board (students) and AdminPanel (admins)

The window is a stack of full-screen views (``pages``: the board, the admin
panel, and whatever ``show_view`` is given, e.g. a consultation form) above the
on-screen keyboard, which any view's text fields can ``attach`` to.

The feed is a ``FacultyListener`` (LISTEN on the primary) unless the caller
passes another ``consultease.live.feed.LiveFeed`` (the broker's retained state).

``start()`` subscribes the bridge, then starts the listener, so the first
resync reaches the model. Closing the window (or ``shutdown()``) unsubscribes,
closes the listener, waits for the admin worker and stops the timers, so no
thread outlives the window.

``show_kiosk(fullscreen=True)`` fills the screen by itself: ``showFullScreen``
is only a request to a window manager, and a kiosk usually runs in a bare X
session without one, so the window also takes the screen's geometry, without
a frame, and follows it when the screen changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtGui import QCloseEvent, QGuiApplication
from PySide6.QtWidgets import QMainWindow, QStackedWidget, QVBoxLayout, QWidget

from consultease.admin.faculty import FacultyAdmin
from consultease.db.consultations import Consultations
from consultease.db.students import Students
from consultease.live.consultations import ConsultationWatcher
from consultease.live.feed import LiveFeed
from consultease.live.listener import FacultyListener
from consultease.live.requests import KioskRequests
from kiosk_ui.admin_panel import AdminPanel, Draft
from kiosk_ui.admin_requests import RequestsAdmin
from kiosk_ui.board import Board, BoardOptions
from kiosk_ui.bridge import ListenerBridge
from kiosk_ui.consultation_flow import ConsultationFlow
from kiosk_ui.keyboard import OnScreenKeyboard
from kiosk_ui.login import Authenticator, LoginDialog
from kiosk_ui.model import FacultyListModel
from kiosk_ui.qtcompat import emit
from kiosk_ui.worker import Worker

log = logging.getLogger(__name__)

LISTENER_NAME = "consultease-kiosk"
"""``application_name`` of the kiosk's LISTEN connection (visible in pg_stat_activity)."""
WATCHER_NAME = "consultease-kiosk-requests"
"""``application_name`` of the LISTEN connection following this kiosk's requests."""
ADMIN_WATCHER_NAME = "consultease-kiosk-admin-requests"
"""``application_name`` of the admin view's LISTEN connection (every open request)."""
REQUESTS_NAME = "consultease-kiosk-write"
"""``application_name`` of the short transactions that create and cancel requests."""


def default_accounts(database_url: str) -> Authenticator:
    from consultease.admin.accounts import AdminAccounts  # noqa: PLC0415 - only when someone signs in

    accounts: Authenticator = AdminAccounts(database_url)
    return accounts


class KioskWindow(QMainWindow):
    """The board, and the admin panel after a sign-in."""

    closed = Signal()
    """The window closed; the listener and the worker have stopped."""

    def __init__(
        self,
        database_url: str,
        *,
        idle_timeout: float = 60.0,
        signout_warning: float = 30.0,
        options: BoardOptions | None = None,
        listener_name: str = LISTENER_NAME,
        accounts: Callable[[str], Authenticator] = default_accounts,
        feed: LiveFeed | None = None,
        consultation_requests: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("ConsultEase")
        self._database_url = database_url
        self._accounts_factory = accounts
        self._accounts: Authenticator | None = None
        self._faculty_admin: FacultyAdmin | None = None
        self._signout_warning = signout_warning
        self._drafts: dict[str, Draft] = {}
        """Unsaved admin edits kept across a sign-out, by admin (lower-cased)."""
        self._closed = False

        self.listener: LiveFeed = (
            feed
            if feed is not None
            else FacultyListener(database_url, application_name=listener_name)
        )
        self.model = FacultyListModel(self)
        self.bridge = ListenerBridge(self)
        self.worker = Worker(self)
        self.board = Board(self.model, options=options, idle_timeout=idle_timeout)
        self.admin_panel: AdminPanel | None = None
        self.requests_admin: RequestsAdmin | None = None
        self._consultations_api: Consultations | None = None
        self._students_api: Students | None = None
        self.login_dialog: LoginDialog | None = None

        # Listener events, queued onto this thread. The model first, so the
        # board sees the new rows when it hears of the same event.
        self.bridge.resynced.connect(self.model.apply_resync)
        self.bridge.facultyChanged.connect(self.model.apply_change)
        self.bridge.facultyRemoved.connect(self.model.apply_removal)
        self.bridge.resynced.connect(self.board.note_resynced)
        self.bridge.facultyChanged.connect(self.board.note_update)
        self.bridge.facultyRemoved.connect(self.board.note_update)
        self.bridge.connectionChanged.connect(self.board.set_connection)
        self.bridge.reconnecting.connect(self.board.note_reconnecting)
        self.board.adminRequested.connect(self.show_login)
        self.board.idle.connect(self._idle)

        self.pages = QStackedWidget()
        self.pages.addWidget(self.board)
        self.keyboard = OnScreenKeyboard()
        self.keyboard.attach(self.board.search_box)
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.pages, 1)
        column.addWidget(self.keyboard)
        self.setCentralWidget(central)
        self.resize(1024, 600)
        self._fill_screen = False
        self.consultations: ConsultationFlow | None = None
        if consultation_requests:
            self.consultations = self._consultation_flow()

    def _consultation_flow(self) -> ConsultationFlow:
        """The cards' "Request consultation" button, the form and the live status view."""
        flow = ConsultationFlow(
            board=self.board,
            model=self.model,
            worker=self.worker,
            requests=KioskRequests(self._database_url, application_name=REQUESTS_NAME),
            watcher=ConsultationWatcher(self._database_url, application_name=WATCHER_NAME),
            show_view=self.show_view,
            show_board=self.show_board,
            current_view=self.pages.currentWidget,
            keyboard=self.keyboard,
            parent=self,
        )
        # Owned by the page stack from the start: a widget without a parent would be
        # destroyed by whichever thread's garbage collection finds it last.
        self.pages.addWidget(flow.form)
        self.pages.addWidget(flow.status_view)
        return flow

    # -- showing ----------------------------------------------------------------------------

    def show_kiosk(self, *, fullscreen: bool = False) -> None:
        """Show the window; with ``fullscreen``, fill the screen with or without a WM."""
        if not fullscreen:
            self.show()
            return
        self._fill_screen = True
        self.setWindowFlag(Qt.WindowType.FramelessWindowHint, True)
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is not None:
            self.setGeometry(screen.geometry())
            screen.geometryChanged.connect(self._screen_resized)
        self.showFullScreen()

    def _screen_resized(self, geometry: QRect) -> None:
        if self._fill_screen:
            self.setGeometry(geometry)

    def show_view(self, view: QWidget) -> None:
        """Show a full-screen view in place of the board (added to ``pages`` if new)."""
        if self.pages.indexOf(view) < 0:
            self.pages.addWidget(view)
        self.pages.setCurrentWidget(view)

    def show_board(self) -> None:
        self.pages.setCurrentWidget(self.board)

    def start(self) -> None:
        """Subscribe, then start the listener (its first resync fills the board)."""
        self.bridge.attach(self.listener)
        self.listener.start()
        if self.consultations is not None:
            self.consultations.start()
        self.board.setFocus(Qt.FocusReason.OtherFocusReason)

    # -- admin ----------------------------------------------------------------------------

    def show_login(self) -> None:
        if self.admin_panel is not None:
            self.pages.setCurrentWidget(self.admin_panel)
            return
        if self.login_dialog is None:
            if self._accounts is None:
                self._accounts = self._accounts_factory(self._database_url)
            self.login_dialog = LoginDialog(self._accounts, self.worker, self)
            self.login_dialog.loggedIn.connect(self.open_admin)
        self.login_dialog.reset()
        self.login_dialog.open()

    def open_admin(self, username: str) -> None:
        """Show the admin panel for ``username`` (the audit actor)."""
        self.close_admin()
        if self._faculty_admin is None:
            self._faculty_admin = FacultyAdmin(self._database_url)
        self.admin_panel = AdminPanel(
            self._faculty_admin,
            actor=username,
            model=self.model,
            worker=self.worker,
            keyboard=self.keyboard,
        )
        self.admin_panel.signedOut.connect(self.close_admin)
        self.admin_panel.idleExpired.connect(self.close_admin)
        self.admin_panel.requestsRequested.connect(self.show_requests_admin)
        self.show_view(self.admin_panel)
        draft = self._drafts.pop(username.lower(), None)
        if draft is not None:
            self.admin_panel.restore(draft)

    def show_requests_admin(self) -> None:
        """Open consultation requests and the student register, for the signed-in admin."""
        panel = self.admin_panel
        if panel is None:
            return
        if self.requests_admin is None:
            if self._consultations_api is None:
                self._consultations_api = Consultations(self._database_url)
            if self._students_api is None:
                self._students_api = Students(self._database_url)
            self.requests_admin = RequestsAdmin(
                actor=panel.actor,
                consultations=self._consultations_api,
                students=self._students_api,
                watcher=ConsultationWatcher(
                    self._database_url, follow_all=True, application_name=ADMIN_WATCHER_NAME
                ),
                worker=self.worker,
                keyboard=self.keyboard,
            )
            self.requests_admin.facultyRequested.connect(lambda: self.show_view(panel))
            self.requests_admin.signedOut.connect(self.close_admin)
            self.requests_admin.start()
        self.show_view(self.requests_admin)

    def _close_requests_admin(self) -> None:
        view, self.requests_admin = self.requests_admin, None
        if view is not None:
            view.shutdown()
            self.pages.removeWidget(view)
            view.deleteLater()

    def draft_of(self, username: str) -> Draft | None:
        """The unsaved edit kept for ``username``'s next sign-in, if any."""
        return self._drafts.get(username.lower())

    def close_admin(self) -> None:
        """Sign out: back to the board. An unsaved edit is kept for the same admin."""
        panel, self.admin_panel = self.admin_panel, None
        self.show_board()
        self._close_requests_admin()
        if panel is not None:
            draft = panel.draft()
            if draft is not None:
                log.info("keeping %s's unsaved edit for their next sign-in", draft.actor)
                self._drafts[draft.actor.lower()] = draft
            panel.shutdown()
            self.pages.removeWidget(panel)
            panel.deleteLater()

    def _idle(self) -> None:
        """Nobody touched the kiosk for a while: a public screen must not stay signed in."""
        if self.worker.busy:
            return  # let a save finish; the next idle period signs out
        if self.login_dialog is not None and self.login_dialog.isVisible():
            self.login_dialog.reject()
        if self.admin_panel is not None and not self.admin_panel.warning_active:
            if self.pages.currentWidget() is self.requests_admin:
                self.show_view(self.admin_panel)  # the warning is drawn on the panel
            log.info("the kiosk is idle: warning the admin before signing out")
            self.keyboard.close_for_now()  # nobody is typing; the warning needs the room
            self.admin_panel.begin_signout_warning(self._signout_warning)

    # -- shutting down ----------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop the listener, the worker and the timers. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.bridge.detach()
        self.listener.close(timeout=2.0)
        if self.consultations is not None:
            self.consultations.shutdown()
        self.worker.wait(5000)
        self.board.shutdown()
        if self.admin_panel is not None:
            self.admin_panel.shutdown()
        self._close_requests_admin()
        if self._faculty_admin is not None:
            self._faculty_admin.close()
        for api in (self._consultations_api, self._students_api):
            if api is not None:
                api.close()
        close_accounts = getattr(self._accounts, "close", None)
        if callable(close_accounts):
            close_accounts()
        log.info("kiosk stopped")

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)
        emit(self.closed)
