"""The shipped broker configuration on a private Mosquitto: logins, per-desk ACLs, TLS,
and the real ingest service (logged in to the database as an ingest role) behind it.

The broker runs the shipped ``consultease/broker/mosquitto.conf`` through
``consultease.broker.config.adapted_config``, with only the ports and file paths
replaced, and password/ACL files written by the code behind
``consultease desk credentials``.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from consultease.broker.config import adapted_config
from consultease.broker.credentials import (
    Credentials,
    desk_credentials,
    install,
    service_credentials,
)
from consultease.ingest.service import subscriptions
from consultease.tools.servers import MosquittoInstance, free_port
from tests.support.factories import add_faculty, faculty_row
from tests.support.ingest import (
    running_service,
    settings_for,
    status_json,
    unique_client_id,
    wait_until,
)
from tests.support.roles import login_in

INGEST = "consultease-ingest"


@dataclass(frozen=True, kw_only=True)
class TlsFiles:
    certfile: Path
    keyfile: Path


@dataclass(frozen=True, kw_only=True)
class SecureBroker:
    port: int
    tls_port: int | None
    users: dict[str, Credentials]
    tls: TlsFiles | None
    shared_group: str | None = None
    """The ingest services' secret shared-subscription group, from the ACL file."""

    def url(self, username: str, *, tls: bool = False) -> str:
        password = self.users[username].password
        if tls:
            # An address, not "localhost": a fresh machine may have no /etc/hosts to
            # resolve it, and the certificate names 127.0.0.1 in its SAN.
            return f"mqtts://{username}:{password}@127.0.0.1:{self.tls_port}"
        return f"mqtt://{username}:{password}@127.0.0.1:{self.port}"


@contextmanager
def secure_broker(
    tmp_path: Path, desk_ids: list[int], *, tls: TlsFiles | None = None
) -> Iterator[SecureBroker]:
    if not MosquittoInstance.available():
        pytest.skip("mosquitto is not installed")
    data = tmp_path / "broker"
    data.mkdir()
    passwd, acl = data / "consultease.passwd", data / "consultease.acl"
    users = {}
    group = None
    for credentials in [service_credentials("ingest"), *map(desk_credentials, desk_ids)]:
        group = install(credentials, password_file=passwd, acl_file=acl).shared_group or group
        users[credentials.username] = credentials
    port = free_port()
    tls_port = free_port() if tls else None
    files = {
        "password_file": str(passwd),
        "acl_file": str(acl),
        "persistence_location": f"{data}/",
        "log_dest": f"file {data}/mosquitto.log",
    }
    if tls:
        files |= {"certfile": str(tls.certfile), "keyfile": str(tls.keyfile)}
    config = adapted_config(
        listeners={1883: f"{port} 127.0.0.1", 8883: str(tls_port) if tls else None},
        settings=files,
        # Stay root when the tests run as root, so the broker can read tmp_path.
        extra="user root\n" if os.geteuid() == 0 else "",
    )
    with MosquittoInstance(data, port=port, config_text=config):
        if tls_port is not None:
            _wait_for_listener(tls_port)
        yield SecureBroker(port=port, tls_port=tls_port, users=users, tls=tls, shared_group=group)


def _wait_for_listener(port: int, timeout: float = 10.0) -> None:
    """The instance waits for its plain port; the TLS listener, which loads its
    certificate first, may open a moment later on a loaded machine."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Client:
    """A paho client that records its CONNACK and every message it receives."""

    def __init__(
        self,
        port: int,
        username: str | None = None,
        password: str | None = None,
        *,
        protocol: MQTTProtocolVersion = mqtt.MQTTv5,
        ca_file: Path | None = None,
        host: str = "127.0.0.1",
        client_id: str | None = None,
        clean_start: bool = True,
        will: tuple[str, bytes] | None = None,
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or unique_client_id("test-sec"),
            protocol=protocol,
            reconnect_on_failure=False,
        )
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.disconnected = threading.Event()
        self.client.on_disconnect = lambda *args: self.disconnected.set()
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        self.messages: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self.reason: ReasonCode | None = None
        self._answered = threading.Event()
        self._subscribed: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, m: self.messages.put(
            (m.topic, bytes(m.payload), bool(m.retain))
        )
        self.client.on_subscribe = lambda c, u, mid, codes, props: self._subscribed.put(codes)
        if protocol == mqtt.MQTTv5:
            self.client.connect(host, port, keepalive=30, clean_start=clean_start)
        else:
            self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        assert self._answered.wait(10), "the broker never answered CONNECT"

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.reason = reason
        self._answered.set()

    @property
    def accepted(self) -> bool:
        return self.reason is not None and not self.reason.is_failure

    def subscribe(self, *topics: str) -> list[ReasonCode]:
        self.client.subscribe([(topic, 1) for topic in topics])
        return self._subscribed.get(timeout=10)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)

    def received(self, *, within: float) -> list[tuple[str, bytes, bool]]:
        deadline = time.monotonic() + within
        got = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.append(self.messages.get(timeout=left))
            except queue.Empty:
                break
        return got

    def until(self, topic: str, *, timeout: float = 10) -> list[tuple[str, bytes]]:
        """Every message received up to and including the first one on ``topic``."""
        deadline = time.monotonic() + timeout
        seen: list[tuple[str, bytes]] = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                got_topic, payload, _ = self.messages.get(timeout=left)
            except queue.Empty:
                break
            seen.append((got_topic, payload))
            if got_topic == topic:
                return seen
        raise AssertionError(f"no message on {topic} within {timeout}s (saw {seen})")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def connected(broker: SecureBroker, username: str, **options: Any) -> Iterator[Client]:
    client = Client(broker.port, username, broker.users[username].password, **options)
    try:
        assert client.accepted, f"{username} was refused: {client.reason}"
        yield client
    finally:
        client.close()


def topic(faculty_id: int, suffix: str) -> str:
    return f"consultease/faculty/{faculty_id}/{suffix}"


# -- logins ------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [mqtt.MQTTv5, mqtt.MQTTv311])
def test_anonymous_clients_are_refused(tmp_path: Path, protocol: MQTTProtocolVersion) -> None:
    with secure_broker(tmp_path, [3]) as broker:
        client = Client(broker.port, protocol=protocol)
        client.close()
    assert client.reason is not None and client.reason.is_failure
    assert "authori" in str(client.reason).lower()


@pytest.mark.parametrize(
    ("username", "password"),
    [("desk-3", "wrong"), ("desk-4", None), (INGEST, ""), ("desk-99", "anything")],
)
def test_wrong_passwords_and_unknown_users_are_refused(
    tmp_path: Path, username: str, password: str | None
) -> None:
    with secure_broker(tmp_path, [3, 4]) as broker:
        client = Client(broker.port, username, password)
        client.close()
    assert client.reason is not None and client.reason.is_failure


# -- ACLs at the broker -------------------------------------------------------------------


def test_a_desk_can_publish_only_for_its_own_faculty(tmp_path: Path) -> None:
    with (
        secure_broker(tmp_path, [3, 4]) as broker,
        connected(broker, INGEST) as ingest,
        connected(broker, "desk-3") as desk,
    ):
        assert all(not code.is_failure for code in ingest.subscribe(*subscriptions()))
        for suffix in ("status", "heartbeat", "availability", "mac_status"):
            desk.publish(topic(4, suffix), b'{"status": "busy"}')
        desk.publish(topic(3, "status"), b'{"status": "available"}')
        seen = ingest.until(topic(3, "status"))
        seen += [(t, p) for t, p, _ in ingest.received(within=0.5)]
    assert seen == [(topic(3, "status"), b'{"status": "available"}')]


def test_the_ingest_user_may_use_a_shared_subscription(tmp_path: Path) -> None:
    with (
        secure_broker(tmp_path, [3]) as broker,
        connected(broker, INGEST) as ingest,
        connected(broker, "desk-3") as desk,
    ):
        codes = ingest.subscribe(*subscriptions("consultease"))
        assert all(not code.is_failure for code in codes)
        desk.publish(topic(3, "heartbeat"), b"{}")
        assert ingest.until(topic(3, "heartbeat")) == [(topic(3, "heartbeat"), b"{}")]


def test_a_desk_reads_only_its_own_state_and_cannot_forge_it(tmp_path: Path) -> None:
    with (
        secure_broker(tmp_path, [3, 4]) as broker,
        connected(broker, INGEST) as ingest,
        connected(broker, "desk-3") as desk,
    ):
        ingest.publish(topic(3, "state"), b'{"status": "busy"}', retain=True)
        ingest.publish(topic(4, "state"), b'{"status": "away"}', retain=True)
        desk.subscribe(topic(3, "state"))
        desk.subscribe(topic(4, "state"))
        desk.subscribe("consultease/faculty/+/state")
        desk.subscribe("consultease/#")
        got = desk.received(within=1.0)
        assert {(t, p) for t, p, _ in got} == {(topic(3, "state"), b'{"status": "busy"}')}

        ingest.subscribe("consultease/faculty/+/state")
        ingest.received(within=0.5)  # the retained copies
        desk.publish(topic(3, "state"), b'{"status": "available"}', retain=True)
        desk.publish(topic(4, "state"), b'{"status": "available"}', retain=True)
        assert ingest.received(within=1.0) == []


# -- the real ingest service behind the broker ----------------------------------------------


@pytest.mark.parametrize("shared_group", [None, "consultease"])
def test_a_desk_cannot_change_another_lecturer_through_the_ingest_service(
    tmp_path: Path, database_url: str, db: psycopg.Connection[Any], shared_group: str | None
) -> None:
    mine = add_faculty(db, name="Dr. Desk Owner")
    other = add_faculty(db, name="Dr. Someone Else")
    before_other = faculty_row(db, other)
    with (
        secure_broker(tmp_path, [mine, other]) as broker,
        login_in(database_url, "consultease_ingest") as ingest_db_url,
        running_service(
            settings_for(ingest_db_url, broker.url(INGEST)),
            protocol="5",
            shared_group=shared_group,
        ) as service,
        connected(broker, f"desk-{mine}") as desk,
    ):
        desk.subscribe(topic(mine, "state"))
        now_ms = int(time.time() * 1000)
        desk.publish(topic(other, "status"), status_json("busy", version=1, ts_ms=now_ms))
        desk.publish(topic(other, "availability"), b"offline")
        desk.publish(topic(mine, "status"), status_json("available", version=1, ts_ms=now_ms))
        wait_until(
            lambda: faculty_row(db, mine)["status"] == "available",
            timeout=15,
            message="the desk's own status to apply",
        )
        # The loop closes: the ingest user may publish state, the desk may read its own.
        wait_until(
            lambda: any(
                t == topic(mine, "state") and json.loads(p).get("status") == "available"
                for t, p, _ in desk.received(within=0.2)
            ),
            timeout=10,
            message="the state message on the desk's own topic",
        )
        processed = service.stats.processed
    assert processed == 1
    assert faculty_row(db, other) == before_other
    assert db.execute(
        "SELECT count(*) FROM status_change WHERE faculty_id = %s", (other,)
    ).fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM ingest_rejection").fetchone() == (0,)


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    certs = tmp_path / "certs"
    certs.mkdir()
    files = TlsFiles(certfile=certs / "broker.crt", keyfile=certs / "broker.key")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(files.keyfile),
            "-out",
            str(files.certfile),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return files


def test_tls_listener_needs_a_login_and_carries_the_ingest_service(
    tmp_path: Path, tls_files: TlsFiles, database_url: str, db: psycopg.Connection[Any]
) -> None:
    faculty_id = add_faculty(db)
    with secure_broker(tmp_path, [faculty_id], tls=tls_files) as broker:
        assert broker.tls_port is not None
        anonymous = Client(broker.tls_port, ca_file=tls_files.certfile)
        anonymous.close()
        assert anonymous.reason is not None and anonymous.reason.is_failure

        desk_name = f"desk-{faculty_id}"
        desk = Client(
            broker.tls_port,
            desk_name,
            broker.users[desk_name].password,
            ca_file=tls_files.certfile,
        )
        try:
            assert desk.accepted
            with running_service(
                settings_for(database_url, broker.url(INGEST, tls=True)),
                protocol="5",
                ca_file=str(tls_files.certfile),
            ):
                desk.publish(topic(faculty_id, "status"), status_json("busy", version=1))
                wait_until(
                    lambda: faculty_row(db, faculty_id)["status"] == "busy",
                    timeout=15,
                    message="the update sent over TLS to apply",
                )
        finally:
            desk.close()
