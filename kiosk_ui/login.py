"""``LoginDialog``: an admin signs in before the admin panel opens.

The check runs on the ``Worker`` thread (password hashing is slow on
purpose), so the board behind the dialog keeps updating. The dialog covers
the kiosk window (a bare X session has no window manager to place it) and
carries its own on-screen keyboard for the two fields. A failed login
shows the message of ``AuthenticationError`` (wrong credentials, or a locked
account) under the fields; any other error of the core (say, the database is
down) is shown the same way.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from consultease.errors import AuthenticationError, ConsultEaseError
from kiosk_ui import theme
from kiosk_ui.keyboard import OnScreenKeyboard
from kiosk_ui.qtcompat import emit
from kiosk_ui.theme import sentence
from kiosk_ui.worker import Worker

log = logging.getLogger(__name__)


class Authenticator(Protocol):
    """What the dialog needs of ``consultease.admin.accounts.AdminAccounts``."""

    def login(self, username: str, password: str) -> str:
        """The canonical username; raises ``AuthenticationError``."""
        ...


class LoginDialog(QDialog):
    """Username and password; emits ``loggedIn(username)`` and closes on success."""

    loggedIn = Signal(str)

    def __init__(
        self, accounts: Authenticator, worker: Worker, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("login")
        self.setWindowTitle("Admin sign-in")
        self.setModal(True)
        self.setWindowFlag(Qt.WindowType.FramelessWindowHint, True)
        self._accounts = accounts
        self._worker = worker

        title = QLabel("Admin sign-in")
        title.setObjectName("loginTitle")
        self.username = QLineEdit()
        self.username.setObjectName("username")
        self.username.setPlaceholderText("username")
        self.password = QLineEdit()
        self.password.setObjectName("password")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("password")
        self.error_label = QLabel()
        self.error_label.setObjectName("loginError")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        self.sign_in_button = QPushButton("Sign in")
        self.sign_in_button.setObjectName("signIn")
        self.cancel_button = QPushButton("Cancel")
        # No default button: Return is handled by each field (username -> password ->
        # sign in). A dialog's default button would also take that Return, and Qt made
        # Cancel the default, so Return in the username field cancelled the dialog.
        for button in (self.sign_in_button, self.cancel_button):
            button.setAutoDefault(False)
            button.setDefault(False)
        for widget in (self.username, self.password, self.sign_in_button, self.cancel_button):
            widget.setMinimumHeight(theme.TOUCH)
        self.sign_in_button.setMinimumWidth(140)
        self.cancel_button.setMinimumWidth(120)
        self.keyboard = OnScreenKeyboard(self)
        self.keyboard.attach(self.username, enter_closes=False)
        self.keyboard.attach(self.password, enter_closes=False)
        self._lay_out(title)
        self.setMinimumWidth(460)
        self.setStyleSheet(
            f"""
            #login {{ background: {theme.CARD}; }}
            QLabel {{ font-size: 18px; color: {theme.INK}; }}
            #loginTitle {{ font-size: 24px; font-weight: bold; }}
            #loginError {{ color: {theme.ERROR}; font-weight: bold; }}
            QLineEdit, QPushButton {{ font-size: 18px; padding: 0 12px; }}
            """
        )

        self.sign_in_button.clicked.connect(self.submit)
        self.password.returnPressed.connect(self.submit)
        self.username.returnPressed.connect(self.password.setFocus)
        self.cancel_button.clicked.connect(self.reject)
        self.username.setFocus(Qt.FocusReason.OtherFocusReason)

    def _lay_out(self, title: QLabel) -> None:
        """The form in a centred column; the keyboard along the bottom."""
        form = QFormLayout()
        form.addRow("Username", self.username)
        form.addRow("Password", self.password)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.sign_in_button)
        panel = QWidget()
        panel.setMaximumWidth(560)
        column = QVBoxLayout(panel)
        column.setContentsMargins(24, 12, 24, 12)
        column.setSpacing(12)
        column.addWidget(title)
        column.addLayout(form)
        column.addWidget(self.error_label)
        column.addLayout(buttons)
        centred = QHBoxLayout()
        centred.addStretch(1)
        centred.addWidget(panel, 4)
        centred.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addStretch(1)
        layout.addLayout(centred)
        layout.addStretch(1)
        layout.addWidget(self.keyboard)

    def showEvent(self, event: QShowEvent) -> None:
        """Cover the kiosk window: placed by us, since there may be no window manager."""
        parent = self.parentWidget()
        if parent is not None:
            self.setGeometry(parent.window().geometry())
        super().showEvent(event)

    def reset(self) -> None:
        """Empty fields and no message, for the next person at the kiosk."""
        self.username.clear()
        self.password.clear()
        self.error_label.hide()
        self._set_busy(False)
        self.username.setFocus(Qt.FocusReason.OtherFocusReason)

    def reject(self) -> None:
        self.password.clear()
        super().reject()

    def submit(self) -> None:
        username, password = self.username.text().strip(), self.password.text()
        if not username or not password:
            self._show_error("Enter your username and password.")
            return
        self._set_busy(True)
        self.error_label.hide()
        accounts = self._accounts
        self._worker.submit(
            lambda: accounts.login(username, password), self._succeeded, self._failed
        )

    def _succeeded(self, username: Any) -> None:
        self._set_busy(False)
        self.password.clear()
        log.info("admin %s signed in at the kiosk", username)
        emit(self.loggedIn, str(username))
        self.accept()

    def _failed(self, exc: Exception) -> None:
        self._set_busy(False)
        self.password.clear()
        self.password.setFocus()
        if isinstance(exc, AuthenticationError | ConsultEaseError):
            self._show_error(sentence(str(exc)))
        else:
            log.error("admin sign-in failed unexpectedly", exc_info=exc)
            self._show_error("Sign-in failed unexpectedly; see the kiosk log.")

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()

    def _set_busy(self, busy: bool) -> None:
        self.sign_in_button.setEnabled(not busy)
        self.sign_in_button.setText("Signing in…" if busy else "Sign in")
