"""The fallback broker for machines without mosquitto: amqtt in-process, MQTT 3.1.1.

The demo relies on it, so the whole path is exercised: simulated desks
connecting all at once, the ingest service, and the database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from consultease.config import Settings
from consultease.ingest.service import IngestService
from consultease.tools.embedded_broker import AmqttBroker
from desk_firmware_sim.config import MqttVersion, SimConfig
from desk_firmware_sim.runner import Fleet
from desk_firmware_sim.unit import Mode
from tests.support.factories import add_many_faculty


@pytest.fixture
def amqtt() -> Iterator[AmqttBroker]:
    with AmqttBroker() as broker:
        yield broker


@pytest.mark.slow
def test_desks_reach_the_database_through_the_amqtt_fallback(
    amqtt: AmqttBroker, database_url: str, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    ids = add_many_faculty(db, 30)
    service = IngestService(
        Settings(database_url=database_url, mqtt_url=amqtt.url, mqtt_client_id="amqtt-ingest"),
        protocol=AmqttBroker.protocol,
    )
    service.start()
    try:
        assert service.wait_ready(15)
        fleet = Fleet(
            SimConfig(
                faculty_ids=tuple(ids),
                mqtt_url=amqtt.url,
                mqtt_version=MqttVersion.V311,
                mode=Mode.LOAD,
                rate=60,
                seed=7,
                state_dir=tmp_path / "flash",
            )
        )
        fleet.start()
        try:
            assert fleet.wait_connected(20), "not every desk could connect to amqtt"
            time.sleep(3)
        finally:
            fleet.stop()
        truth = fleet.truth()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            rows = dict(db.execute("SELECT id, status FROM faculty").fetchall())
            if all(truth[i] is not None and rows[i] == truth[i].value for i in ids):  # type: ignore[union-attr]
                break
            time.sleep(0.2)
    finally:
        service.stop()
    assert {i: rows[i] for i in ids} == {i: truth[i].value for i in ids}  # type: ignore[union-attr]
