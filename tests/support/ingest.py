"""Running the ingest service in tests: in a thread or as a subprocess, plus MQTT helpers.

No fixtures here (tests/conftest.py holds the shared ones); test modules build
theirs from these helpers.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from psycopg import sql

from consultease.config import MqttEndpoint, Settings
from consultease.domain import Status
from consultease.ingest.service import IngestService
from consultease.ingest.transport import MqttProtocol
from consultease.tools.servers import MosquittoInstance

REPO_ROOT = Path(__file__).resolve().parents[2]
STATUSES = (Status.AVAILABLE, Status.AWAY, Status.BUSY)


def unique_client_id(prefix: str = "test-ingest") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wait_until(
    predicate: Callable[[], object],
    *,
    timeout: float,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition",
) -> None:
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:g}s waiting for {text}")
        time.sleep(interval)


def settings_for(
    database_url: str,
    mqtt_url: str,
    *,
    client_id: str | None = None,
    offline_after: float = 90.0,
    max_clock_skew: float = 300.0,
) -> Settings:
    return Settings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        offline_after=offline_after,
        max_clock_skew=max_clock_skew,
        mqtt_client_id=client_id or unique_client_id(),
    )


# -- the database ------------------------------------------------------------------


def use_unique_ids(conn: psycopg.Connection[Any]) -> int:
    """Make new faculty ids start at a random large number.

    Every test database is cloned from one template, so ids would otherwise
    start at 1 everywhere, and tests running at the same time on a shared
    broker would publish on one another's topics.
    """
    start = random.randrange(10**6, 10**12)
    conn.execute(
        sql.SQL("ALTER TABLE faculty ALTER COLUMN id RESTART WITH {}").format(sql.Literal(start))
    )
    return start


def desk_rows(
    conn: psycopg.Connection[Any], ids: Iterable[int]
) -> dict[int, tuple[str, int | None]]:
    """``id -> (status, desk_version)`` for the given faculty."""
    rows = conn.execute(
        "SELECT id, status, desk_version FROM faculty WHERE id = ANY(%s)", (list(ids),)
    ).fetchall()
    return {int(r[0]): (str(r[1]), r[2]) for r in rows}


def applied_versions(conn: psycopg.Connection[Any], faculty_id: int) -> set[int]:
    """Desk versions that produced an audit row (every applied change does)."""
    rows = conn.execute(
        "SELECT desk_version FROM status_change WHERE faculty_id = %s AND source = 'desk' "
        "AND desk_version IS NOT NULL",
        (faculty_id,),
    ).fetchall()
    return {int(r[0]) for r in rows}


def rejection_count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM ingest_rejection").fetchone()
    assert row is not None
    return int(row[0])


# -- streams of desk messages --------------------------------------------------------


def status_topic(faculty_id: int) -> str:
    return f"consultease/faculty/{faculty_id}/status"


def versioned_status(version: int) -> Status:
    """The status a test desk reports at ``version``: changes at every step."""
    return STATUSES[version % len(STATUSES)]


def ordered_stream(
    faculty_ids: Sequence[int], versions: int, *, seed: int = 0
) -> list[tuple[str, bytes]]:
    """Every faculty's versions 1..``versions`` in order per faculty, randomly interleaved.

    Each version changes the status, so every applied message leaves a
    ``status_change`` row carrying its version: a lost message is a gap.
    """
    rnd = random.Random(seed)
    pending = {fid: 1 for fid in faculty_ids}
    stream: list[tuple[str, bytes]] = []
    while pending:
        fid = rnd.choice(list(pending))
        version = pending[fid]
        stream.append((status_topic(fid), status_json(versioned_status(version), version=version)))
        if version == versions:
            del pending[fid]
        else:
            pending[fid] = version + 1
    return stream


def status_json(
    status: Status | str, *, version: int | None = None, ts_ms: int | None = None
) -> bytes:
    parts = [f'"status":"{status}"']
    if version is not None:
        parts.append(f'"version":{version}')
    if ts_ms is not None:
        parts.append(f'"ts":{ts_ms}')
    return ("{" + ",".join(parts) + "}").encode()


# -- MQTT ---------------------------------------------------------------------------


def endpoint_of(url: str) -> MqttEndpoint:
    return MqttEndpoint.parse(url)


class Publisher:
    """A plain paho publisher (MQTT 3.1.1, which every broker speaks)."""

    def __init__(self, mqtt_url: str, *, client_id: str | None = None, inflight: int = 100) -> None:
        endpoint = endpoint_of(mqtt_url)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or unique_client_id("test-pub"),
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        self.client.max_inflight_messages_set(inflight)
        self._connected = threading.Event()
        self.client.on_connect = lambda *args: self._connected.set()
        self.client.connect(endpoint.host, endpoint.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(10):
            self.close()
            raise AssertionError(f"publisher could not connect to {mqtt_url}")

    def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False
    ) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def publish_all(
        self,
        messages: Iterable[tuple[str, bytes]],
        *,
        qos: int = 1,
        rate: float | None = None,
        stop: threading.Event | None = None,
        timeout: float = 60,
    ) -> int:
        """Publish in order (at most ``rate`` per second) and wait for the broker's acks."""
        infos = []
        started = time.monotonic()
        for count, (topic, payload) in enumerate(messages):
            if stop is not None and stop.is_set():
                break
            if rate is not None:
                ahead = started + count / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
            infos.append(self.client.publish(topic, payload, qos=qos))
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            if not info.is_published() and qos > 0:
                raise AssertionError("the broker did not acknowledge every publish")
        return len(infos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def mqtt5_supported(mqtt_url: str, timeout: float = 5) -> bool:
    """Whether the broker accepts an MQTT 5 connection (amqtt does not)."""
    endpoint = endpoint_of(mqtt_url)
    answered = threading.Event()
    accepted: list[bool] = []

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        accepted.append(not reason.is_failure)
        answered.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=unique_client_id("test-probe"),
        protocol=mqtt.MQTTv5,
        reconnect_on_failure=False,
    )
    client.on_connect = on_connect
    try:
        client.connect(endpoint.host, endpoint.port)
        client.loop_start()
        answered.wait(timeout)
        client.disconnect()
    except OSError:
        return False
    finally:
        client.loop_stop()
    return bool(accepted and accepted[0])


def protocol_for(mqtt_url: str) -> MqttProtocol:
    return MqttProtocol.V5 if mqtt5_supported(mqtt_url) else MqttProtocol.V311


def _session_client(
    client_id: str, protocol: MqttProtocol, *, keep_session: bool
) -> tuple[mqtt.Client, dict[str, Any]]:
    """A client under ``client_id`` and its connect arguments: resuming the broker's
    session (``keep_session``) or starting clean and leaving nothing behind."""
    if protocol is MqttProtocol.V5:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 60 if keep_session else 0
        return client, {"clean_start": not keep_session, "properties": props}
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv311,
        clean_session=not keep_session,
    )
    return client, {}


def forget_session(mqtt_url: str, client_id: str, protocol: MqttProtocol) -> None:
    """Delete the broker's persistent session of ``client_id`` (connect clean, leave)."""
    endpoint = endpoint_of(mqtt_url)
    done = threading.Event()
    client, connect_kwargs = _session_client(client_id, protocol, keep_session=False)
    client.on_connect = lambda *args: done.set()
    try:
        client.connect(endpoint.host, endpoint.port, **connect_kwargs)
        client.loop_start()
        done.wait(5)
        client.disconnect()
    except OSError:
        return
    finally:
        client.loop_stop()


def clear_retained(mqtt_url: str, topics: Iterable[str]) -> None:
    """Remove retained messages (an empty retained publish clears one)."""
    with Publisher(mqtt_url) as publisher:
        infos = [publisher.publish(t, b"", retain=True) for t in topics]
        for info in infos:
            info.wait_for_publish(5)


def redelivered_to(
    mqtt_url: str, client_id: str, *, protocol: MqttProtocol, wait: float = 1.5
) -> list[tuple[str, bytes]]:
    """Messages a broker still holds for ``client_id``'s session (unacked or queued).

    Connects with that client id without cleaning the session, collects what
    arrives within ``wait`` seconds, acks it, and leaves.
    """
    endpoint = endpoint_of(mqtt_url)
    got: list[tuple[str, bytes]] = []
    connected = threading.Event()
    client, connect_kwargs = _session_client(client_id, protocol, keep_session=True)
    client.on_connect = lambda *args: connected.set()
    client.on_message = lambda c, u, m: got.append((m.topic, bytes(m.payload)))
    client.connect(endpoint.host, endpoint.port, **connect_kwargs)
    client.loop_start()
    try:
        assert connected.wait(5), "could not connect to look at the session"
        time.sleep(wait)
    finally:
        client.disconnect()
        client.loop_stop()
    return got


@contextmanager
def private_broker(data_dir: Path, *, persistence: bool = True) -> Iterator[MosquittoInstance]:
    """A mosquitto of the test's own (deep queues, unlimited in-flight)."""
    if not MosquittoInstance.available():
        pytest.skip("mosquitto is not installed")
    with MosquittoInstance(data_dir, persistence=persistence) as broker:
        yield broker


# -- the service ----------------------------------------------------------------------


@contextmanager
def running_service(
    settings: Settings, *, ready_timeout: float = 15, **options: Any
) -> Iterator[IngestService]:
    """An ``IngestService`` in this process, connected and subscribed; stopped on exit."""
    options.setdefault("session_expiry", 120)
    service = IngestService(settings, **options)
    service.start()
    try:
        if not service.wait_ready(ready_timeout):
            raise AssertionError("the ingest service did not subscribe in time")
        yield service
    finally:
        service.stop(timeout=10)
    assert not service.failed, "the ingest service failed"


def wait_processed(service: IngestService, count: int, *, timeout: float) -> None:
    """Until ``service`` has committed ``count`` messages, whatever their verdict."""
    wait_until(
        lambda: service.stats.processed >= count,
        timeout=timeout,
        message=lambda: f"{count} processed messages, have {service.stats}",
    )


class IngestProcess:
    """``python -m consultease ingest …`` as a child process, its log collected."""

    READY = "ingest ready"

    def __init__(
        self,
        *,
        database_url: str,
        mqtt_url: str,
        client_id: str,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.command = [
            sys.executable,
            "-m",
            "consultease",
            "ingest",
            "--database-url",
            database_url,
            "--mqtt-url",
            mqtt_url,
            "--client-id",
            client_id,
            *args,
        ]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULTEASE_")} | dict(
            env or {}
        )
        self._process: subprocess.Popen[str] | None = None
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    def start(self) -> Self:
        self._process = subprocess.Popen(
            self.command,
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for line in self._process.stderr:
            with self._lock:
                self._lines.append(line)
            if self.READY in line:
                self._ready.set()

    @property
    def output(self) -> str:
        with self._lock:
            return "".join(self._lines)

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def wait_ready(self, timeout: float = 20) -> Self:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"ingest process not ready:\n{self.output}")
        return self

    @property
    def returncode(self) -> int | None:
        assert self._process is not None
        return self._process.poll()

    def kill(self) -> None:
        """``kill -9``: no chance to commit, ack or say goodbye."""
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(10)
        self._finish()

    def terminate(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        assert self._process is not None
        code = self._process.wait(timeout)
        self._finish()
        return code

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)
        self._finish()

    def _finish(self) -> None:
        """Collect the rest of the log and close the pipe (the process has ended)."""
        if self._reader is not None:
            self._reader.join(5)
        if self._process is not None and self._process.stderr is not None:
            self._process.stderr.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
