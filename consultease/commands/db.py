"""``consultease db upgrade``."""

from __future__ import annotations

import argparse

from consultease.commands import Subparsers
from consultease.config import Settings
from consultease.db.migrate import upgrade


def register(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    db = subparsers.add_parser("db", help="database schema")
    actions = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = actions.add_parser("upgrade", help="apply pending migrations (safe to repeat)")
    up.set_defaults(func=run_upgrade)


def run_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    applied = upgrade(settings.require_database_url())
    if applied:
        for name in applied:
            print(f"applied {name}")
    else:
        print("database is up to date")
    return 0
