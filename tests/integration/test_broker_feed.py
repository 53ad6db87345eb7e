"""Kiosks at scale: live updates from the broker's retained state, rows read from a replica.

A private primary with a streaming hot standby (a standby cannot LISTEN at
all), a private mosquitto (so the retained state seen is only ours), the real
state publisher on the primary, and ``BrokerFeed`` reading from the standby.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from consultease.broker.config import adapted_config
from consultease.broker.credentials import desk_credentials, install, service_credentials
from consultease.config import MqttEndpoint, Settings
from consultease.db.migrate import upgrade
from consultease.db.readmodel import load_views
from consultease.ingest.state_publisher import StateService
from consultease.live.broker_feed import BrokerFeed, parse_state
from consultease.live.feed import make_feed
from consultease.live.listener import (
    Connected,
    Disconnected,
    FacultyChanged,
    FacultyListener,
    FacultyRemoved,
    ListenerEvent,
    Resynced,
)
from consultease.tools.servers import MosquittoInstance, PostgresInstance, free_port
from tests.integration.test_security_mqtt import Client
from tests.support.factories import add_faculty
from tests.support.ingest import private_broker, wait_until
from tests.support.pg import create_database, with_database
from tests.support.roles import login_in, url_as

pytestmark = pytest.mark.slow


@dataclass(frozen=True, kw_only=True)
class Cluster:
    primary: PostgresInstance
    standby: PostgresInstance


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("replicated-pg")
    primary = PostgresInstance(root / "primary", durable=False).start()
    try:
        standby = primary.replica(root / "standby").start()
        try:
            yield Cluster(primary=primary, standby=standby)
        finally:
            standby.destroy()
    finally:
        primary.destroy()


@dataclass(frozen=True, kw_only=True)
class Database:
    primary: str
    standby: str


@pytest.fixture
def database(cluster: Cluster) -> Database:
    name = create_database(cluster.primary.url)
    primary = with_database(cluster.primary.url, name)
    upgrade(primary)
    standby = with_database(cluster.standby.url, name)
    wait_until(lambda: _migrated(standby), timeout=60, message="the standby to replay the schema")
    return Database(primary=primary, standby=standby)


def _migrated(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute("SELECT to_regclass('faculty') IS NOT NULL").fetchone() == (True,)
    except psycopg.OperationalError:
        return False


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoInstance]:
    with private_broker(tmp_path / "mosquitto", persistence=False) as instance:
        yield instance


@pytest.fixture
def db(database: Database) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database.primary, autocommit=True) as conn:
        yield conn


class Recorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[ListenerEvent] = []

    def __call__(self, event: ListenerEvent) -> None:
        with self._lock:
            self.events.append(event)

    def clear(self) -> None:
        with self._lock:
            self.events.clear()

    def of(self, kind: type) -> list[Any]:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]

    def changes(self, faculty_id: int) -> list[tuple[str, int | None]]:
        """The row's story after the first resync: (event, version)."""
        with self._lock:
            story: list[tuple[str, int | None]] = []
            for e in self.events:
                if isinstance(e, FacultyChanged) and e.view.id == faculty_id:
                    story.append(("changed", e.view.version))
                elif isinstance(e, FacultyRemoved) and e.faculty_id == faculty_id:
                    story.append(("removed", None))
            return story


@pytest.fixture
def state(database: Database, broker: MosquittoInstance) -> Iterator[StateService]:
    service = StateService(database.primary, MqttEndpoint.parse(broker.url))
    service.start()
    assert service.wait_connected(20)
    yield service
    service.close()


def started_feed(url: str, broker_url: str, **options: Any) -> tuple[BrokerFeed, Recorder]:
    feed = BrokerFeed(url, MqttEndpoint.parse(broker_url), **options)
    recorder = Recorder()
    feed.subscribe(recorder)
    feed.start()
    return feed, recorder


def test_state_messages_are_hints_with_an_id_and_a_version() -> None:
    assert parse_state("consultease/faculty/12/state", b'{"version":4,"status":"busy"}') == (12, 4)
    assert parse_state("consultease/faculty/12/state", b"") == (12, -1)
    for topic, payload in [
        ("consultease/faculty/x/state", b'{"version":4}'),
        ("consultease/faculty/12/status", b'{"version":4}'),
        ("other/faculty/12/state", b'{"version":4}'),
        ("consultease/faculty/12/state", b"not json"),
        ("consultease/faculty/12/state", b'{"version":true}'),
        ("consultease/faculty/12/state", b"[1]"),
    ]:
        assert parse_state(topic, payload) is None, (topic, payload)


def test_a_standby_cannot_listen_so_a_kiosk_on_it_needs_the_broker(database: Database) -> None:
    with (
        psycopg.connect(database.standby, autocommit=True) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="LISTEN"),
    ):
        conn.execute("LISTEN faculty_changed")


def test_a_kiosk_reading_a_standby_shows_every_change_through_the_broker(
    database: Database,
    db: psycopg.Connection[Any],
    broker: MosquittoInstance,
    state: StateService,
) -> None:
    first = add_faculty(db, name="Dr. First", status="away")
    second = add_faculty(db, name="Dr. Second", status="available", desk_online=True)
    with login_in(database.primary, "consultease_kiosk") as kiosk_on_primary:
        # The kiosk's own read-only login, on the standby (roles replicate too).
        login = conninfo_to_dict(kiosk_on_primary)
        kiosk_url = url_as(database.standby, str(login["user"]), str(login["password"]))
        wait_until(lambda: _can_login(kiosk_url), timeout=30, message="the role on the standby")
        feed, events = started_feed(kiosk_url, broker.url)
        try:
            wait_until(lambda: feed.connected, timeout=30, message="the feed to go live")
            [resync] = events.of(Resynced)
            assert {v.id for v in resync.views} == {first, second}

            db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (first,))
            wait_until(
                lambda: (feed.cache.version_of(first) or 0) >= 2, timeout=20, message="the change"
            )
            third = add_faculty(db, name="Dr. Third")
            wait_until(lambda: feed.cache.get(third), timeout=20, message="the new faculty")
            db.execute("UPDATE faculty SET active = false WHERE id = %s", (second,))
            wait_until(lambda: feed.cache.get(second) is None, timeout=20, message="the removal")

            assert events.changes(first) == [("changed", 2)]
            assert events.changes(second) == [("removed", None)]
            assert events.changes(third) == [("changed", 1)]
            assert {v.id: v for v in feed.cache.all()} == {v.id: v for v in load_views(db)}, (
                "the kiosk shows what the primary holds"
            )
            assert not events.of(Disconnected)
        finally:
            feed.close(timeout=5)


def _can_login(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def test_the_same_events_reach_a_kiosk_from_the_broker_as_from_listen(
    database: Database,
    db: psycopg.Connection[Any],
    broker: MosquittoInstance,
    state: StateService,
) -> None:
    ids = [add_faculty(db, name=f"Dr. {n}") for n in ("A", "B", "C")]
    listener = FacultyListener(database.primary, application_name="ce-test-listen-side")
    listened = Recorder()
    listener.subscribe(listened)
    listener.start()
    feed, fed = started_feed(database.standby, broker.url)
    try:
        wait_until(
            lambda: all(listener.cache.get(i) and feed.cache.get(i) for i in ids),
            timeout=30,
            message="both kiosks live with the three rows",
        )
        # The standby may have replayed a row after the feed's first reload (it then
        # came as a change): compare from here, where both show the same rows.
        listened.clear()
        fed.clear()
        steps = [
            ("UPDATE faculty SET status = 'busy' WHERE id = %s", ids[0]),
            ("UPDATE faculty SET name = 'Dr. A. Renamed' WHERE id = %s", ids[0]),
            ("UPDATE faculty SET desk_online = true WHERE id = %s", ids[1]),
            ("UPDATE faculty SET last_seen = now() WHERE id = %s", ids[1]),  # bookkeeping
            ("UPDATE faculty SET active = false WHERE id = %s", ids[2]),
        ]
        for statement, faculty_id in steps:
            db.execute(statement, (faculty_id,))
            [row] = db.execute("SELECT version, active FROM faculty WHERE id = %s", (faculty_id,))
            version, active = row

            def both_have(fid: int = faculty_id, v: int = version, a: bool = active) -> bool:
                if not a:
                    return listener.cache.get(fid) is None and feed.cache.get(fid) is None
                return listener.cache.version_of(fid) == v and feed.cache.version_of(fid) == v

            wait_until(both_have, timeout=20, message=f"both kiosks after {statement!r}")
        for faculty_id in ids:
            assert fed.changes(faculty_id) == listened.changes(faculty_id)
        assert fed.changes(ids[0]) == [("changed", 2), ("changed", 3)]
        assert fed.changes(ids[1]) == [("changed", 2)], "bookkeeping is not a change"
        assert fed.changes(ids[2]) == [("removed", None)]
        assert feed.cache.all() == listener.cache.all()
    finally:
        feed.close(timeout=5)
        listener.close(timeout=5)


def test_a_broker_restart_shows_as_down_then_resyncs_with_what_changed_meanwhile(
    database: Database,
    db: psycopg.Connection[Any],
    broker: MosquittoInstance,
    state: StateService,
) -> None:
    faculty_id = add_faculty(db, status="away")
    feed, events = started_feed(database.standby, broker.url)
    try:
        wait_until(lambda: feed.connected, timeout=30, message="the feed to go live")
        broker.stop()
        wait_until(lambda: not feed.connected, timeout=30, message="the feed to notice")
        assert events.of(Disconnected)
        db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (faculty_id,))
        broker.start()
        wait_until(
            lambda: feed.connected and feed.cache.version_of(faculty_id) == 2,
            timeout=60,
            message="the change made while the broker was down",
        )
        kinds = [type(e) for e in events.events if isinstance(e, Connected | Disconnected)]
        assert kinds == [Connected, Disconnected, Connected]
        assert len(events.of(Resynced)) >= 2, "every reconnect reloads"
    finally:
        feed.close(timeout=5)


def test_a_lost_database_connection_is_reported_and_repaired(
    database: Database,
    db: psycopg.Connection[Any],
    broker: MosquittoInstance,
    state: StateService,
    cluster: Cluster,
) -> None:
    faculty_id = add_faculty(db, status="away")
    feed, events = started_feed(
        database.standby, broker.url, application_name="ce-test-feed-db", idle_ping=0.5
    )
    try:
        wait_until(lambda: feed.connected, timeout=30, message="the feed to go live")
        with psycopg.connect(cluster.standby.url, autocommit=True) as standby:
            standby.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'ce-test-feed-db'"
            )
        wait_until(lambda: events.of(Disconnected), timeout=30, message="the loss reported")
        db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (faculty_id,))
        wait_until(
            lambda: feed.connected and feed.cache.version_of(faculty_id) == 2,
            timeout=60,
            message="the feed back, with the change",
        )
        assert feed.stats.reconnects >= 1
    finally:
        feed.close(timeout=5)
    assert not any(t.name == "ce-test-feed-db" and t.is_alive() for t in threading.enumerate())


def test_the_kiosk_login_reads_every_state_and_may_do_nothing_else(
    tmp_path: Path, database: Database, db: psycopg.Connection[Any]
) -> None:
    """The shipped broker config, with logins made by `consultease desk credentials`."""
    faculty_id = add_faculty(db, status="away")
    data = tmp_path / "secure"
    data.mkdir()
    passwd, acl = data / "consultease.passwd", data / "consultease.acl"
    ingest, kiosk = service_credentials("ingest"), service_credentials("kiosk")
    desk = desk_credentials(faculty_id)
    for credentials in (ingest, kiosk, desk):
        install(credentials, password_file=passwd, acl_file=acl)
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
    state, status = (
        f"consultease/faculty/{faculty_id}/state",
        f"consultease/faculty/{faculty_id}/status",
    )
    with MosquittoInstance(data, port=port, config_text=config):
        watcher = Client(port, ingest.username, ingest.password)
        reader = Client(port, kiosk.username, kiosk.password)
        unit = Client(port, desk.username, desk.password)
        try:
            assert watcher.accepted and reader.accepted and unit.accepted
            watcher.publish(state, b'{"status":"away","version":1}', retain=True)
            assert not any(c.is_failure for c in reader.subscribe("consultease/faculty/+/state"))
            assert reader.until(state) == [(state, b'{"status":"away","version":1}')]
            # Desk traffic is not the kiosk's to read…
            reader.subscribe("consultease/faculty/+/status", "consultease/#")
            reader.received(within=0.5)  # the retained state again, through the new filter
            unit.publish(status, b'{"status":"busy"}')
            assert [t for t, _, _ in reader.received(within=1.0)] == []
            # …and it cannot speak for a desk, nor forge what desks are shown.
            watcher.subscribe(status, state)
            watcher.received(within=0.5)
            reader.publish(status, b'{"status":"busy"}')
            reader.publish(state, b'{"status":"busy","version":9}', retain=True)
            assert watcher.received(within=1.0) == []
        finally:
            for client in (watcher, reader, unit):
                client.close()

        # And it is enough for a kiosk: the real feed, on the standby, with that login.
        service = StateService(
            database.primary,
            MqttEndpoint.parse(f"mqtt://{ingest.username}:{ingest.password}@127.0.0.1:{port}"),
        )
        service.start()
        settings = Settings(
            database_url=database.primary,
            read_database_url=database.standby,
            mqtt_url=f"mqtt://{kiosk.username}:{kiosk.password}@127.0.0.1:{port}",
            live_updates="broker",
        )
        feed = make_feed(settings, application_name="ce-test-secure-kiosk")
        assert isinstance(feed, BrokerFeed)
        try:
            feed.start()
            wait_until(lambda: feed.connected, timeout=30, message="the kiosk login to subscribe")
            db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (faculty_id,))
            wait_until(
                lambda: feed.cache.version_of(faculty_id) == 2, timeout=20, message="the change"
            )
        finally:
            feed.close(timeout=5)
            service.close()
