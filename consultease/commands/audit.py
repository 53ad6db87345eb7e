"""``consultease audit [--since …] [--actor …] [--action …] [--limit N]``."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table
from rich.text import Text

from consultease.admin.audit import MAX_LIMIT, AuditLog, describe_change, parse_since
from consultease.commands import Subparsers
from consultease.config import Settings


def register(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    audit = subparsers.add_parser("audit", help="print the audit trail of admin actions")
    audit.add_argument(
        "--since",
        metavar="WHEN",
        help="a duration back from now (30m, 2h, 3d, 1w) or an ISO date/time (2026-01-31)",
    )
    audit.add_argument("--actor", help="only this actor (case-insensitive)")
    audit.add_argument(
        "--action",
        help="only this action and its sub-actions (admin.login also shows admin.login.failed)",
    )
    audit.add_argument(
        "--limit",
        type=int,
        default=50,
        metavar="N",
        help=f"show the newest N entries (default 50, at most {MAX_LIMIT})",
    )
    audit.set_defaults(func=run_audit)


def run_audit(args: argparse.Namespace, settings: Settings) -> int:
    since = parse_since(args.since) if args.since else None
    log = AuditLog(settings.require_database_url())
    try:
        entries = log.entries(since=since, actor=args.actor, action=args.action, limit=args.limit)
    finally:
        log.close()
    console = Console()
    if not console.is_terminal:  # piped: keep each row on one line
        console = Console(width=240)
    if not entries:
        console.print("no audit entries match")
        return 0
    table = Table(title=f"{len(entries)} audit entries (oldest first)")
    for column in ("at", "actor", "action", "target", "change"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        # Text(), not str: stored values are data, never rich markup.
        table.add_row(
            Text(entry.at.astimezone().strftime("%Y-%m-%d %H:%M:%S")),
            Text(entry.actor),
            Text(entry.action),
            Text(entry.target or ""),
            Text(describe_change(entry.before, entry.after)),
        )
    console.print(table)
    return 0
