"""``consultease desk credentials N`` and ``consultease desk broker-config``.

``credentials`` makes a broker login for a new desk unit (``desk-N``, allowed
only its own topics) or for a service (``--service ingest``, or ``--service
kiosk`` for kiosks following live updates from the broker): the
password-file line in Mosquitto's own hash format and the ACL block, printed
or added to the given files, and the generated password, shown once.
Nothing here needs the database.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from consultease.broker.config import shipped_config
from consultease.broker.credentials import (
    SERVICE_USERNAMES,
    Credentials,
    desk_credentials,
    example_acl,
    install,
    service_credentials,
)
from consultease.commands import Subparsers, positive_int
from consultease.config import Settings
from consultease.errors import ValidationError


def register(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    desk = subparsers.add_parser("desk", help="broker logins for desk units and services")
    actions = desk.add_subparsers(dest="desk_command", metavar="ACTION", required=True)

    creds = actions.add_parser(
        "credentials",
        help="a new broker login for desk N (or --service ingest|kiosk)",
        description="Generate a broker password for desk N (user desk-N) or a service, "
        "and print or install its password-file line and ACL block. Running it again "
        "for the same user replaces the password.",
    )
    creds.add_argument("id", nargs="?", type=positive_int, help="faculty id the desk belongs to")
    creds.add_argument(
        "--service",
        choices=sorted(SERVICE_USERNAMES),
        help="create the login of a service instead of a desk",
    )
    creds.add_argument("--password-file", type=Path, metavar="PATH", help="add the line here")
    creds.add_argument("--acl-file", type=Path, metavar="PATH", help="add the ACL block here")
    creds.set_defaults(func=run_credentials)

    config = actions.add_parser(
        "broker-config", help="print the shipped Mosquitto configuration (or --acl: the ACL)"
    )
    config.add_argument("--acl", action="store_true", help="print the example ACL file instead")
    config.set_defaults(func=run_broker_config)


def run_credentials(args: argparse.Namespace, settings: Settings) -> int:
    if (args.id is None) == (args.service is None):
        raise ValidationError("give either a faculty id N or --service NAME")
    if (args.password_file is None) != (args.acl_file is None):
        raise ValidationError("give both --password-file and --acl-file, or neither")
    credentials: Credentials = (
        desk_credentials(args.id) if args.id is not None else service_credentials(args.service)
    )
    if args.password_file is None:
        print("# password file line:")
        print(credentials.password_line)
        print()
        print("# ACL block:")
        print(credentials.acl_block, end="")
    else:
        new = install(credentials, password_file=args.password_file, acl_file=args.acl_file)
        verb = "added" if new else "replaced the password of"
        print(f"# {verb} {credentials.username} in {args.password_file} and {args.acl_file}")
        print("# reload the broker to apply it: kill -HUP <pid of mosquitto>")
    print()
    print(f"# password of {credentials.username} (shown only now; flash it into the unit):")
    print(credentials.password)
    return 0


def run_broker_config(args: argparse.Namespace, settings: Settings) -> int:
    print(example_acl() if args.acl else shipped_config(), end="")
    return 0
