"""The ``consultease`` command: one dispatcher, one module per command group.

Each module in ``consultease.commands`` exposes ``register(subparsers)``,
which adds its sub-parser and sets ``func`` to a handler taking the parsed
arguments and the ``Settings``. Packages that build on the core (the kiosk)
plug in through the ``consultease.commands`` entry-point group, so the core
never imports them.

Errors reach the user as one line and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from types import FrameType

from consultease import __version__
from consultease.config import Settings
from consultease.errors import ConsultEaseError

log = logging.getLogger(__name__)

COMMAND_MODULES: tuple[str, ...] = (
    "consultease.commands.db",
    "consultease.commands.faculty",
    "consultease.commands.consultation",
    "consultease.commands.student",
    "consultease.commands.ingest",
    "consultease.commands.state",
    "consultease.commands.health",
    "consultease.commands.admin_users",
    "consultease.commands.audit",
    "consultease.commands.desk",
    "consultease.commands.demo",
    "consultease.commands.bench",
)
ENTRY_POINT_GROUP = "consultease.commands"


def common_options() -> argparse.ArgumentParser:
    """Flags every command accepts, anywhere on the line (``consultease db upgrade
    --database-url …`` and ``consultease --database-url … db upgrade`` alike)."""
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    common.add_argument(
        "--database-url",
        metavar="URL",
        help="libpq URI of the database (default: $CONSULTEASE_DATABASE_URL)",
    )
    common.add_argument(
        "--mqtt-url",
        metavar="URL",
        help="mqtt://[user:pass@]host:port or mqtts://… (default: $CONSULTEASE_MQTT_URL)",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consultease",
        description="Live faculty availability: desk units, ingest service, kiosk.",
        parents=[common_options()],
    )
    parser.add_argument("--version", action="version", version=f"consultease {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    for plugin in entry_points(group=ENTRY_POINT_GROUP):
        plugin.load()(subparsers)
    return parser


def configure_logging(*, verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    common, rest = common_options().parse_known_args(argv)
    args = build_parser().parse_args(rest)
    configure_logging(verbose=common.verbose)
    # SIGTERM unwinds like Ctrl-C, so every command stops the services and child
    # processes it started. Long-running commands install gentler handlers of their own.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        settings = Settings.from_env().with_overrides(
            database_url=common.database_url, mqtt_url=common.mqtt_url
        )
        code: int = args.func(args, settings)
    except ConsultEaseError as exc:
        print(f"consultease: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
