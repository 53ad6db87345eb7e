"""``consultease consultation request|list|cancel|complete`` (SPEC 9.3)."""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from consultease.commands import Subparsers, positive_int
from consultease.config import Settings
from consultease.consultation import ClosedBy
from consultease.db.consultations import Consultation, Consultations


def register(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    group = subparsers.add_parser("consultation", help="consultation requests to lecturers")
    actions = group.add_subparsers(dest="consultation_command", metavar="ACTION", required=True)

    request = actions.add_parser(
        "request", help="ask a lecturer for a consultation; prints the new request's id"
    )
    request.add_argument("faculty_id", type=positive_int, metavar="FACULTY_ID")
    request.add_argument("--student-name", required=True)
    request.add_argument("--student-id")
    request.add_argument("--course", help="course code")
    request.add_argument("--message", required=True, help="1 to 500 characters")
    _actor_option(request)
    request.set_defaults(func=run_request)

    listing = actions.add_parser("list", help="print requests, newest first")
    listing.add_argument("--open", action="store_true", help="only pending and accepted ones")
    listing.add_argument("--faculty", type=positive_int, metavar="ID", help="one lecturer's")
    listing.add_argument("--limit", type=positive_int, default=200)
    listing.set_defaults(func=run_list)

    cancel = actions.add_parser("cancel", help="withdraw a pending or accepted request")
    cancel.add_argument("id", type=positive_int, help="request id")
    _actor_option(cancel)
    cancel.set_defaults(func=run_cancel)

    complete = actions.add_parser("complete", help="close an accepted request as held")
    complete.add_argument("id", type=positive_int, help="request id")
    _actor_option(complete)
    complete.set_defaults(func=run_complete)


def _actor_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--actor", help="name recorded in the audit log (default: cli:<your login>)"
    )


def _actor(args: argparse.Namespace) -> str:
    return str(args.actor) if args.actor else f"cli:{getpass.getuser()}"


def _store(settings: Settings) -> Consultations:
    return Consultations(settings.require_database_url())


def run_request(args: argparse.Namespace, settings: Settings) -> int:
    with _store(settings) as store:
        created = store.create_request(
            faculty_id=args.faculty_id,
            student_name=args.student_name,
            student_id=args.student_id,
            course_code=args.course,
            message=args.message,
            actor=_actor(args),
        )
    print(created.id)
    return 0


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    with _store(settings) as store:
        rows = store.list_requests(faculty_id=args.faculty, open_only=args.open, limit=args.limit)
    table = Table(title=f"{len(rows)} consultation requests")
    for column in ("id", "faculty", "student", "sid", "course", "status", "asked", "message"):
        table.add_column(column, justify="right" if column in ("id", "faculty") else "left")
    for c in rows:
        cells = (
            str(c.id),
            str(c.faculty_id),
            c.student_name,
            c.student_id or "",
            c.course_code or "",
            _status(c),
            c.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            c.message if len(c.message) <= 40 else c.message[:39] + "…",
        )
        table.add_row(*(Text(cell) for cell in cells))  # student text is data, never markup
    console = Console()
    if not console.is_terminal:  # piped: keep each row on one line
        console = Console(width=220)
    console.print(table)
    return 0


def _status(c: Consultation) -> str:
    if c.status.value == "pending":
        waited = int((datetime.now(UTC) - c.created_at).total_seconds())
        sent = "sent to desk" if c.delivered_at else "not yet sent"
        return f"pending {max(waited, 0)}s, {sent}"
    return c.status.value + (f" by {c.closed_by.value}" if c.closed_by else "")


def run_cancel(args: argparse.Namespace, settings: Settings) -> int:
    with _store(settings) as store:
        done = store.cancel(args.id, by=ClosedBy.ADMIN, actor=_actor(args))
    print(f"consultation request {done.id} cancelled; the desk is told")
    return 0


def run_complete(args: argparse.Namespace, settings: Settings) -> int:
    with _store(settings) as store:
        done = store.complete(args.id, by=ClosedBy.ADMIN, actor=_actor(args))
    print(f"consultation request {done.id} completed")
    return 0
