"""What a kiosk needs from its source of live updates, and choosing one.

Two sources give the same events (``consultease.live.listener``'s
``Connected``, ``Resynced``, ``FacultyChanged``, ``FacultyRemoved``,
``Disconnected``, ``Reconnecting``) and keep the same version-aware cache:

- ``listen`` (the default): ``FacultyListener``, a LISTEN connection of the
  kiosk's own on the primary. Simple, and right for a site with a few kiosks.
- ``broker``: ``BrokerFeed`` follows the retained ``…/state`` topics on the
  broker as hints and reads the changed rows over an ordinary connection,
  which can be a read replica or pgbouncer. Hundreds of kiosks then cost the
  primary nothing per kiosk: the broker fans out, replicas serve the reads.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Protocol

from consultease.config import Settings
from consultease.errors import ConfigError
from consultease.live.broker_feed import BrokerFeed
from consultease.live.cache import FacultyCache
from consultease.live.listener import FacultyListener, ListenerStats, Subscriber


class LiveUpdates(enum.StrEnum):
    LISTEN = "listen"
    BROKER = "broker"


class LiveFeed(Protocol):
    """A source of listener events that keeps a ``FacultyCache`` (see the module doc)."""

    @property
    def cache(self) -> FacultyCache: ...

    @property
    def connected(self) -> bool: ...

    @property
    def application_name(self) -> str: ...

    @property
    def stats(self) -> ListenerStats: ...

    def subscribe(self, callback: Subscriber) -> Callable[[], None]: ...

    def start(self) -> None: ...

    def close(self, timeout: float = 1.0) -> None: ...


def make_feed(
    settings: Settings,
    *,
    application_name: str,
    ca_file: str | None = None,
    cache: FacultyCache | None = None,
) -> LiveFeed:
    """The source ``settings.live_updates`` names, built from the settings."""
    mode = LiveUpdates(settings.live_updates)
    if mode is LiveUpdates.LISTEN:
        return FacultyListener(
            settings.require_database_url(), cache=cache, application_name=application_name
        )
    if not settings.mqtt_url:
        raise ConfigError(
            "live updates from the broker need a broker: set CONSULTEASE_MQTT_URL "
            "or pass --mqtt-url (a login that may read consultease/faculty/+/state)"
        )
    return BrokerFeed(
        settings.read_database_url or settings.require_database_url(),
        settings.mqtt_endpoint(),
        cache=cache,
        ca_file=ca_file,
        application_name=application_name,
    )
