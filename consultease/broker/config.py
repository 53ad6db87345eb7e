"""The Mosquitto configuration and the ACL blocks we ship, read from package data.

``mosquitto.conf`` is the production configuration exactly as an operator copies
it into ``/etc/mosquitto`` (``consultease desk broker-config`` prints it). Tests
and private brokers run the same file through ``adapted_config``, which changes
only the listeners' ports and the paths, so what is tested is what is shipped.

``acl/desk.acl``, ``acl/service.acl``, ``acl/state.acl`` and ``acl/kiosk.acl`` are the per-login ACL
blocks, with ``$faculty_id`` and ``$username`` to fill in (``string.Template``).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from string import Template
from typing import Final

CONFIG_FILE: Final = "mosquitto.conf"
DESK_ACL_TEMPLATE: Final = "acl/desk.acl"
SERVICE_ACL_TEMPLATE: Final = "acl/service.acl"
KIOSK_ACL_TEMPLATE: Final = "acl/kiosk.acl"
STATE_ACL_TEMPLATE: Final = "acl/state.acl"


def _package_text(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text("utf-8")


def shipped_config() -> str:
    """The production Mosquitto configuration, as shipped."""
    return _package_text(CONFIG_FILE)


def adapted_config(
    *,
    listeners: Mapping[int, str | None] | None = None,
    settings: Mapping[str, str] | None = None,
    extra: str = "",
) -> str:
    """The shipped configuration with a few directives changed, for a broker of our own.

    ``listeners`` maps a shipped listener's port to the new arguments of its
    ``listener`` line (``"31883 127.0.0.1"``), or to ``None`` to leave that
    listener out together with its block (the lines up to the next blank line).
    ``settings`` gives new values to single-valued directives (``password_file``,
    ``persistence_location``, ``log_dest``, ``certfile``…). ``extra`` is appended.
    A name that the shipped file does not have is an error, so a test can never
    quietly run a configuration other than the one it means.
    """
    listeners = dict(listeners or {})
    settings = dict(settings or {})
    out: list[str] = []
    dropping = False
    for line in shipped_config().splitlines():
        words = line.split()
        if dropping:
            dropping = bool(words)
            continue
        if words[:1] == ["listener"] and int(words[1]) in listeners:
            replacement = listeners.pop(int(words[1]))
            if replacement is None:
                dropping = True
                continue
            out.append(f"listener {replacement}")
        elif words and words[0] in settings:
            out.append(f"{words[0]} {settings.pop(words[0])}")
        else:
            out.append(line)
    unknown = [f"listener {port}" for port in listeners] + list(settings)
    if unknown:
        raise ValueError(f"the shipped broker configuration has no {', '.join(unknown)}")
    return "\n".join(out) + "\n" + extra


def desk_acl_block(faculty_id: int) -> str:
    """The ACL block of the desk unit of faculty ``faculty_id``."""
    return Template(_package_text(DESK_ACL_TEMPLATE)).substitute(faculty_id=faculty_id)


def service_acl_block(username: str) -> str:
    """The ACL block of an ingest service logging in as ``username``."""
    return Template(_package_text(SERVICE_ACL_TEMPLATE)).substitute(username=username)


def kiosk_acl_block(username: str) -> str:
    """The ACL block of the kiosks' login (read-only ``…/state``)."""
    return Template(_package_text(KIOSK_ACL_TEMPLATE)).substitute(username=username)


def state_acl_block(username: str) -> str:
    """The ACL block of an ingest service's state publisher (writes ``…/state``)."""
    return Template(_package_text(STATE_ACL_TEMPLATE)).substitute(username=username)
