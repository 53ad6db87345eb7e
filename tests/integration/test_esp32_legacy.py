"""The unchanged ESP32 firmware (``--firmware esp32-legacy``) through a real mosquitto and
the real ingest service (SPEC 3.4a): QoS 0, retained status and heartbeat, no will, a
clean session per connect, and the offline queue drained after the fresh status."""

from __future__ import annotations

import json
import logging
import os
import queue
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt import publish
from paho.mqtt.enums import CallbackAPIVersion

from consultease.admin.faculty import FacultyAdmin
from consultease.broker.config import adapted_config
from consultease.broker.credentials import desk_credentials, install, service_credentials
from consultease.config import Settings
from consultease.domain import Status
from consultease.health import check_health
from consultease.ingest.transport import MqttProtocol
from consultease.tools.servers import MosquittoInstance, free_port
from desk_firmware_sim.answers import AnswerPolicy
from desk_firmware_sim.config import SimConfig
from desk_firmware_sim.esp32_runner import Esp32Fleet, Esp32Unit
from tests.support.factories import add_faculty
from tests.support.ingest import (
    private_broker,
    running_service,
    settings_for,
    unique_client_id,
    wait_until,
)
from tests.support.roles import login_in

pytestmark = pytest.mark.slow

UPTIME = 600.0
"""Seconds the simulated desk has been up when a test starts (a desk on since morning)."""


def row(db: psycopg.Connection[Any], faculty_id: int) -> tuple[str, bool, str]:
    found = db.execute(
        "SELECT status, desk_online, status_source FROM faculty WHERE id = %s", (faculty_id,)
    ).fetchone()
    assert found is not None
    return str(found[0]), bool(found[1]), str(found[2])


def status_changes(db: psycopg.Connection[Any], faculty_id: int) -> list[tuple[str, str]]:
    rows = db.execute(
        "SELECT old_status, new_status FROM status_change WHERE faculty_id = %s "
        "AND old_status <> new_status ORDER BY id",
        (faculty_id,),
    ).fetchall()
    return [(str(a), str(b)) for a, b in rows]


def rejections(db: psycopg.Connection[Any]) -> list[str]:
    return [str(r[0]) for r in db.execute("SELECT reason FROM ingest_rejection ORDER BY id")]


@contextmanager
def legacy_desk(mqtt_url: str, faculty_id: int, *, present: bool = True) -> Iterator[Esp32Unit]:
    config = SimConfig(
        faculty_ids=(faculty_id,),
        mqtt_url=mqtt_url,
        faculty_names={faculty_id: "Dr. Ada Lovelace"},
        seed=faculty_id,
    )
    with Esp32Fleet(
        config, behaviour=False, initially_present=present, uptime_before_start=UPTIME
    ) as fleet:
        unit = fleet.units[faculty_id]
        assert unit.wait_connected(10), "the legacy desk did not connect"
        yield unit


def settle(db: psycopg.Connection[Any], faculty_id: int, expected: tuple[str, bool, str]) -> None:
    wait_until(
        lambda: row(db, faculty_id) == expected,
        timeout=15,
        message=lambda: f"faculty {faculty_id} at {expected}, is {row(db, faculty_id)}",
    )


@pytest.mark.parametrize(
    ("queue_qos0", "protocol"),
    [
        (True, MqttProtocol.V5),
        (False, MqttProtocol.V5),
        (False, MqttProtocol.V311),
    ],
    ids=["queue-qos0", "retained-reread", "retained-reread-mqtt311"],
)
def test_a_qos0_change_while_ingest_restarts_is_not_lost(
    tmp_path: Path,
    db: psycopg.Connection[Any],
    database_url: str,
    queue_qos0: bool,
    protocol: MqttProtocol,
) -> None:
    """Either mechanism alone saves the change: the broker queueing QoS 0 for the
    service's session, or the service re-reading retained statuses on resubscribe."""
    faculty_id = add_faculty(db)
    extra = "" if queue_qos0 else "queue_qos0_messages false\n"
    with MosquittoInstance(tmp_path / "mosquitto", extra_config=extra) as broker:
        settings = settings_for(database_url, broker.url, client_id=unique_client_id())
        with ExitStack() as stack:
            with running_service(settings, publish_state=False, protocol=protocol):
                desk = stack.enter_context(legacy_desk(broker.url, faculty_id))
                settle(db, faculty_id, ("available", True, "desk"))
            desk.set_present(False)  # QoS 0, retained, while the service is down
            assert desk.sent[-1].publish.payload.count(b'"status":"AWAY"') == 1
            with running_service(settings, publish_state=False, protocol=protocol):
                settle(db, faculty_id, ("away", True, "desk"))
    assert status_changes(db, faculty_id) == [("away", "available"), ("available", "away")]


def test_a_dead_desk_stays_offline_and_keeps_the_admins_status_for_a_fresh_service(
    tmp_path: Path, db: psycopg.Connection[Any], database_url: str
) -> None:
    faculty_id = add_faculty(db)
    with private_broker(tmp_path / "mosquitto") as broker:
        first = settings_for(database_url, broker.url, offline_after=1.5)
        with ExitStack() as stack:
            with running_service(first, publish_state=False):
                desk = stack.enter_context(legacy_desk(broker.url, faculty_id))
                settle(db, faculty_id, ("available", True, "desk"))
                with FacultyAdmin(database_url) as admin:
                    admin.set_status(faculty_id, Status.BUSY, actor="test")
                desk.die()  # no will: the broker keeps its retained status and heartbeat
                settle(db, faculty_id, ("busy", False, "admin"))  # the sweeper
            # A new service: new client id, so a new session that gets every retained.
            fresh = settings_for(database_url, broker.url, offline_after=3600)
            with running_service(fresh, publish_state=False) as service:
                wait_until(
                    lambda: service.stats.processed >= 2,
                    timeout=15,
                    message=lambda: f"the retained status and heartbeat, {service.stats}",
                )
                assert row(db, faculty_id) == ("busy", False, "admin")
    assert "retained_snapshot" in rejections(db)


def test_a_retained_status_of_a_dead_desk_never_brings_it_back_online(
    tmp_path: Path, db: psycopg.Connection[Any], database_url: str
) -> None:
    faculty_id = add_faculty(db)
    with private_broker(tmp_path / "mosquitto") as broker:
        first = settings_for(database_url, broker.url, offline_after=1.5)
        with ExitStack() as stack:
            with running_service(first, publish_state=False):
                desk = stack.enter_context(legacy_desk(broker.url, faculty_id))
                settle(db, faculty_id, ("available", True, "desk"))
                desk.die()
                settle(db, faculty_id, ("available", False, "desk"))
            with running_service(
                settings_for(database_url, broker.url, offline_after=3600), publish_state=False
            ) as service:
                wait_until(lambda: service.stats.processed >= 2, timeout=15)
                assert row(db, faculty_id) == ("available", False, "desk")
    online_changes = db.execute(
        "SELECT old_desk_online, new_desk_online FROM status_change WHERE faculty_id = %s "
        "AND old_desk_online <> new_desk_online ORDER BY id",
        (faculty_id,),
    ).fetchall()
    assert online_changes == [(False, True), (True, False)], "online once, offline once"


def test_a_wifi_outage_drains_the_queue_without_spurious_changes(
    tmp_path: Path, db: psycopg.Connection[Any], database_url: str
) -> None:
    faculty_id = add_faculty(db)
    with (
        private_broker(tmp_path / "mosquitto") as broker,
        login_in(database_url, "consultease_ingest") as ingest_url,  # its privileges suffice
    ):
        settings = settings_for(ingest_url, broker.url)
        with (
            running_service(settings, publish_state=False) as service,
            legacy_desk(broker.url, faculty_id) as desk,
        ):
            settle(db, faculty_id, ("available", True, "desk"))
            desk.wifi_down()
            for present in (False, True, False):  # queued: 3 statuses on 2 topics each
                desk.set_present(present)
            assert len(desk.firmware.queue) == 6
            before = service.stats.processed
            desk.wifi_up()
            assert desk.wait_connected(10)
            # The fresh AWAY (retained), then the queue: AWAY, AVAILABLE, AWAY, not retained.
            wait_until(lambda: service.stats.processed >= before + 4, timeout=15)
            queued = [s.publish for s in desk.sent if s.publish.queued]
            assert [p.retain for p in queued] == [False] * 6
            assert row(db, faculty_id) == ("away", True, "desk")
    assert status_changes(db, faculty_id) == [("away", "available"), ("available", "away")]
    assert rejections(db).count("offline_queue") == 3


# -- through the shipped broker configuration -----------------------------------------


@contextmanager
def shipped_broker(tmp_path: Path, desk_ids: list[int]) -> Iterator[tuple[int, dict[str, str]]]:
    """A private mosquitto run from the shipped ``mosquitto.conf`` (ports and paths
    changed only, the TLS listener left out), with logins for the ingest and the desks."""
    if not MosquittoInstance.available():
        pytest.skip("mosquitto is not installed")
    data = tmp_path / "broker"
    data.mkdir()
    passwd, acl = data / "consultease.passwd", data / "consultease.acl"
    passwords: dict[str, str] = {}
    for credentials in [service_credentials("ingest"), *map(desk_credentials, desk_ids)]:
        install(credentials, password_file=passwd, acl_file=acl)
        passwords[credentials.username] = credentials.password
    port = free_port()
    config = adapted_config(
        listeners={1883: f"{port} 127.0.0.1", 8883: None},
        settings={
            "password_file": str(passwd),
            "acl_file": str(acl),
            "persistence_location": f"{data}/",
            "log_dest": f"file {data}/mosquitto.log",
        },
        extra="user root\n" if os.geteuid() == 0 else "",
    )
    assert "queue_qos0_messages true" in config.splitlines()
    with MosquittoInstance(data, port=port, config_text=config):
        yield port, passwords


def test_legacy_desks_work_end_to_end_through_the_shipped_config_and_stay_in_their_lane(
    tmp_path: Path, db: psycopg.Connection[Any], database_url: str
) -> None:
    with FacultyAdmin(database_url) as admin:  # ids as compiled into the desks
        for fid in (3, 4):
            admin.add(
                actor="test",
                name=f"Dr. Desk {fid}",
                department="CS",
                email=f"desk{fid}@uni.example",
                faculty_id=fid,
            )
    with shipped_broker(tmp_path, [3, 4]) as (port, passwords):
        ingest_url = f"mqtt://consultease-ingest:{passwords['consultease-ingest']}@127.0.0.1:{port}"
        desk3_url = f"mqtt://desk-3:{passwords['desk-3']}@127.0.0.1:{port}"
        with running_service(settings_for(database_url, ingest_url), publish_state=False):
            with legacy_desk(desk3_url, 3) as desk:
                settle(db, 3, ("available", True, "desk"))
                desk.set_present(False)
                settle(db, 3, ("away", True, "desk"))
            # desk-3's login with FACULTY_ID 4 compiled in: the ACL drops its publishes.
            with legacy_desk(desk3_url, 4) as impostor:
                impostor.set_present(False)
                assert any(s.publish.topic.endswith("/4/status") for s in impostor.sent)
            with legacy_desk(f"mqtt://desk-4:{passwords['desk-4']}@127.0.0.1:{port}", 4):
                settle(db, 4, ("available", True, "desk"))
    assert status_changes(db, 4) == [("away", "available")], "desk-3 never touched faculty 4"


# -- consultation requests on the desk --------------------------------------------------


@pytest.mark.parametrize("present", [True, False], ids=["present", "away"])
def test_a_request_is_shown_and_answered_on_responses_only_while_present(
    tmp_path: Path, present: bool
) -> None:
    with private_broker(tmp_path / "mosquitto") as broker:
        answers: queue.Queue[tuple[str, bytes, int]] = queue.Queue()
        listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_client_id("resp"))
        listener.on_message = lambda c, u, m: answers.put((m.topic, bytes(m.payload), m.qos))
        listener.connect("127.0.0.1", broker.port)
        listener.subscribe("consultease/faculty/+/responses", qos=1)
        listener.loop_start()
        config = SimConfig(faculty_ids=(5,), mqtt_url=broker.url, seed=5)
        policy = AnswerPolicy(acknowledge=1.0, busy=0.0, delay_min=0.2, delay_max=0.3)
        try:
            with Esp32Fleet(
                config, answers=policy, behaviour=False, initially_present=present
            ) as fleet:
                unit = fleet.units[5]
                assert unit.wait_connected(10)
                wait_until(lambda: unit.sent, timeout=5)  # subscribed before its first publish
                publish.single(
                    "consultease/faculty/5/messages",
                    "CID:77 From:Juan (SID:-): Thesis",
                    qos=1,
                    hostname="127.0.0.1",
                    port=broker.port,
                )
                if present:
                    topic, payload, qos = answers.get(timeout=10)
                    body = json.loads(payload)
                    assert (topic, qos) == ("consultease/faculty/5/responses", 0)
                    assert (body["response_type"], body["message_id"]) == ("ACKNOWLEDGE", "77")
                    assert unit.firmware.shown == ["CID:77 From:Juan (SID:-): Thesis"]
                else:
                    with pytest.raises(queue.Empty):
                        answers.get(timeout=1.5)
                    assert unit.firmware.shown == [], "dropped while away, not kept"
        finally:
            listener.loop_stop()
            listener.disconnect()


def test_a_desk_naming_someone_else_is_applied_logged_once_and_listed_by_health(
    tmp_path: Path,
    db: psycopg.Connection[Any],
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    faculty_id = add_faculty(db, name="Dr. Grace Hopper")
    with private_broker(tmp_path / "mosquitto") as broker:
        config = SimConfig(
            faculty_ids=(faculty_id,),
            mqtt_url=broker.url,
            faculty_names={faculty_id: "Dr. Alan Turing"},
        )
        with (
            caplog.at_level(logging.WARNING, logger="consultease.ingest.store"),
            login_in(database_url, "consultease_ingest") as ingest_url,
            running_service(settings_for(ingest_url, broker.url), publish_state=False),
            Esp32Fleet(config, behaviour=False, initially_present=True) as fleet,
        ):
            unit = fleet.units[faculty_id]
            settle(db, faculty_id, ("available", True, "desk"))
            for present in (False, True):
                unit.set_present(present)
            wait_until(lambda: row(db, faculty_id)[0] == "available" and len(
                status_changes(db, faculty_id)) == 3, timeout=15)  # fmt: skip
        report = check_health(Settings(database_url=database_url, mqtt_url=broker.url))
    warnings = [r for r in caplog.records if "Dr. Alan Turing" in r.getMessage()]
    assert len(warnings) == 1, "logged once per desk, not once per message"
    assert [(m.faculty_id, m.desk_name, m.row_name) for m in report.name_mismatches] == [
        (faculty_id, "Dr. Alan Turing", "Dr. Grace Hopper")
    ]
    db.execute("UPDATE faculty SET name = 'Dr. Alan Turing' WHERE id = %s", (faculty_id,))
    assert check_health(Settings(database_url=database_url)).name_mismatches == ()
