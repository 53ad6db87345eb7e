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
    SHARED_GROUP_MARKER,
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
    creds.add_argument(
        "--name",
        help="with --service: one of several ingest services or kiosks "
        "(login consultease-ingest-NAME, consultease-kiosk-NAME)",
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
    if args.name is not None and args.service is None:
        raise ValidationError("--name goes with --service ingest|kiosk only")
    credentials: Credentials = (
        desk_credentials(args.id)
        if args.id is not None
        else service_credentials(args.service, name=args.name)
    )
    group = credentials.shared_group
    companion = credentials.companion
    if args.password_file is None:
        print("# password file line:")
        print(credentials.password_line)
        if companion is not None:
            print(companion.password_line)
        print()
        print("# ACL block:")
        if group is not None:
            print(f"{SHARED_GROUP_MARKER}{group}")
        print(credentials.acl_block, end="")
        if companion is not None:
            print()
            print(companion.acl_block, end="")
    else:
        done = install(credentials, password_file=args.password_file, acl_file=args.acl_file)
        group = done.shared_group
        verb = "added" if done.new_user else "replaced the password of"
        names = credentials.username + (f" and {companion.username}" if companion else "")
        print(f"# {verb} {names} in {args.password_file} and {args.acl_file}")
        if done.owner_note is not None:
            print(f"# {done.owner_note}")
        print("# reload the broker to apply it: kill -HUP <pid of mosquitto>")
    if group is not None:
        print()
        print("# shared subscription group (secret; only with several ingest services):")
        print(f"#   consultease ingest --shared {group}")
    print()
    if companion is not None:
        print(f"# {companion.username}: the state publisher's own login, same password")
    print(f"# password of {credentials.username} (shown only now; flash it into the unit):")
    print(credentials.password)
    return 0


def run_broker_config(args: argparse.Namespace, settings: Settings) -> int:
    print(example_acl() if args.acl else shipped_config(), end="")
    return 0
