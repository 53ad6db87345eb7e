"""``consultease demo``: everything on one machine, no setup."""

from __future__ import annotations

import argparse
from pathlib import Path

from consultease.commands import Subparsers
from consultease.config import Settings
from consultease.errors import ConfigError
from consultease.extras import require_extra


def register(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run the whole system: database, broker, ingest, 30 desks, the board",
        description="Brings its own PostgreSQL and broker unless CONSULTEASE_DATABASE_URL "
        "and CONSULTEASE_MQTT_URL are set. Ctrl-C stops everything.",
    )
    demo.add_argument(
        "--headless", action="store_true", help="draw the board in the terminal, not a window"
    )
    demo.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop by itself after this long"
    )
    demo.add_argument("--data-dir", type=Path, help="where the private database is kept")
    demo.add_argument("--desks", type=int, default=30, help="simulated desk units (default 30)")
    demo.add_argument(
        "--changes-per-minute",
        type=float,
        default=3.0,
        help="how often each simulated lecturer changes status (default 3)",
    )
    demo.add_argument(
        "--requests-per-minute",
        type=float,
        default=2.0,
        help="consultation requests students make over the whole campus (default 2; 0: none)",
    )
    demo.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    require_extra("demo", what="`consultease demo`")
    if args.requests_per_minute < 0:
        raise ConfigError("--requests-per-minute must be 0 (no requests) or more")
    from consultease.tools.demo import DemoOptions, default_data_dir, run_demo  # noqa: PLC0415

    options = DemoOptions(
        data_dir=args.data_dir or default_data_dir(),
        headless=args.headless,
        duration=args.duration,
        desks=args.desks,
        changes_per_minute=args.changes_per_minute,
        requests_per_minute=args.requests_per_minute,
    )
    return run_demo(settings, options)
