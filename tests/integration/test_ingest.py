"""The ingest service against a real broker and a real database (SPEC 3 and 4).

Tests that need exact message counts run their own mosquitto, so traffic of
other tests on the shared broker cannot reach them; the state-topic test runs
on the shared broker because that is where ``capmqtt`` listens.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pytest_mqtt.model import MqttSettings

from consultease.config import Settings
from consultease.domain import RejectReason, Status
from consultease.errors import ConfigError
from consultease.health import check_health
from consultease.ingest.service import IngestService, subscriptions
from consultease.ingest.state_publisher import state_topic
from consultease.ingest.transport import MqttProtocol
from consultease.tools.servers import MosquittoInstance, free_port
from tests.support.factories import add_faculty, add_many_faculty, faculty_row
from tests.support.ingest import (
    REPO_ROOT,
    Publisher,
    clear_retained,
    desk_rows,
    forget_session,
    private_broker,
    protocol_for,
    redelivered_to,
    rejection_count,
    running_service,
    settings_for,
    status_json,
    status_topic,
    unique_client_id,
    use_unique_ids,
    wait_processed,
    wait_until,
)

LEGACY_FIRMWARE = {
    "faculty_name": "Dr. X",
    "present": True,
    "status": "AVAILABLE",
    "timestamp": 51234,
    "ntp_sync_status": "SYNCED",
    "in_grace_period": False,
    "detailed_status": "AVAILABLE",
}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoInstance]:
    with private_broker(tmp_path / "mosquitto") as instance:
        yield instance


@pytest.fixture
def shared_broker_url(mqtt_settings: MqttSettings) -> str:
    return f"mqtt://{mqtt_settings.host}:{mqtt_settings.port}"


def now_ms() -> int:
    return int(time.time() * 1000)


def state_messages(capmqtt: Any, faculty_id: int) -> list[dict[str, Any]]:
    topic = state_topic(faculty_id)
    return [json.loads(m.payload) for m in capmqtt.messages if m.topic == topic and m.payload]


# -- the round trip --------------------------------------------------------------------


@pytest.mark.capmqtt_decode_utf8
def test_current_and_legacy_messages_reach_the_database_and_the_state_topic(
    capmqtt: Any, shared_broker_url: str, db: psycopg.Connection[Any], database_url: str
) -> None:
    use_unique_ids(db)
    current_id = add_faculty(db, name="Dr. Current")
    legacy_id = add_faculty(db, name="Dr. Legacy")
    mac_id = add_faculty(db, name="Dr. Mac", status="available")
    protocol = protocol_for(shared_broker_url)
    settings = settings_for(database_url, shared_broker_url)
    ts = now_ms()
    try:
        with (
            running_service(settings, protocol=protocol, session_expiry=30),
            Publisher(shared_broker_url) as publisher,
        ):
            publisher.publish_all(
                [
                    (
                        status_topic(current_id),
                        json.dumps(
                            {"status": "busy", "version": 7, "ts": ts, "desk_id": "d-1"}
                        ).encode(),
                    ),
                    (
                        status_topic(legacy_id),
                        json.dumps(LEGACY_FIRMWARE | {"faculty_id": legacy_id}).encode(),
                    ),
                    (
                        f"consultease/faculty/{mac_id}/mac_status",
                        json.dumps(
                            {"status": "faculty_absent", "mac": "AA:BB:CC:DD:EE:FF", "timestamp": 9}
                        ).encode(),
                    ),
                ]
            )
            wait_until(
                lambda: (
                    desk_rows(db, [current_id, legacy_id, mac_id])
                    == {
                        current_id: ("busy", 7),
                        legacy_id: ("available", None),
                        mac_id: ("away", None),
                    }
                ),
                timeout=10,
                message="the three updates in the database",
            )
            current = faculty_row(db, current_id)
            assert current["desk_online"] is True
            assert current["desk_ts"] == datetime.fromtimestamp(ts / 1000, UTC)
            assert current["status_source"] == "desk"
            assert faculty_row(db, legacy_id)["desk_ts"] is None, "uptime is not a clock"

            def shown(faculty_id: int, status: str) -> bool:
                states = state_messages(capmqtt, faculty_id)
                return bool(states) and states[-1]["status"] == status

            wait_until(
                lambda: (
                    shown(current_id, "busy")
                    and shown(legacy_id, "available")
                    and shown(mac_id, "away")
                ),
                timeout=10,
                message="the retained state of each faculty",
            )
            state = state_messages(capmqtt, current_id)[-1]
            row = faculty_row(db, current_id)
            assert state == {
                "status": "busy",
                "desk_online": True,
                "version": row["version"],
                "updated_at": row["updated_at"].isoformat(),
                "always_available": False,
            }
            assert datetime.fromisoformat(state["updated_at"]) == row["updated_at"]
    finally:
        clear_retained(shared_broker_url, [state_topic(i) for i in (current_id, legacy_id, mac_id)])
        forget_session(shared_broker_url, settings.mqtt_client_id, protocol)


def test_admin_edits_and_removals_are_published_to_the_desks(
    broker: MosquittoInstance, db: psycopg.Connection[Any], database_url: str
) -> None:
    faculty_id = add_faculty(db)
    seen: list[tuple[str, bytes]] = []
    with Publisher(broker.url) as watcher:
        watcher.client.on_message = lambda c, u, m: seen.append((m.topic, bytes(m.payload)))
        watcher.client.subscribe(state_topic(faculty_id), qos=1)
        with running_service(settings_for(database_url, broker.url)) as service:
            wait_until(lambda: seen, timeout=10, message="the initial state")
            db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (faculty_id,))
            wait_until(
                lambda: json.loads(seen[-1][1])["status"] == "busy",
                timeout=10,
                message="the admin's change on the state topic",
            )
            db.execute("UPDATE faculty SET active = false WHERE id = %s", (faculty_id,))
            wait_until(lambda: seen[-1][1] == b"", timeout=10, message="the state cleared")
            assert service.stats.state_published >= 3


# -- ordering ---------------------------------------------------------------------------


def test_out_of_order_and_duplicated_updates_end_at_each_highest_version(
    broker: MosquittoInstance, db: psycopg.Connection[Any], database_url: str
) -> None:
    rnd = random.Random(20240611)
    ids = add_many_faculty(db, 50)
    versions = 200
    statuses = {(fid, v): rnd.choice(list(Status)) for fid in ids for v in range(1, versions + 1)}
    messages = [
        (status_topic(fid), status_json(status, version=v, ts_ms=1_700_000_000_000 + v))
        for (fid, v), status in statuses.items()
    ]
    messages += rnd.sample(messages, k=len(messages) // 5)  # 20% duplicated
    rnd.shuffle(messages)

    with running_service(settings_for(database_url, broker.url), publish_state=False) as service:
        with Publisher(broker.url) as publisher:
            published = publisher.publish_all(messages)
        wait_processed(service, published, timeout=60)
        stats = service.stats

    assert published == 12_000
    assert stats.applied + stats.duplicate + stats.stale == published
    assert stats.rejected == 0
    assert stats.duplicate + stats.stale >= published - len(statuses)
    assert rejection_count(db) == stats.stale, "every stale message is kept with its reason"
    assert desk_rows(db, ids) == {fid: (statuses[fid, versions].value, versions) for fid in ids}, (
        "each faculty ends at its highest version"
    )
    assert stats.batches < published, "messages were batched"


def test_two_services_on_a_shared_subscription_agree_on_the_highest_versions(
    broker: MosquittoInstance, db: psycopg.Connection[Any], database_url: str
) -> None:
    rnd = random.Random(7)
    ids = add_many_faculty(db, 10)
    versions = 150
    statuses = {(fid, v): rnd.choice(list(Status)) for fid in ids for v in range(1, versions + 1)}
    messages = [(status_topic(fid), status_json(s, version=v)) for (fid, v), s in statuses.items()]
    messages += rnd.sample(messages, k=len(messages) // 5)
    rnd.shuffle(messages)
    group = f"g{rnd.randrange(10**9)}"

    with (
        running_service(
            settings_for(database_url, broker.url), shared_group=group, batch_size=20
        ) as first,
        running_service(
            settings_for(database_url, broker.url),
            shared_group=group,
            batch_size=20,
            publish_state=False,
        ) as second,
    ):
        assert first.subscriptions[0].startswith(f"$share/{group}/")
        with Publisher(broker.url) as publisher:
            published = publisher.publish_all(messages)
        wait_until(
            lambda: first.stats.processed + second.stats.processed >= published,
            timeout=60,
            message="both services to finish",
        )
        a, b = first.stats, second.stats

    assert a.processed > 0 and b.processed > 0, "the broker split the load"
    assert a.processed + b.processed == published
    assert a.rejected + b.rejected == 0
    assert desk_rows(db, ids) == {fid: (statuses[fid, versions].value, versions) for fid in ids}


def test_shared_subscriptions_are_refused_on_mqtt_3_1_1(database_url: str) -> None:
    settings = settings_for(database_url, "mqtt://127.0.0.1:1883")
    with pytest.raises(ConfigError, match="MQTT 5"):
        IngestService(settings, protocol="3.1.1", shared_group="workers")
    with pytest.raises(ConfigError, match="plain name"):
        IngestService(settings, shared_group="a/b")
    assert subscriptions("w") == (
        "$share/w/consultease/faculty/+/status",
        "$share/w/consultease/faculty/+/heartbeat",
        "$share/w/consultease/faculty/+/availability",
        "$share/w/consultease/faculty/+/mac_status",
        "$share/w/consultease/faculty/+/responses",
    )


def test_mqtt_3_1_1_with_a_persistent_session_works_too(
    broker: MosquittoInstance, db: psycopg.Connection[Any], database_url: str
) -> None:
    faculty_id = add_faculty(db)
    settings = settings_for(database_url, broker.url)
    with running_service(settings, protocol=MqttProtocol.V311, publish_state=False) as service:
        with Publisher(broker.url) as publisher:
            publisher.publish_all([(status_topic(faculty_id), status_json("busy", version=1))])
        wait_processed(service, 1, timeout=10)
    # Away: the session keeps the subscription and queues what arrives.
    with Publisher(broker.url) as publisher:
        publisher.publish_all([(status_topic(faculty_id), status_json("available", version=2))])
    with running_service(settings, protocol=MqttProtocol.V311, publish_state=False) as service:
        wait_processed(service, 1, timeout=10)
    assert desk_rows(db, [faculty_id]) == {faculty_id: ("available", 2)}


# -- back-pressure -------------------------------------------------------------------------


def test_a_full_queue_pauses_reading_instead_of_dropping(
    broker: MosquittoInstance, db: psycopg.Connection[Any], database_url: str
) -> None:
    ids = add_many_faculty(db, 5)
    messages = [
        (status_topic(fid), status_json(Status.BUSY if v % 2 else Status.AWAY, version=v))
        for v in range(1, 201)
        for fid in ids
    ]
    with running_service(
        settings_for(database_url, broker.url), queue_size=3, batch_size=2, publish_state=False
    ) as service:
        with Publisher(broker.url) as publisher:
            published = publisher.publish_all(messages)
        wait_processed(service, published, timeout=60)
        stats = service.stats
    assert stats.applied == published
    assert stats.largest_batch <= 2
    assert desk_rows(db, ids) == {fid: ("away", 200) for fid in ids}


# -- malformed input ---------------------------------------------------------------------


def test_malformed_messages_are_recorded_and_the_service_keeps_going(
    broker: MosquittoInstance, db: psycopg.Connection[Any], database_url: str
) -> None:
    faculty_id = add_faculty(db)
    bad = [
        (status_topic(faculty_id), b"\xff\xfe"),
        (status_topic(faculty_id), b"{nope"),
        (status_topic(faculty_id), b"[]"),
        (status_topic(faculty_id), b'{"status":"sleeping"}'),
        (status_topic(faculty_id), b'{"status":"busy","version":-1}'),
        (status_topic(faculty_id), b'{"status":"busy","version":true}'),
        (status_topic(faculty_id), b'{"status":"busy","faculty_id":999}'),
        (status_topic(faculty_id), b"{" + b" " * 5000 + b"}"),
        ("consultease/faculty/abc/status", b'{"status":"busy"}'),
        ("consultease/faculty/0/heartbeat", b"{}"),
        (status_topic(faculty_id + 1000), b'{"status":"busy"}'),
        (status_topic(faculty_id), status_json("busy", ts_ms=now_ms() + 3_600_000)),
        (f"consultease/faculty/{faculty_id}/availability", b"maybe"),
    ]
    good = [(status_topic(faculty_id), status_json("busy", version=1))]
    with running_service(settings_for(database_url, broker.url), publish_state=False) as service:
        with Publisher(broker.url) as publisher:
            publisher.publish_all(bad + good)
        wait_processed(service, len(bad) + len(good), timeout=10)
        stats = service.stats
    assert (stats.applied, stats.rejected) == (1, len(bad))
    reasons = dict(
        db.execute("SELECT reason, count(*) FROM ingest_rejection GROUP BY reason").fetchall()
    )
    assert reasons == {
        RejectReason.INVALID_ENCODING.value: 1,
        RejectReason.INVALID_JSON.value: 1,
        RejectReason.NOT_OBJECT.value: 1,
        RejectReason.UNKNOWN_STATUS.value: 2,
        RejectReason.VERSION_OUT_OF_RANGE.value: 1,
        RejectReason.INVALID_FIELD.value: 1,
        RejectReason.FACULTY_MISMATCH.value: 1,
        RejectReason.OVERSIZED.value: 1,
        RejectReason.INVALID_TOPIC.value: 2,
        RejectReason.UNKNOWN_FACULTY.value: 1,
        RejectReason.CLOCK_SKEW.value: 1,
    }
    assert stats.rejected_by_reason == reasons
    stored = db.execute(
        "SELECT octet_length(payload) FROM ingest_rejection WHERE reason = 'oversized'"
    ).fetchone()
    assert stored == (4096,), "the stored payload is cut to its first 4096 bytes"
    assert desk_rows(db, [faculty_id]) == {faculty_id: ("busy", 1)}


# -- liveness ---------------------------------------------------------------------------


def test_a_silent_desk_goes_offline_and_its_next_heartbeat_brings_it_back(
    broker: MosquittoInstance, db: psycopg.Connection[Any], database_url: str
) -> None:
    faculty_id = add_faculty(db, status="available")
    settings = Settings.from_env(
        {
            "CONSULTEASE_DATABASE_URL": database_url,
            "CONSULTEASE_MQTT_URL": broker.url,
            "CONSULTEASE_OFFLINE_AFTER": "2",
            "CONSULTEASE_MQTT_CLIENT_ID": unique_client_id(),
        }
    )
    heartbeat = (f"consultease/faculty/{faculty_id}/heartbeat", b'{"uptime":5,"rssi":-60}')

    def online() -> bool:
        return bool(faculty_row(db, faculty_id)["desk_online"])

    with (
        running_service(settings, publish_state=False) as service,
        Publisher(broker.url) as publisher,
    ):
        assert service.sweep_interval == pytest.approx(2 / 3)
        publisher.publish_all([heartbeat])
        wait_until(online, timeout=5, message="the heartbeat to bring the desk online")
        came_online = time.monotonic()
        assert faculty_row(db, faculty_id)["status"] == "available", "a heartbeat keeps status"
        time.sleep(1.0)
        assert online(), "not offline before CONSULTEASE_OFFLINE_AFTER"
        wait_until(lambda: not online(), timeout=5, message="the sweeper")
        assert time.monotonic() - came_online >= 2.0
        assert service.stats.swept_offline >= 1

        publisher.publish_all([heartbeat])
        wait_until(online, timeout=5, message="the next heartbeat")

        # The desk's last will: offline at once, no waiting for the sweeper.
        publisher.publish_all([(f"consultease/faculty/{faculty_id}/availability", b"offline")])
        wait_until(lambda: not online(), timeout=1.5, message="availability offline")
        publisher.publish_all([(f"consultease/faculty/{faculty_id}/availability", b"online")])
        wait_until(online, timeout=5, message="availability online")
    sources = [
        r[0]
        for r in db.execute(
            "SELECT source FROM status_change WHERE faculty_id = %s ORDER BY id", (faculty_id,)
        )
    ]
    assert sources == ["desk", "sweeper", "desk", "desk", "desk"]


# -- operations ---------------------------------------------------------------------------


def test_metrics_are_served_from_the_service_own_registry(
    broker: MosquittoInstance, db: psycopg.Connection[Any], database_url: str
) -> None:
    faculty_id = add_faculty(db)
    with running_service(
        settings_for(database_url, broker.url), publish_state=False, metrics_port=0
    ) as service:
        with Publisher(broker.url) as publisher:
            publisher.publish_all(
                [
                    (status_topic(faculty_id), status_json("busy", version=2)),
                    (status_topic(faculty_id), status_json("busy", version=2)),
                    (status_topic(faculty_id), status_json("away", version=1)),
                    (status_topic(faculty_id), b"junk"),
                ]
            )
        wait_processed(service, 4, timeout=10)
        assert service.metrics_port
        url = f"http://127.0.0.1:{service.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    lines = set(text.splitlines())
    assert 'consultease_ingest_messages_received_total{kind="status"} 3.0' in lines
    assert 'consultease_ingest_messages_received_total{kind="unparsed"} 1.0' in lines
    assert "consultease_ingest_messages_applied_total 1.0" in lines
    assert "consultease_ingest_messages_duplicate_total 1.0" in lines
    assert "consultease_ingest_messages_stale_total 1.0" in lines
    assert 'consultease_ingest_messages_rejected_total{reason="invalid_json"} 1.0' in lines
    assert any(line.startswith("consultease_ingest_batch_size_count ") for line in lines)
    assert any(line.startswith("consultease_ingest_commit_seconds_bucket") for line in lines)
    assert "consultease_ingest_queue_depth 0.0" in lines


def test_health_reports_reachability_desks_and_recent_rejections(
    broker: MosquittoInstance, db: psycopg.Connection[Any], database_url: str
) -> None:
    add_faculty(db, desk_online=True)
    add_faculty(db)
    db.execute(
        "INSERT INTO ingest_rejection (topic, payload, reason) "
        "VALUES ('t', 'x', 'invalid_json'), ('t', 'y', 'invalid_json'), ('t', 'z', 'stale')"
    )
    report = check_health(Settings(database_url=database_url, mqtt_url=broker.url))
    assert report.healthy
    assert (report.desks_online, report.desks_offline) == (1, 1)
    assert report.rejections_last_hour == {"invalid_json": 2, "stale": 1}
    assert report.notification_queue_usage is not None
    assert 0.0 <= report.notification_queue_usage < 1.0

    broker.stop()
    down = check_health(Settings(database_url=database_url, mqtt_url=broker.url), timeout=2)
    assert not down.healthy and down.database.ok and not down.broker.ok


def test_without_a_database_nothing_is_acked_and_stop_still_returns_promptly(
    broker: MosquittoInstance,
) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    client_id = unique_client_id()
    settings = settings_for(nowhere, broker.url, client_id=client_id)
    messages = [(status_topic(7), status_json("busy", version=v)) for v in range(1, 21)]
    service = IngestService(settings, queue_size=2, batch_size=1, publish_state=False)
    service.start()
    try:
        assert service.wait_ready(10)
        with Publisher(broker.url) as publisher:
            publisher.publish_all(messages)
        wait_until(lambda: service.queue_depth == 2, timeout=5, message="a full queue")
    finally:
        started = time.monotonic()
        service.stop(timeout=3)
        stopped_in = time.monotonic() - started
    assert stopped_in < 4.5, "a stop interrupts the retries and the blocked intake"
    assert service.stats.acked == 0 and service.stats.processed == 0
    held = redelivered_to(broker.url, client_id, protocol=MqttProtocol.V5)
    assert sorted(held) == sorted(messages), "the broker still holds every message"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consultease", *args],
        check=False,
        cwd=REPO_ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("CONSULTEASE_")} | (env or {}),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_health_command_exit_code_and_json(broker: MosquittoInstance, database_url: str) -> None:
    ok = run_cli("health", "--json", "--database-url", database_url, "--mqtt-url", broker.url)
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["healthy"] is True
    assert report["database"]["ok"] and report["broker"]["ok"]
    assert set(report) >= {"notification_queue_usage", "desks", "rejections_last_hour"}

    dead = f"mqtt://127.0.0.1:{free_port()}"
    table = run_cli("health", "--timeout", "2", "--database-url", database_url, "--mqtt-url", dead)
    assert table.returncode == 1
    assert "broker" in table.stdout and "FAILED" in table.stdout


def test_ingest_command_refuses_bad_options_in_one_line(database_url: str) -> None:
    shared = run_cli(
        "ingest",
        "--mqtt-protocol",
        "3.1.1",
        "--shared",
        "workers",
        "--database-url",
        database_url,
        "--mqtt-url",
        "mqtt://127.0.0.1:1",
    )
    assert shared.returncode == 2
    assert shared.stderr.strip().count("\n") == 0
    assert "MQTT 5" in shared.stderr and "Traceback" not in shared.stderr

    no_db = run_cli("ingest", "--mqtt-url", "mqtt://127.0.0.1:1")
    assert no_db.returncode == 2 and "no database configured" in no_db.stderr


def test_packets_larger_than_one_socket_read_are_taken_whole(
    broker: MosquittoInstance, db: psycopg.Connection[Any], database_url: str
) -> None:
    faculty_id = add_faculty(db)
    huge = b'{"status":"busy","pad":"' + b"x" * 300_000 + b'"}'
    messages = [
        (status_topic(faculty_id), huge),
        (status_topic(faculty_id), status_json("busy", version=1)),
        (status_topic(faculty_id), huge),
        (status_topic(faculty_id), status_json("available", version=2)),
    ]
    with running_service(settings_for(database_url, broker.url), publish_state=False) as service:
        with Publisher(broker.url) as publisher:
            publisher.publish_all(messages)
        wait_processed(service, len(messages), timeout=10)
        stats = service.stats
    assert (stats.applied, stats.rejected_by_reason) == (2, {"oversized": 2})
    assert desk_rows(db, [faculty_id]) == {faculty_id: ("available", 2)}
