"""The database and broker a command runs against: the configured ones, or
private ones started for it (and stopped when its ``ExitStack`` unwinds)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from consultease.config import Settings
from consultease.tools.embedded_broker import EmbeddedBroker
from consultease.tools.servers import PostgresInstance

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class Endpoints:
    database_url: str
    mqtt_url: str
    mqtt_protocol: str
    """``"5"`` or ``"3.1.1"``: amqtt speaks only 3.1.1; a configured broker is assumed to do 5."""


def provide_services(
    stack: contextlib.ExitStack,
    settings: Settings,
    *,
    data_dir: Path,
    report: Callable[[str], None] = log.info,
    durable: bool = True,
) -> Endpoints:
    """Use ``settings``' URLs where set; otherwise start private servers under ``data_dir``."""
    database_url = settings.database_url
    if database_url is None:
        pg = PostgresInstance(data_dir / "postgres", durable=durable)
        report(f"PostgreSQL: private server, data kept in {pg.data_dir}")
        pg.start()
        stack.callback(pg.stop)
        database_url = pg.url
    else:
        report("PostgreSQL: using CONSULTEASE_DATABASE_URL")

    mqtt_url, protocol = settings.mqtt_url, "5"
    if mqtt_url is None:
        broker = EmbeddedBroker(data_dir / "broker")
        broker.start()
        stack.callback(broker.stop)
        mqtt_url, protocol = broker.url, broker.protocol
        report(f"Broker: private {broker.kind} on {mqtt_url}")
    else:
        report("Broker: using CONSULTEASE_MQTT_URL")
    return Endpoints(database_url=database_url, mqtt_url=mqtt_url, mqtt_protocol=protocol)
