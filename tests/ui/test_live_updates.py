"""The kiosk's source of live updates is a setting: LISTEN (the default) or the broker.

Either way the same events reach the window's bridge and its model; with the
broker the kiosk holds no LISTEN connection at all (tests/integration/
test_broker_feed.py runs one on a hot standby, where LISTEN is refused).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pytestqt.qtbot import QtBot

from consultease.config import MqttEndpoint, Settings
from consultease.errors import ConfigError
from consultease.ingest.state_publisher import StateService
from consultease.live.broker_feed import BrokerFeed
from consultease.live.feed import make_feed
from consultease.live.listener import FacultyListener
from consultease.tools.servers import MosquittoInstance
from kiosk_ui.window import LISTENER_NAME
from tests.support.factories import add_faculty
from tests.support.ingest import private_broker
from tests.ui.support import running_kiosk


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoInstance]:
    with private_broker(tmp_path / "mosquitto", persistence=False) as instance:
        yield instance


def test_the_setting_chooses_the_source_and_a_broker_without_url_is_one_clear_error() -> None:
    url = "postgresql://kiosk@db.example/consultease"
    listen = make_feed(Settings(database_url=url), application_name="k")
    assert isinstance(listen, FacultyListener)
    broker = make_feed(
        Settings(
            database_url=url,
            read_database_url="postgresql://kiosk@replica.example/consultease",
            mqtt_url="mqtt://consultease-kiosk:pw@broker.example:1883",
            live_updates="broker",
        ),
        application_name="k",
    )
    assert isinstance(broker, BrokerFeed)
    with pytest.raises(ConfigError, match="CONSULTEASE_MQTT_URL"):
        make_feed(Settings(database_url=url, live_updates="broker"), application_name="k")
    with pytest.raises(ConfigError, match="CONSULTEASE_LIVE_UPDATES"):
        Settings.from_env({"CONSULTEASE_LIVE_UPDATES": "carrier-pigeon"})
    assert Settings.from_env({"CONSULTEASE_LIVE_UPDATES": "Broker"}).live_updates == "broker"


def test_a_kiosk_on_broker_updates_shows_a_committed_change_through_the_same_bridge(
    qtbot: QtBot, database_url: str, db: psycopg.Connection[Any], broker: MosquittoInstance
) -> None:
    faculty_id = add_faculty(db, name="Dr. Grace Hopper", status="away", desk_online=True)
    state = StateService(database_url, MqttEndpoint.parse(broker.url))
    state.start()
    feed = BrokerFeed(database_url, MqttEndpoint.parse(broker.url), application_name=LISTENER_NAME)
    try:
        with running_kiosk(qtbot, database_url, feed=feed) as window:
            assert window.listener is feed
            row = window.model.row_of(faculty_id)
            assert row is not None and window.model.view_at(row).status.value == "away"
            db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (faculty_id,))

            def shown_busy() -> bool:
                at = window.model.row_of(faculty_id)
                return at is not None and window.model.view_at(at).status.value == "busy"

            qtbot.waitUntil(shown_busy, timeout=10_000)
    finally:
        state.close()
