"""``consultease faculty list|add|edit|remove|set-status|reset-desk|import``."""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from consultease.admin.faculty import FacultyAdmin, parse_status
from consultease.admin.faculty_csv import parse_faculty_csv
from consultease.commands import Subparsers, positive_int
from consultease.config import Settings
from consultease.domain import FacultyView, Status
from consultease.errors import ValidationError


def register(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    group = subparsers.add_parser("faculty", help="list and manage faculty")
    actions = group.add_subparsers(dest="faculty_command", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="print the faculty table")
    listing.add_argument("--all", action="store_true", help="include deactivated faculty")
    listing.set_defaults(func=run_list)

    add = actions.add_parser("add", help="add a faculty member")
    add.add_argument("--name", required=True)
    add.add_argument("--department", required=True)
    add.add_argument("--email", required=True)
    add.add_argument("--room")
    add.add_argument("--status", default="away", type=_status_arg)
    add.add_argument(
        "--id",
        type=positive_int,
        metavar="N",
        help="keep this id (the FACULTY_ID compiled into an existing desk unit)",
    )
    _actor_option(add)
    add.set_defaults(func=run_add)

    imports = actions.add_parser(
        "import",
        help="create or update faculty from a CSV (id,name,department,email,room), keeping ids",
    )
    imports.add_argument("file", type=Path, help="CSV file with a header line")
    _actor_option(imports)
    imports.set_defaults(func=run_import)

    edit = actions.add_parser(
        "edit", help="change name, department, email, room or the always-available flag"
    )
    _id_argument(edit)
    edit.add_argument("--name")
    edit.add_argument("--department")
    edit.add_argument("--email")
    edit.add_argument("--room", help='new room ("" clears it)')
    edit.add_argument(
        "--always-available",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="no working desk: show as available whatever the desk says (--no-… to undo)",
    )
    _expect_version_option(edit)
    _actor_option(edit)
    edit.set_defaults(func=run_edit)

    remove = actions.add_parser("remove", help="deactivate (history is kept)")
    _id_argument(remove)
    _expect_version_option(remove)
    _actor_option(remove)
    remove.set_defaults(func=run_remove)

    set_status = actions.add_parser("set-status", help="set the status by hand")
    _id_argument(set_status)
    set_status.add_argument("status", type=_status_arg, help="available, away or busy")
    _expect_version_option(set_status)
    _actor_option(set_status)
    set_status.set_defaults(func=run_set_status)

    reset = actions.add_parser(
        "reset-desk", help="forget the desk's version and clock (a replaced desk unit)"
    )
    _id_argument(reset)
    _actor_option(reset)
    reset.set_defaults(func=run_reset_desk)


def _status_arg(text: str) -> Status:
    try:
        return parse_status(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _id_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", type=positive_int, help="faculty id")


def _expect_version_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--expect-version",
        type=positive_int,
        metavar="N",
        help="fail (exit code 3) unless the row is still at version N",
    )


def _actor_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--actor", help="name recorded in the audit log (default: cli:<your login>)"
    )


def _actor(args: argparse.Namespace) -> str:
    return str(args.actor) if args.actor else f"cli:{getpass.getuser()}"


def _admin(settings: Settings) -> FacultyAdmin:
    return FacultyAdmin(settings.require_database_url())


def _describe(view: FacultyView) -> str:
    return f"faculty {view.id} ({view.name}) is {view.shown_status}, version {view.version}"


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    seconds = int((datetime.now(UTC) - moment).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    if seconds < 86400:
        return f"{seconds // 3600}h ago"
    return moment.strftime("%Y-%m-%d %H:%M")


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    with _admin(settings) as admin:
        views = admin.list_all(include_inactive=args.all)
    table = Table(title=f"{len(views)} faculty")
    for column in (
        "id",
        "name",
        "department",
        "room",
        "status",
        "desk online",
        "last seen",
        "version",
    ):
        table.add_column(column, justify="right" if column in ("id", "version") else "left")
    for v in views:
        status = v.status.value + ("" if v.active else " (inactive)")
        cells = (
            str(v.id),
            v.name,
            v.department,
            v.room or "",
            status,
            "yes" if v.desk_online else "no",
            _ago(v.last_seen),
            str(v.version),
        )
        table.add_row(*(Text(cell) for cell in cells))  # names are data, never markup
    console = Console()
    if not console.is_terminal:  # piped: keep each row on one line
        console = Console(width=200)
    console.print(table)
    return 0


def run_add(args: argparse.Namespace, settings: Settings) -> int:
    with _admin(settings) as admin:
        view = admin.add(
            actor=_actor(args),
            name=args.name,
            department=args.department,
            email=args.email,
            room=args.room,
            status=args.status,
            faculty_id=args.id,
        )
    print(f"added {_describe(view)}")
    return 0


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    try:
        text = args.file.read_text("utf-8-sig")
    except OSError as exc:
        raise ValidationError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{args.file} is not UTF-8 (byte {exc.start})") from None
    rows = parse_faculty_csv(text)
    with _admin(settings) as admin:
        report = admin.import_rows(rows, actor=_actor(args))
    for verb, ids in (
        ("created", report.created),
        ("updated", report.updated),
        ("skipped (unchanged)", report.skipped),
    ):
        listed = ", ".join(str(i) for i in ids) if ids else "none"
        print(f"{verb}: {len(ids)} ({listed})")
    return 0


def run_edit(args: argparse.Namespace, settings: Settings) -> int:
    with _admin(settings) as admin:
        view = admin.edit(
            args.id,
            actor=_actor(args),
            expect_version=args.expect_version,
            name=args.name,
            department=args.department,
            email=args.email,
            room=args.room,
            always_available=args.always_available,
        )
    print(f"updated {_describe(view)}")
    return 0


def run_remove(args: argparse.Namespace, settings: Settings) -> int:
    with _admin(settings) as admin:
        view = admin.deactivate(args.id, actor=_actor(args), expect_version=args.expect_version)
    print(f"deactivated faculty {view.id} ({view.name}), version {view.version}")
    return 0


def run_set_status(args: argparse.Namespace, settings: Settings) -> int:
    with _admin(settings) as admin:
        view = admin.set_status(
            args.id, args.status, actor=_actor(args), expect_version=args.expect_version
        )
    print(f"updated {_describe(view)}")
    return 0


def run_reset_desk(args: argparse.Namespace, settings: Settings) -> int:
    with _admin(settings) as admin:
        view = admin.reset_desk(args.id, actor=_actor(args))
    print(f"reset the desk of faculty {view.id} ({view.name}): its next update applies")
    return 0
