"""Settings: one frozen object, built once at an entry point.

Nothing here runs at import time. ``Settings.from_env`` reads an environment
mapping (``os.environ`` by default) and command-line flags override it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from consultease.errors import ConfigError

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

DEFAULT_OFFLINE_AFTER = 90.0
DEFAULT_REQUEST_TIMEOUT = 600.0
DEFAULT_MAX_CLOCK_SKEW = 300.0
DEFAULT_NOTIFY_QUEUE_THRESHOLD = 0.001
"""0.1 % of pg_notify's queue (8 MB of its 8 GB, some 40,000 faculty notifications
behind). A queue that every listener reads stays within a few pages (~0.001 %)."""
DEFAULT_STALLED_AFTER = 60.0
"""Seconds a session must have been stalled before the NOTIFY guard counts it."""


@dataclass(frozen=True, kw_only=True, slots=True)
class MqttEndpoint:
    """A parsed ``mqtt://`` or ``mqtts://`` URL."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> MqttEndpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ConfigError(f"MQTT URL must start with mqtt:// or mqtts://, got {url!r}")
        if not parts.hostname:
            raise ConfigError(f"MQTT URL has no host: {url!r}")
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError as exc:
            raise ConfigError(f"MQTT URL has a bad port: {url!r}") from exc
        return cls(
            host=parts.hostname,
            port=port,
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def url(self, *, with_password: bool = False) -> str:
        auth = ""
        if self.username:
            auth = self.username
            if self.password:
                auth += ":" + (self.password if with_password else "***")
            auth += "@"
        return f"{'mqtts' if self.tls else 'mqtt'}://{auth}{self.host}:{self.port}"

    def log_in(self, client: mqtt.Client, ca_file: str | None) -> None:
        """Give ``client`` this endpoint's login and, for ``mqtts://``, TLS with
        ``ca_file`` (the system's CAs when None); a CA file needs an mqtts:// URL."""
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            try:
                client.tls_set(ca_certs=ca_file)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot set up TLS for the broker: {exc}") from exc
        elif ca_file is not None:
            raise ConfigError("--mqtt-ca-file needs an mqtts:// broker URL")


def _float_setting(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


LIVE_UPDATE_MODES = ("listen", "broker")
"""The values of ``Settings.live_updates``; the first is the default."""


def _choice_setting(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return choices[0]
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _fraction_setting(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a fraction between 0 and 1, got {raw!r}") from exc
    if not 0 < value <= 1:
        raise ConfigError(f"{name} must be a fraction above 0 and at most 1, got {raw!r}")
    return value


@dataclass(frozen=True, kw_only=True, slots=True)
class Settings:
    """Everything configurable, as SPEC section 2 lists it.

    ``database_url`` and ``mqtt_url`` are ``None`` when nothing is configured;
    the entry points that can bring embedded services do so then.
    """

    database_url: str | None = None
    mqtt_url: str | None = None
    offline_after: float = DEFAULT_OFFLINE_AFTER
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    """Seconds a consultation request may stay pending before it expires (SPEC 9.1)."""
    dispatch_mqtt_url: str | None = None
    """A broker login of its own for the consultation dispatcher (another ingest login);
    without it, on a broker that needs logins, it shares the ingest connection."""
    max_clock_skew: float = DEFAULT_MAX_CLOCK_SKEW
    mqtt_client_id: str = "consultease-ingest"
    notify_queue_threshold: float = DEFAULT_NOTIFY_QUEUE_THRESHOLD
    """``pg_notification_queue_usage()`` above which the system is unhealthy and the
    ingest service's guard drops stalled sessions."""
    stalled_after: float = DEFAULT_STALLED_AFTER
    """Seconds a session must have been stalled before the guard may drop it."""
    live_updates: str = "listen"
    """Where a kiosk gets live updates: ``listen`` (a LISTEN connection of its own on
    the primary) or ``broker`` (the retained state on the broker, rows read from
    ``read_database_url``); see ``consultease.live.feed``."""
    read_database_url: str | None = None
    """Where a kiosk in ``broker`` mode reads rows (a replica, pgbouncer); default
    ``database_url``."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            database_url=env.get("CONSULTEASE_DATABASE_URL") or None,
            mqtt_url=env.get("CONSULTEASE_MQTT_URL") or None,
            offline_after=_float_setting(env, "CONSULTEASE_OFFLINE_AFTER", DEFAULT_OFFLINE_AFTER),
            request_timeout=_float_setting(
                env, "CONSULTEASE_REQUEST_TIMEOUT", DEFAULT_REQUEST_TIMEOUT
            ),
            dispatch_mqtt_url=env.get("CONSULTEASE_DISPATCH_MQTT_URL") or None,
            max_clock_skew=_float_setting(
                env, "CONSULTEASE_MAX_CLOCK_SKEW", DEFAULT_MAX_CLOCK_SKEW
            ),
            mqtt_client_id=env.get("CONSULTEASE_MQTT_CLIENT_ID")
            or f"consultease-ingest-{socket.gethostname()}",
            notify_queue_threshold=_fraction_setting(
                env, "CONSULTEASE_NOTIFY_QUEUE_THRESHOLD", DEFAULT_NOTIFY_QUEUE_THRESHOLD
            ),
            stalled_after=_float_setting(
                env, "CONSULTEASE_LISTENER_STALLED_AFTER", DEFAULT_STALLED_AFTER
            ),
            live_updates=_choice_setting(env, "CONSULTEASE_LIVE_UPDATES", LIVE_UPDATE_MODES),
            read_database_url=env.get("CONSULTEASE_READ_DATABASE_URL") or None,
        )

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the given fields replaced; ``None`` values are ignored."""
        kept = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **kept)  # type: ignore[arg-type]

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigError(
                "no database configured: set CONSULTEASE_DATABASE_URL "
                "or pass --database-url (or run `consultease demo`, which brings its own)"
            )
        return self.database_url

    def dispatch_mqtt_endpoint(self) -> MqttEndpoint | None:
        return MqttEndpoint.parse(self.dispatch_mqtt_url) if self.dispatch_mqtt_url else None

    def mqtt_endpoint(self) -> MqttEndpoint:
        if not self.mqtt_url:
            raise ConfigError("no broker configured: set CONSULTEASE_MQTT_URL or pass --mqtt-url")
        return MqttEndpoint.parse(self.mqtt_url)
