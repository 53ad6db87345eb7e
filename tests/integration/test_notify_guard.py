"""The NOTIFY queue guard against a real PostgreSQL: a stalled listener is found, dropped,
and the queue drains instead of filling.

pg_notify's queue is one per cluster, so these tests run a private server: a
stalled session of any other test on the shared server would hold the queue
for everyone, and theirs would make ours look full.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from pytest_mqtt.model import MqttSettings

from consultease.db.migrate import upgrade
from consultease.db.notify_guard import NotifyQueueGuard, queue_usage, stalled_sessions
from consultease.live.listener import FacultyListener
from consultease.tools.servers import PostgresInstance
from tests.support.ingest import REPO_ROOT, running_service, settings_for, wait_until
from tests.support.pg import create_database, with_database
from tests.support.roles import login_in

pytestmark = pytest.mark.slow

THRESHOLD = 0.0005
"""About 520 pages of the queue's 1,048,576: a few MB, quick to reach in a test."""
PAGE_SIZED = (
    "SELECT pg_notify('faculty_changed', repeat('x', 7900) || g) FROM generate_series(1, %s) g"
)
"""``count`` notifications of ~8 KB each (distinct payloads: equal ones in one
transaction are folded into one), so each takes about one queue page."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresInstance]:
    instance = PostgresInstance(tmp_path_factory.mktemp("notify-pg") / "pg", durable=False)
    instance.start()
    try:
        yield instance
    finally:
        instance.destroy()


@pytest.fixture
def url(server: PostgresInstance) -> str:
    database = with_database(server.url, create_database(server.url))
    upgrade(database)
    return database


@pytest.fixture
def admin(url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


def stalled_in_a_transaction(url: str, name: str) -> psycopg.Connection[Any]:
    """A session that LISTENs, then sits inside a transaction (it cannot read the queue)."""
    conn = psycopg.connect(url, application_name=name)
    conn.execute("LISTEN faculty_changed")
    conn.commit()
    conn.execute("SELECT 1")  # opens a transaction and leaves it open
    return conn


def stopped_reading(url: str, name: str) -> psycopg.Connection[Any]:
    """A session that LISTENs and whose client never reads its socket again (a frozen
    kiosk): a tiny receive buffer, so the server soon blocks writing to it."""
    conn = psycopg.connect(url, autocommit=True, application_name=name)
    sock = socket.socket(fileno=conn.fileno())
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.detach()
    conn.execute("LISTEN faculty_changed")
    return conn


def session_alive(conn: psycopg.Connection[Any]) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    finally:
        if not conn.closed and not conn.broken and not conn.autocommit:
            conn.rollback()
    return True


def drained(admin: psycopg.Connection[Any]) -> bool:
    """Send a few more notifications (PostgreSQL trims the queue as they go in) and
    say whether the queue is back to its few working pages."""
    admin.execute(PAGE_SIZED, (5,))
    return queue_usage(admin) < THRESHOLD / 10


def pids_named(admin: psycopg.Connection[Any], name: str) -> list[int]:
    return [
        int(r[0])
        for r in admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)
        )
    ]


def test_a_listener_idle_in_a_transaction_is_dropped_after_two_looks_and_the_queue_drains(
    url: str, admin: psycopg.Connection[Any]
) -> None:
    stuck = stalled_in_a_transaction(url, "ce-stuck-tx")
    healthy = FacultyListener(url, application_name="ce-healthy-listener")
    healthy.start()
    wait_until(lambda: healthy.connected, timeout=10, message="the healthy listener")
    guard = NotifyQueueGuard(url, threshold=THRESHOLD, stalled_after=1)
    try:
        admin.execute(PAGE_SIZED, (1000,))
        assert queue_usage(admin) > THRESHOLD, "the stalled session holds the queue's tail"
        time.sleep(1.2)
        assert guard.check() == [], "one look is a suspicion, not evidence"
        assert pids_named(admin, "ce-stuck-tx")
        time.sleep(0.2)
        [dropped] = guard.check()
        assert dropped.application == "ce-stuck-tx"
        assert dropped.state == "idle in transaction"
        assert not session_alive(stuck)
        assert healthy.stats.notifications >= 1000, "the healthy listener read them all"
        assert healthy.connected and healthy.stats.reconnects == 0, "and was never touched"
        # With the tail free, the next notifications let PostgreSQL trim the queue.
        wait_until(
            lambda: drained(admin),
            timeout=30,
            message="the queue to drain",
        )
        assert guard.check() == []
    finally:
        guard.close()
        healthy.close()
        stuck.close()


def test_nothing_is_dropped_while_the_queue_is_below_its_threshold(
    url: str, admin: psycopg.Connection[Any]
) -> None:
    stuck = stalled_in_a_transaction(url, "ce-idle-but-harmless")
    guard = NotifyQueueGuard(url, threshold=THRESHOLD, stalled_after=1)
    try:
        admin.execute(PAGE_SIZED, (20,))
        time.sleep(1.2)
        assert [s.application for s in stalled_sessions(admin, stalled_after=1)] == [
            "ce-idle-but-harmless"
        ]
        assert guard.check() == [] and guard.check() == []
        assert session_alive(stuck)
    finally:
        guard.close()
        stuck.close()


def test_sessions_of_another_database_are_never_touched(
    server: PostgresInstance, url: str, admin: psycopg.Connection[Any]
) -> None:
    other = with_database(server.url, create_database(server.url))
    stuck_elsewhere = stalled_in_a_transaction(other, "ce-other-database")
    guard = NotifyQueueGuard(url, threshold=THRESHOLD, stalled_after=1)
    try:
        with psycopg.connect(other, autocommit=True) as conn:
            conn.execute(PAGE_SIZED, (1000,))
        assert queue_usage(admin) > THRESHOLD, "the queue is the cluster's"
        time.sleep(1.2)
        assert guard.check() == [] and guard.check() == []
        assert session_alive(stuck_elsewhere)
    finally:
        guard.close()
        stuck_elsewhere.close()


def test_the_ingest_sweeper_drops_a_kiosk_that_stopped_reading_so_the_queue_never_fills(
    url: str, admin: psycopg.Connection[Any], mqtt_settings: MqttSettings
) -> None:
    frozen = stopped_reading(url, "ce-frozen-kiosk")
    settings = settings_for(
        url, f"mqtt://{mqtt_settings.host}:{mqtt_settings.port}", offline_after=3
    ).with_overrides(notify_queue_threshold=THRESHOLD, stalled_after=1)
    peak = 0.0
    try:
        with running_service(settings, publish_state=False) as service:
            # A busy system: changes keep coming while the kiosk is frozen.
            deadline = time.monotonic() + 90
            while pids_named(admin, "ce-frozen-kiosk"):
                assert time.monotonic() < deadline, "the frozen kiosk was never dropped"
                admin.execute(PAGE_SIZED, (100,))
                peak = max(peak, queue_usage(admin))
                time.sleep(0.1)
            assert peak > THRESHOLD, "the frozen kiosk did hold the queue"
            # Changes go on, and the queue stays near empty from now on.
            for _ in range(20):
                admin.execute(PAGE_SIZED, (100,))
            wait_until(
                lambda: drained(admin),
                timeout=30,
                message="the queue to drain",
            )
            metrics = service.metrics.registry
            dropped = metrics.get_sample_value("consultease_ingest_stalled_sessions_dropped_total")
            assert dropped == 1
    finally:
        frozen.close()
    assert peak < 0.1, f"the queue reached {peak:.1%}: far from full when the guard acted"


def test_health_names_the_stalled_session_and_fix_drops_it(
    url: str, admin: psycopg.Connection[Any], mqtt_settings: MqttSettings
) -> None:
    frozen = stopped_reading(url, "ce-frozen-for-health")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULTEASE_")} | {
        "CONSULTEASE_DATABASE_URL": url,
        "CONSULTEASE_MQTT_URL": f"mqtt://{mqtt_settings.host}:{mqtt_settings.port}",
        "CONSULTEASE_NOTIFY_QUEUE_THRESHOLD": str(THRESHOLD),
    }

    def health(*args: str) -> tuple[int, dict[str, Any]]:
        result = subprocess.run(
            [sys.executable, "-m", "consultease", "health", "--json", "--stalled-after", "1",
             *args],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        return result.returncode, json.loads(result.stdout)

    try:
        admin.execute(PAGE_SIZED, (1500,))
        wait_until(
            lambda: any(
                s.application == "ce-frozen-for-health" and s.wait_event == "ClientWrite"
                for s in stalled_sessions(admin, stalled_after=1)
            ),
            timeout=30,
            message="the server blocked writing to the frozen client",
        )
        code, report = health()
        assert code == 1, "a queue over its threshold is unhealthy"
        assert report["notification_queue_ok"] is False
        assert report["notification_queue_usage"] > THRESHOLD
        [stalled] = report["stalled_sessions"]
        assert stalled["application"] == "ce-frozen-for-health"
        assert stalled["wait_event"] == "ClientWrite" and stalled["dropped"] is False
        assert pids_named(admin, "ce-frozen-for-health"), "without --fix nothing is dropped"

        code, report = health("--fix")
        assert [s["application"] for s in report["dropped_sessions"]] == ["ce-frozen-for-health"]
        wait_until(
            lambda: not pids_named(admin, "ce-frozen-for-health"), timeout=10, message="gone"
        )
        wait_until(
            lambda: drained(admin),
            timeout=30,
            message="the queue to drain",
        )
        code, report = health()
        assert report["notification_queue_ok"] is True and report["stalled_sessions"] == []
        assert code == 0
    finally:
        frozen.close()


def test_the_ingest_login_may_use_the_guard_and_a_kiosk_login_may_not(
    url: str, admin: psycopg.Connection[Any]
) -> None:
    stuck = stalled_in_a_transaction(url, "ce-stuck-for-roles")
    try:
        time.sleep(1.2)
        with login_in(url, "consultease_ingest") as ingest_url, psycopg.connect(ingest_url) as conn:
            # Another login's session, seen and named through the guard's function.
            assert [s.application for s in stalled_sessions(conn, stalled_after=1)] == [
                "ce-stuck-for-roles"
            ]
        with (
            login_in(url, "consultease_kiosk") as kiosk_url,
            psycopg.connect(kiosk_url) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            stalled_sessions(conn, stalled_after=1)
    finally:
        stuck.close()


def test_the_guard_refuses_to_call_a_moment_of_idleness_a_stall(
    admin: psycopg.Connection[Any],
) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        admin.execute("SELECT * FROM consultease_stalled_sessions_v1(interval '0.5 seconds')")
