"""Consultation requests through the shipped broker config: logins, ACLs, and a
client id that is the login (``consultease/broker``). The dispatcher publishes on the
ingest service's own connection, so the service keeps it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg

from consultease.db.consultations import Consultations
from tests.integration.test_security_mqtt import INGEST, connected, secure_broker, topic
from tests.support.factories import add_faculty, faculty_row
from tests.support.ingest import running_service, settings_for, wait_until
from tests.support.roles import login_in


def test_requests_reach_only_their_own_desk_and_the_ingest_service_keeps_its_connection(
    tmp_path: Path, database_url: str, db: psycopg.Connection[Any]
) -> None:
    mine = add_faculty(db, name="Dr. Desk Owner", status="available", desk_online=True)
    other = add_faculty(db, name="Dr. Someone Else", status="available", desk_online=True)
    with (
        secure_broker(tmp_path, [mine, other]) as broker,
        login_in(database_url, "consultease_ingest") as ingest_db_url,
        running_service(settings_for(ingest_db_url, broker.url(INGEST)), protocol="5") as service,
        # The firmware: MQTT 3.1.1, its own login, …/messages and …/cancellations at QoS 1.
        connected(broker, f"desk-{mine}", protocol=mqtt.MQTTv311) as desk,
        connected(broker, f"desk-{other}", protocol=mqtt.MQTTv311) as snoop,
    ):
        desk.subscribe(topic(mine, "messages"), topic(mine, "cancellations"))
        snoop.subscribe(topic(mine, "messages"))  # another desk's: the ACL never delivers it
        with Consultations(database_url) as store:
            asked = store.create_request(faculty_id=mine, student_name="Ana", message="Hello")
        [(_, text)] = desk.until(topic(mine, "messages"))
        assert text == f"CID:{asked.id} From:Ana (SID:-): Hello".encode()

        answer = {"faculty_id": mine, "response_type": "ACKNOWLEDGE", "message_id": str(asked.id)}
        desk.publish(topic(mine, "responses"), json.dumps(answer).encode())
        wait_until(
            lambda: (
                db.execute("SELECT status FROM consultation WHERE id = %s", (asked.id,)).fetchone()
                == ("accepted",)
            ),
            timeout=10,
            message="the request accepted",
        )
        with Consultations(database_url) as store:
            store.cancel(asked.id)
        cancelled = desk.until(topic(mine, "cancellations"))
        assert json.loads(cancelled[0][1])["consultation_id"] == asked.id
        time.sleep(0.5)
        assert [t for t, _, _ in snoop.received(within=0.2)] == []
        # Still the service's one connection: a desk status after all that is applied.
        desk.publish(topic(mine, "status"), b'{"faculty_id": %d, "status": "AWAY"}' % mine)
        wait_until(lambda: faculty_row(db, mine)["status"] == "away", timeout=10, message="away")
        assert service.metrics.registry.get_sample_value("consultease_ingest_mqtt_connected") == 1
