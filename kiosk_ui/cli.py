"""``consultease kiosk``: plugged into the core CLI through an entry point."""

from __future__ import annotations

import argparse
from typing import Any

from consultease.extras import require_extra


def register(subparsers: Any) -> None:
    kiosk = subparsers.add_parser("kiosk", help="the touchscreen board (PySide6)")
    kiosk.add_argument("--admin", action="store_true", help="open the admin login")
    kiosk.add_argument("--fullscreen", action="store_true")
    kiosk.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Any) -> int:
    require_extra("kiosk", what="`consultease kiosk`")
    from kiosk_ui.app import run_kiosk  # noqa: PLC0415 - Qt loads only for this command

    return run_kiosk(settings, admin=args.admin, fullscreen=args.fullscreen)
