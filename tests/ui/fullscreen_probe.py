"""Run ``consultease kiosk --fullscreen --admin`` on the current display, then print, as
JSON, where the window, its controls and the sign-in ended up (tests/ui/test_fullscreen.py).

Usage: ``python -m tests.ui.fullscreen_probe DATABASE_URL``.
"""

from __future__ import annotations

import json
import sys

from PySide6.QtCore import QPoint, QRect, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from consultease.cli import main as cli_main
from kiosk_ui.app import application
from kiosk_ui.window import KioskWindow


def _rect(rect: QRect) -> list[int]:
    return [rect.x(), rect.y(), rect.width(), rect.height()]


def _global(widget: QWidget) -> list[int]:
    return _rect(QRect(widget.mapToGlobal(QPoint(0, 0)), widget.size()))


def main() -> int:
    app: QApplication = application()
    report: dict[str, object] = {}
    deadline = [100]  # ticks of 100 ms

    def look() -> None:
        windows = [w for w in app.topLevelWidgets() if isinstance(w, KioskWindow)]
        window = windows[0] if windows else None
        dialog = window.login_dialog if window is not None else None
        ready = (
            window is not None and window.model.loaded and dialog is not None and dialog.isVisible()
        )
        deadline[0] -= 1
        if not ready and deadline[0] > 0:
            QTimer.singleShot(100, look)
            return
        if window is not None:
            screen = window.screen()
            report.update(
                screen=_rect(screen.geometry()),
                window=_rect(window.frameGeometry()),
                fullscreen=window.isFullScreen(),
                admin=_global(window.board.admin_button),
                clock=_global(window.board.clock_label),
                search=_global(window.board.search_box),
                dialog=_rect(dialog.frameGeometry()) if dialog is not None else None,
                sign_in=_global(dialog.sign_in_button) if dialog is not None else None,
            )
            window.close()

    QTimer.singleShot(100, look)
    code = cli_main(["--database-url", sys.argv[1], "kiosk", "--fullscreen", "--admin"])
    print(json.dumps({"exit": code, **report}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
