"""One desk's login must not hide, drop or fake other desks (issue 13, attacks 1-3).

Each test runs the shipped broker configuration on a private mosquitto (ports and
paths changed only), the logins written by ``consultease desk credentials``, and
the real ingest service logged in to the database as an ingest role. desk-3 is
the attacker, desk-4 the victim.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg

from consultease.config import MqttEndpoint
from consultease.health import broker_reachable
from tests.integration.test_security_mqtt import (
    INGEST,
    Client,
    connected,
    secure_broker,
    topic,
)
from tests.support.factories import add_faculty, faculty_row
from tests.support.ingest import running_service, settings_for, status_json, wait_until
from tests.support.roles import login_in

GUESSABLE_GROUP = "consultease"
"""The group name the README once suggested, which an attacker tries first."""


def test_a_desk_in_a_shared_group_neither_sees_nor_drops_other_desks_updates(
    tmp_path: Path, database_url: str, db: psycopg.Connection[Any]
) -> None:
    attacker, victim = add_faculty(db, name="Dr. Attacker"), add_faculty(db, name="Dr. Victim")
    statuses = ["available", "busy", "away"]
    now_ms = int(time.time() * 1000)
    with (
        secure_broker(tmp_path, [attacker, victim]) as broker,
        login_in(database_url, "consultease_ingest") as ingest_db_url,
        running_service(
            settings_for(ingest_db_url, broker.url(INGEST)),
            protocol="5",
            shared_group=broker.shared_group,
        ) as service,
        connected(broker, f"desk-{attacker}") as thief,
        connected(broker, f"desk-{victim}") as desk,
    ):
        assert broker.shared_group is not None and broker.shared_group != GUESSABLE_GROUP
        # Every group name the attacker can know, and the plain filter too.
        for group in (GUESSABLE_GROUP, "consultease-ingest"):
            codes = thief.subscribe(f"$share/{group}/consultease/faculty/+/status")
            assert all(not code.is_failure for code in codes)  # mosquitto 2.0 grants it...
        thief.subscribe("consultease/faculty/+/status")
        for version in range(1, 61):
            desk.publish(
                topic(victim, "status"),
                status_json(statuses[version % 3], version=version, ts_ms=now_ms + version),
            )
        wait_until(
            lambda: faculty_row(db, victim)["desk_version"] == 60,
            timeout=20,
            message="desk-4's last update (version 60) to apply",
        )
        stolen = thief.received(within=1.0)
        processed = service.stats.processed
    # ...but it receives nothing, and the service received every one of the 60.
    assert stolen == []
    assert processed == 60
    assert faculty_row(db, victim)["status"] == statuses[60 % 3]


def test_a_desk_using_another_desks_client_id_cannot_take_it_over(
    tmp_path: Path, database_url: str, db: psycopg.Connection[Any]
) -> None:
    attacker, victim = add_faculty(db, name="Dr. Attacker"), add_faculty(db, name="Dr. Victim")
    victim_login = f"desk-{victim}"
    availability = topic(victim, "availability")
    with (
        secure_broker(tmp_path, [attacker, victim]) as broker,
        login_in(database_url, "consultease_ingest") as ingest_db_url,
        running_service(settings_for(ingest_db_url, broker.url(INGEST)), protocol="5"),
        connected(
            broker, victim_login, client_id=victim_login, will=(availability, b"offline")
        ) as desk,
    ):
        desk.publish(availability, b"online", retain=True)
        desk.publish(topic(victim, "status"), status_json("available", version=1))
        wait_until(
            lambda: (
                faculty_row(db, victim)["desk_online"] is True
                and faculty_row(db, victim)["desk_version"] == 1
            ),
            timeout=15,
            message="desk-4 to be online",
        )
        for protocol in (mqtt.MQTTv311, mqtt.MQTTv5):
            thief = Client(
                broker.port,
                f"desk-{attacker}",
                broker.users[f"desk-{attacker}"].password,
                client_id=victim_login,
                protocol=protocol,
            )
            try:
                assert thief.accepted  # as itself: the broker replaced the id by its login
                thief.publish(topic(attacker, "heartbeat"), b"{}")
            finally:
                thief.close()
        time.sleep(1.0)
        assert not desk.disconnected.is_set(), "the victim's connection was taken over"
        desk.publish(topic(victim, "status"), status_json("busy", version=2))
        wait_until(
            lambda: faculty_row(db, victim)["desk_version"] == 2,
            timeout=15,
            message="desk-4's next update, on its own connection",
        )
        assert faculty_row(db, victim)["desk_online"] is True
    changes = db.execute(
        "SELECT count(*) FROM status_change WHERE faculty_id = %s AND new_desk_online IS false",
        (victim,),
    ).fetchone()
    assert changes == (0,)


def test_a_desk_using_the_ingest_client_id_cannot_wipe_its_session(
    tmp_path: Path, database_url: str, db: psycopg.Connection[Any]
) -> None:
    attacker, victim = add_faculty(db, name="Dr. Attacker"), add_faculty(db, name="Dr. Victim")
    with (
        secure_broker(tmp_path, [attacker, victim]) as broker,
        login_in(database_url, "consultease_ingest") as ingest_db_url,
    ):
        settings = settings_for(ingest_db_url, broker.url(INGEST), client_id="ingest-a")
        with running_service(settings, protocol="5", session_expiry=300):
            pass  # subscribed once: the broker now keeps its session
        with connected(broker, f"desk-{victim}") as desk:
            for version in range(1, 6):
                desk.publish(topic(victim, "status"), status_json("busy", version=version))
        # While the service is away, desk-3 logs in with every id the service
        # might use, with a clean session, and leaves.
        for client_id in ("ingest-a", INGEST, "consultease-ingest-localhost"):
            for protocol in (mqtt.MQTTv311, mqtt.MQTTv5):
                thief = Client(
                    broker.port,
                    f"desk-{attacker}",
                    broker.users[f"desk-{attacker}"].password,
                    client_id=client_id,
                    protocol=protocol,
                )
                assert thief.accepted
                thief.close()
        with running_service(settings, protocol="5", session_expiry=300) as service:
            wait_until(
                lambda: faculty_row(db, victim)["desk_version"] == 5,
                timeout=20,
                message="the updates queued in the service's session",
            )
            processed = service.stats.processed
    assert processed == 5
    assert db.execute(
        "SELECT count(*) FROM status_change WHERE faculty_id = %s", (victim,)
    ).fetchone() == (1,)


def test_health_checks_the_broker_without_taking_the_ingest_services_connection(
    tmp_path: Path, database_url: str, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db, name="Dr. Health")
    with (
        secure_broker(tmp_path, [faculty_id]) as broker,
        login_in(database_url, "consultease_ingest") as ingest_db_url,
        running_service(settings_for(ingest_db_url, broker.url(INGEST)), protocol="5"),
    ):
        checks = [
            broker_reachable(MqttEndpoint.parse(broker.url(INGEST)), timeout=5) for _ in range(3)
        ]
        with connected(broker, f"desk-{faculty_id}") as desk:
            desk.publish(topic(faculty_id, "status"), status_json("available", version=1))
        wait_until(
            lambda: faculty_row(db, faculty_id)["desk_version"] == 1,
            timeout=15,
            message="the update, on the service's first connection",
        )
        log = (tmp_path / "broker" / "mosquitto.log").read_text()
    assert all(check.ok for check in checks), checks
    assert "refuses clients without a login" in checks[0].detail
    # The service connected once and was never pushed off by a check.
    assert log.count(f"u'{INGEST}')") == 1, log
