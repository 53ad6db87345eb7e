"""The state publisher off the ingest service (SPEC 3.4): its own process, its own
connection, republished after a broker restart, and never an orphan.

Every test runs its own mosquitto, so the retained state seen is only ours.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from consultease.ingest.state_publisher import state_topic
from consultease.tools.servers import MosquittoInstance
from tests.support.factories import add_faculty
from tests.support.ingest import (
    REPO_ROOT,
    IngestProcess,
    endpoint_of,
    private_broker,
    running_service,
    settings_for,
    unique_client_id,
    wait_until,
)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoInstance]:
    with private_broker(tmp_path / "mosquitto", persistence=False) as instance:
        yield instance


class StateWatcher:
    """Subscribes to one faculty's state topic and keeps the newest payload."""

    def __init__(self, mqtt_url: str, faculty_id: int) -> None:
        self.topic = state_topic(faculty_id)
        self._lock = threading.Lock()
        self.payloads: list[bytes] = []
        endpoint = endpoint_of(mqtt_url)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=unique_client_id("test-watch")
        )
        self.client.on_connect = lambda c, *a: c.subscribe(self.topic, qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect(endpoint.host, endpoint.port, keepalive=10)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.payloads.append(bytes(msg.payload))

    def state(self) -> dict[str, Any] | None:
        with self._lock:
            payload = self.payloads[-1] if self.payloads else b""
        return json.loads(payload) if payload else None

    def forget(self) -> None:
        with self._lock:
            self.payloads.clear()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def processes_with(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if text in cmdline and state != "Z":
            found.append(int(proc.name))
    return found


def children_of(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.append(int(proc.name))
    return found


def test_the_ingest_publishes_state_from_a_child_process_on_its_own_connection(
    broker: MosquittoInstance, db: psycopg.Connection[Any], database_url: str
) -> None:
    faculty_id = add_faculty(db, status="away")
    client_id = unique_client_id()
    watcher = StateWatcher(broker.url, faculty_id)
    try:
        with IngestProcess(
            database_url=database_url, mqtt_url=broker.url, client_id=client_id
        ) as ingest:
            ingest.wait_ready()
            wait_until(watcher.state, timeout=20, message="the first state")
            db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (faculty_id,))
            wait_until(
                lambda: (watcher.state() or {}).get("status") == "busy",
                timeout=10,
                message="the admin's change on the state topic",
            )
            [child] = [
                pid for pid in children_of(ingest.pid) if pid in processes_with("state-publisher")
            ]
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().decode()
            assert broker.url not in cmdline and database_url not in cmdline, (
                "the URLs (and their passwords) stay off the command line"
            )
    finally:
        watcher.close()
    log = (broker.data_dir / "mosquitto.log").read_text()
    # mosquitto logs "New client connected from HOST:PORT as CLIENT_ID (p2, c1, k30, …)".
    assert f" as {client_id} (" in log, "the ingest service's own connection"
    assert f" as {client_id}-state (" in log, "the state publisher's, a second one"


@pytest.mark.slow
def test_sigterm_stops_the_ingest_and_its_state_publisher(
    broker: MosquittoInstance, database_url: str
) -> None:
    client_id = unique_client_id()
    with IngestProcess(
        database_url=database_url, mqtt_url=broker.url, client_id=client_id
    ) as ingest:
        ingest.wait_ready()
        wait_until(
            lambda: processes_with(f"{client_id}-state"), timeout=20, message="the state child"
        )
        ingest.terminate()
        assert ingest.wait(20) == 0, ingest.output
    wait_until(
        lambda: not processes_with(client_id), timeout=10, message="no process of this service"
    )
    assert "state publisher stopped" in ingest.output


@pytest.mark.slow
def test_ctrl_c_in_a_terminal_stops_both_processes_cleanly(
    broker: MosquittoInstance, database_url: str
) -> None:
    client_id = unique_client_id()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULTEASE_")}
    env |= {"CONSULTEASE_DATABASE_URL": database_url, "CONSULTEASE_MQTT_URL": broker.url}
    ingest = subprocess.Popen(
        [sys.executable, "-m", "consultease", "ingest", "--client-id", client_id],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell job is
    )
    try:
        wait_until(
            lambda: processes_with(f"{client_id}-state"), timeout=30, message="the state child"
        )
        os.killpg(ingest.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        assert ingest.wait(20) == 0
        assert ingest.stderr is not None
        output = ingest.stderr.read()
    finally:
        if ingest.poll() is None:
            os.killpg(ingest.pid, signal.SIGKILL)
            ingest.wait()
        if ingest.stderr is not None:
            ingest.stderr.close()
    wait_until(lambda: not processes_with(client_id), timeout=10, message="no orphan")
    assert "restarting" not in output, "the child was not mistaken for a crash"
    assert "Traceback" not in output


@pytest.mark.slow
def test_a_killed_ingest_leaves_no_state_publisher_behind(
    broker: MosquittoInstance, database_url: str
) -> None:
    client_id = unique_client_id()
    with IngestProcess(
        database_url=database_url, mqtt_url=broker.url, client_id=client_id
    ) as ingest:
        ingest.wait_ready()
        wait_until(
            lambda: processes_with(f"{client_id}-state"), timeout=20, message="the state child"
        )
        ingest.kill()  # kill -9: no chance to stop its child
    wait_until(
        lambda: not processes_with(client_id),
        timeout=15,
        message="the state child to notice its parent is gone",
    )


@pytest.mark.slow
def test_a_state_publisher_that_dies_is_restarted(
    broker: MosquittoInstance, db: psycopg.Connection[Any], database_url: str
) -> None:
    faculty_id = add_faculty(db)
    settings = settings_for(database_url, broker.url)
    watcher = StateWatcher(broker.url, faculty_id)
    try:
        with running_service(settings) as service:
            wait_until(watcher.state, timeout=20, message="the first child's state")
            [child] = processes_with(f"{settings.mqtt_client_id}-state")
            os.kill(child, signal.SIGKILL)
            wait_until(
                lambda: processes_with(f"{settings.mqtt_client_id}-state") not in ([], [child]),
                timeout=20,
                message="a new state child",
            )
            db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (faculty_id,))
            wait_until(
                lambda: (watcher.state() or {}).get("status") == "busy",
                timeout=20,
                message="the change published by the new child",
            )
            wait_until(
                lambda: service.stats.state_published >= 2,
                timeout=10,
                message="the new child's report of what it published",
            )
    finally:
        watcher.close()


@pytest.mark.slow
def test_every_state_is_republished_after_the_broker_restarts_empty(
    broker: MosquittoInstance, db: psycopg.Connection[Any], database_url: str
) -> None:
    faculty_id = add_faculty(db, status="busy", desk_online=True)
    watcher = StateWatcher(broker.url, faculty_id)
    try:
        with running_service(settings_for(database_url, broker.url), state_mode="thread"):
            wait_until(watcher.state, timeout=20, message="the first state")
            watcher.forget()
            broker.stop()  # no persistence: the retained state is gone with it
            broker.start()
            # Nothing changed in the database: only the reconnect can bring it back.
            wait_until(
                lambda: (watcher.state() or {}).get("status") == "busy",
                timeout=30,
                message="the state republished after the broker came back",
            )
    finally:
        watcher.close()
