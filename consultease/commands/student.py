"""``consultease student add|import|list``: the students an RFID card can name."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from consultease.commands import Subparsers
from consultease.config import Settings
from consultease.db.students import IMPORT_COLUMNS, Students


def register(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    group = subparsers.add_parser("student", help="students and their RFID cards")
    actions = group.add_subparsers(dest="student_command", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="register a student")
    add.add_argument("--student-id", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--course", help="course code")
    add.add_argument("--rfid", metavar="UID", help="card UID as the reader types it")
    _actor_option(add)
    add.set_defaults(func=run_add)

    imports = actions.add_parser(
        "import",
        help=f"add or update students from CSV (header: {','.join(IMPORT_COLUMNS)}); "
        "all or nothing",
    )
    imports.add_argument("file", type=Path, metavar="FILE.csv")
    _actor_option(imports)
    imports.set_defaults(func=run_import)

    listing = actions.add_parser("list", help="print the registered students")
    listing.add_argument("--all", action="store_true", help="include deactivated students")
    listing.set_defaults(func=run_list)


def _actor_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--actor", help="name recorded in the audit log (default: cli:<your login>)"
    )


def _actor(args: argparse.Namespace) -> str:
    return str(args.actor) if args.actor else f"cli:{getpass.getuser()}"


def run_add(args: argparse.Namespace, settings: Settings) -> int:
    with Students(settings.require_database_url()) as students:
        added = students.add(
            student_id=args.student_id,
            name=args.name,
            course_code=args.course,
            rfid_uid=args.rfid,
            actor=_actor(args),
        )
    card = f", card {added.rfid_uid}" if added.rfid_uid else ""
    print(f"added student {added.student_id} ({added.name}){card}")
    return 0


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    with Students(settings.require_database_url()) as students:
        result = students.import_csv(args.file, actor=_actor(args))
    print(f"imported {args.file}: {result.added} added, {result.updated} updated")
    return 0


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    with Students(settings.require_database_url()) as students:
        rows = students.list_all(include_inactive=args.all)
    table = Table(title=f"{len(rows)} students")
    for column in ("student id", "name", "course", "card", "active"):
        table.add_column(column)
    for s in rows:
        cells = (
            s.student_id,
            s.name,
            s.course_code or "",
            s.rfid_uid or "",
            "yes" if s.active else "no",
        )
        table.add_row(*(Text(cell) for cell in cells))
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)
    return 0
