"""``consultease kiosk``: plugged into the core CLI through an entry point."""

from __future__ import annotations

import argparse
from typing import Any

from consultease.config import LIVE_UPDATE_MODES
from consultease.extras import require_extra


def register(subparsers: Any) -> None:
    kiosk = subparsers.add_parser("kiosk", help="the touchscreen board (PySide6)")
    kiosk.add_argument("--admin", action="store_true", help="open the admin login")
    kiosk.add_argument(
        "--fullscreen", action="store_true", help="fill the screen (no window manager needed)"
    )
    kiosk.add_argument(
        "--layout",
        choices=("compact", "departments"),
        default="compact",
        help="everyone, available first, on compact cards (default), or a heading per department",
    )
    kiosk.add_argument(
        "--large-type", action="store_true", help="bigger cards and type, for a wall screen"
    )
    kiosk.add_argument(
        "--live-updates",
        choices=LIVE_UPDATE_MODES,
        help="listen: a LISTEN connection of the kiosk's own on the database (the default, "
        "for a site with a few kiosks); broker: follow the retained faculty state on the "
        "broker (--mqtt-url, a kiosk login) and read rows from --read-database-url, a "
        "replica or pgbouncer (default $CONSULTEASE_LIVE_UPDATES or listen)",
    )
    kiosk.add_argument(
        "--read-database-url",
        metavar="URL",
        help="where the board reads faculty rows with --live-updates broker "
        "(default $CONSULTEASE_READ_DATABASE_URL, else the database URL)",
    )
    kiosk.add_argument(
        "--mqtt-ca-file", help="CA bundle for an mqtts:// broker (default: system CAs)"
    )
    kiosk.add_argument(
        "--no-requests",
        action="store_true",
        help='a board only: no "Request consultation" on the cards',
    )
    kiosk.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Any) -> int:
    require_extra("kiosk", what="`consultease kiosk`")
    from kiosk_ui.app import run_kiosk  # noqa: PLC0415 - Qt loads only for this command
    from kiosk_ui.board import BoardLayout, BoardOptions  # noqa: PLC0415

    settings = settings.with_overrides(
        live_updates=args.live_updates, read_database_url=args.read_database_url
    )
    options = BoardOptions(layout=BoardLayout(args.layout), large_type=args.large_type)
    return run_kiosk(
        settings,
        admin=args.admin,
        fullscreen=args.fullscreen,
        options=options,
        ca_file=args.mqtt_ca_file,
        consultation_requests=not args.no_requests,
    )
