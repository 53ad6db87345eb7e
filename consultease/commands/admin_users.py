"""``consultease admin create|passwd USERNAME``: admin accounts for the kiosk's admin panel.

The password is asked twice on the terminal (never echoed), or read as one
line from standard input with ``--password-stdin`` (for scripts:
``printf '%s\\n' "$PW" | consultease admin create alice --password-stdin``).
It is never accepted as a command-line argument, where ``ps`` would show it.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from consultease.admin.accounts import AdminAccounts, clean_username
from consultease.admin.passwords import check_password
from consultease.commands import Subparsers
from consultease.config import Settings
from consultease.errors import ValidationError


def register(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    group = subparsers.add_parser("admin", help="admin accounts (kiosk admin panel)")
    actions = group.add_subparsers(dest="admin_command", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="create an admin account")
    _common(create)
    create.set_defaults(func=run_create)

    passwd = actions.add_parser("passwd", help="set a new password (also lifts a lockout)")
    _common(passwd)
    passwd.set_defaults(func=run_passwd)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("username", help="letters, digits and . _ @ - (at most 64)")
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password as one line from standard input instead of asking",
    )
    parser.add_argument(
        "--actor", help="name recorded in the audit log (default: cli:<your login>)"
    )


def _actor(args: argparse.Namespace) -> str:
    return str(args.actor) if args.actor else f"cli:{getpass.getuser()}"


def read_password(args: argparse.Namespace, username: str) -> str:
    """The new password, from stdin or asked twice on the terminal."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise ValidationError("no password on standard input", field="password")
        return password
    if not sys.stdin.isatty():
        raise ValidationError(
            "no terminal to ask for the password: pipe it in with --password-stdin",
            field="password",
        )
    password = getpass.getpass(f"New password for {username}: ")
    check_password(password, username=username)  # say so before asking again
    if getpass.getpass("Repeat it: ") != password:
        raise ValidationError("the two passwords differ: nothing was changed", field="password")
    return password


def run_create(args: argparse.Namespace, settings: Settings) -> int:
    username = clean_username(args.username)
    actor = _actor(args)
    password = read_password(args, username)
    accounts = AdminAccounts(settings.require_database_url())
    try:
        accounts.create(username, password, actor=actor)
    finally:
        accounts.close()
    print(f"created admin {username}")
    return 0


def run_passwd(args: argparse.Namespace, settings: Settings) -> int:
    username = args.username.strip()
    actor = _actor(args)
    password = read_password(args, username)
    accounts = AdminAccounts(settings.require_database_url())
    try:
        accounts.change_password(username, password, actor=actor)
    finally:
        accounts.close()
    print(f"changed the password of admin {username}")
    return 0
