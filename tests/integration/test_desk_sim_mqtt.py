"""The simulator against the suite's real broker (``mqtt_settings``: the one of
--mqtt-host/--mqtt-port, or a private one when that does not answer).

Each test uses faculty ids from a high random range, so parallel runs never share
topics, and clears the retained messages it leaves behind.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pytest_mqtt.model import MqttSettings

from desk_firmware_sim import (
    FaultConfig,
    FlashStore,
    Fleet,
    JsonlRecorder,
    Mode,
    SimConfig,
    SimulatedDesk,
    split_version,
    unit_rng,
)

# Set for every test to the suite's broker by _suite_broker (below).
HOST, PORT = "127.0.0.1", 1883
URL = f"mqtt://{HOST}:{PORT}"
REPO_ROOT = Path(__file__).resolve().parents[2]
CURRENT_FIELDS = {"status", "version", "ts", "desk_id"}
LEGACY_FIELDS = {
    "faculty_id",
    "faculty_name",
    "present",
    "status",
    "timestamp",
    "ntp_sync_status",
    "in_grace_period",
    "detailed_status",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float

    @property
    def faculty_id(self) -> int:
        return int(self.topic.split("/")[2])

    @property
    def leaf(self) -> str:
        return self.topic.rsplit("/", 1)[1]

    def json(self) -> Any:
        return json.loads(self.payload)


class Subscriber:
    """A plain paho client that records everything published for some faculty ids."""

    def __init__(self, ids: list[int], leaves: tuple[str, ...] = ("#",)) -> None:
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect(HOST, PORT)
        self.client.subscribe(
            [(f"consultease/faculty/{i}/{leaf}", 1) for i in ids for leaf in leaves]
        )
        self.client.loop_start()
        assert self._subscribed.wait(5), "no SUBACK from the broker"

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(
                Received(
                    topic=msg.topic,
                    payload=bytes(msg.payload),
                    retain=bool(msg.retain),
                    at=time.time(),
                )
            )
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.messages):
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def of(self, faculty_id: int, leaf: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.faculty_id == faculty_id and m.leaf == leaf]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(faculty_id: int, leaf: str) -> Received | None:
    """What a new subscriber gets on one topic right now."""
    sub = Subscriber([faculty_id], (leaf,))
    try:
        sub.wait_for(bool, timeout=1.0)
        return sub.messages[0] if sub.messages else None
    finally:
        sub.close()


@pytest.fixture(autouse=True)
def _suite_broker(mqtt_settings: MqttSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    module = sys.modules[__name__]
    monkeypatch.setattr(module, "HOST", mqtt_settings.host)
    monkeypatch.setattr(module, "PORT", mqtt_settings.port)
    monkeypatch.setattr(module, "URL", f"mqtt://{mqtt_settings.host}:{mqtt_settings.port}")


@pytest.fixture
def faculty_ids() -> Iterator[list[int]]:
    base = random.randrange(1_000_000_000, 9_000_000_000)
    ids = [base, base + 1]
    yield ids
    cleaner = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-clean-{uuid.uuid4().hex}")
    cleaner.connect(HOST, PORT)
    cleaner.loop_start()
    infos = [
        cleaner.publish(f"consultease/faculty/{i}/{leaf}", b"", qos=1, retain=True)
        for i in ids
        for leaf in ("availability", "state", "status")
    ]
    for info in infos:
        info.wait_for_publish(5)
    cleaner.disconnect()
    cleaner.loop_stop()


def make_config(ids: list[int], tmp_path: Path, **changes: Any) -> SimConfig:
    fields: dict[str, Any] = {
        "faculty_ids": tuple(ids),
        "mqtt_url": URL,
        "mode": Mode.LOAD,
        "rate": 600.0,  # 10 changes a second per unit
        "heartbeat_interval": 0.3,
        "seed": 1,
        "state_dir": tmp_path / "flash",
    }
    fields.update(changes)
    return SimConfig(**fields)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def first_change_after(config: SimConfig, seed: int) -> float:
    """Seconds until the unit of ``config`` would first change status with this seed."""
    fid = config.faculty_ids[0]
    desk = SimulatedDesk(
        spec=config.unit_spec(fid),
        faults=config.faults,
        rng=unit_rng(seed, fid),
        boot_count=1,
        now=0.0,
    )
    return desk.next_deadline()


def sim_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("desk-sim")]


def test_fleet_publishes_online_status_and_heartbeats(
    faculty_ids: list[int], tmp_path: Path
) -> None:
    sub = Subscriber(faculty_ids)
    log_path = tmp_path / "sent.jsonl"
    recorder = JsonlRecorder(log_path)
    fleet = Fleet(make_config(faculty_ids, tmp_path), on_record=recorder)
    try:
        fleet.start()
        assert fleet.wait_connected(10)
        assert sub.wait_for(
            lambda ms: all(
                sum(m.faculty_id == i and m.leaf == "status" for m in ms) >= 8
                and sum(m.faculty_id == i and m.leaf == "heartbeat" for m in ms) >= 2
                for i in faculty_ids
            )
        )
        late = retained(faculty_ids[0], "availability")
        assert late is not None and (late.payload, late.retain) == (b"online", True)
        assert fleet.connected() == dict.fromkeys(faculty_ids, True)
    finally:
        fleet.stop()
        recorder.close()
    assert sim_threads() == []
    assert sub.wait_for(
        lambda ms: all(
            any(m.faculty_id == i and m.payload == b"offline" for m in ms) for i in faculty_ids
        )
    )
    sub.close()

    for fid in faculty_ids:
        availability = [m.payload for m in sub.of(fid, "availability")]
        assert availability == [b"online", b"offline"]
        statuses = [m.json() for m in sub.of(fid, "status")]
        assert all(set(s) == CURRENT_FIELDS for s in statuses)
        assert all(s["status"] in {"available", "away", "busy"} for s in statuses)
        assert all(s["desk_id"] == f"desk-sim-{fid}" for s in statuses)
        versions = [s["version"] for s in statuses]
        assert versions == sorted(set(versions))
        assert all(abs(s["ts"] / 1000 - time.time()) < 60 for s in statuses)
        heartbeats = [m.json() for m in sub.of(fid, "heartbeat")]
        assert all(set(h) == {"uptime_ms", "rssi", "free_heap", "desk_id"} for h in heartbeats)
        uptimes = [h["uptime_ms"] for h in heartbeats]
        assert uptimes == sorted(uptimes)
        # The ground truth is the newest status the subscriber saw.
        assert fleet.truth()[fid] == statuses[-1]["status"]
        # A clean stop leaves `offline` retained.
        after = retained(fid, "availability")
        assert after is not None and (after.payload, after.retain) == (b"offline", True)

    # The JSON log holds exactly what went over the wire, in order.
    lines = read_jsonl(log_path)
    messages = [line for line in lines if line["type"] == "message"]
    for fid in faculty_ids:
        for leaf in ("status", "heartbeat", "availability"):
            logged = [
                m["payload"]
                for m in messages
                if m["faculty_id"] == fid and m["topic"].endswith(leaf)
            ]
            got = [
                m.json() if leaf != "availability" else m.payload.decode()
                for m in sub.of(fid, leaf)
            ]
            assert logged == got, leaf
    status_lines = [m for m in messages if m["kind"] == "status"]
    assert all(m["version"] == m["payload"]["version"] for m in status_lines)
    assert all(m["status"] == m["payload"]["status"] for m in status_lines)
    assert all(isinstance(m["t"], float) and abs(m["t"] - time.time()) < 60 for m in messages)
    events = [(line["faculty_id"], line["event"]) for line in lines if line["type"] == "event"]
    assert sorted(events) == sorted(
        [(fid, "connected") for fid in faculty_ids] + [(fid, "stopped") for fid in faculty_ids]
    )


def test_legacy_units_send_the_firmware_payload(faculty_ids: list[int], tmp_path: Path) -> None:
    sub = Subscriber(faculty_ids, ("status",))
    config = make_config(
        faculty_ids, tmp_path, legacy=True, faculty_names={faculty_ids[0]: "Dr. X"}
    )
    with Fleet(config):
        assert sub.wait_for(lambda ms: len(ms) >= 6)
    sub.close()
    first = [m.json() for m in sub.of(faculty_ids[0], "status")]
    assert all(set(p) == LEGACY_FIELDS for p in first)
    assert all(p["faculty_id"] == faculty_ids[0] and p["faculty_name"] == "Dr. X" for p in first)
    assert all(p["status"] in {"AVAILABLE", "AWAY", "BUSY"} for p in first)
    assert all(p["present"] is (p["status"] != "AWAY") for p in first)
    assert [p["timestamp"] for p in first] == sorted(p["timestamp"] for p in first)


def test_run_stops_on_the_event_and_returns_totals(faculty_ids: list[int], tmp_path: Path) -> None:
    stop = threading.Event()
    fleet = Fleet(make_config(faculty_ids, tmp_path, duration=30.0))
    timer = threading.Timer(1.0, stop.set)
    timer.start()
    started = time.monotonic()
    stats = fleet.run(stop)
    timer.join()
    assert time.monotonic() - started < 10  # the event, not the 30 s duration, ended it
    assert stats.units == 2 and stats.connected == 0
    assert stats.status_sent >= 2 * 5
    assert stats.status_per_second > 0
    assert not fleet.running and sim_threads() == []
    assert set(fleet.truth()) == set(faculty_ids)
    assert all(status is not None for status in fleet.truth().values())
    fleet.stop()  # idempotent


@pytest.mark.slow
def test_a_dropped_connection_fires_the_will_then_reconnects(
    faculty_ids: list[int], tmp_path: Path
) -> None:
    fid = faculty_ids[0]
    sub = Subscriber([fid])
    log_path = tmp_path / "sent.jsonl"
    faults = FaultConfig(drop_rate=0.25, reconnect_delay_min=0.5, reconnect_delay_max=0.6)
    config = make_config([fid], tmp_path, faults=faults, heartbeat_interval=0)
    with JsonlRecorder(log_path) as recorder:
        fleet = Fleet(config, on_record=recorder)
        fleet.start()
        try:
            assert sub.wait_for(
                lambda ms: (
                    [m.payload for m in ms if m.leaf == "availability"].count(b"online") >= 3
                ),
                timeout=15,
            )
        finally:
            fleet.stop()
    assert sub.wait_for(lambda ms: ms[-1].payload == b"offline")
    sub.close()
    drops = fleet.stats.drops
    assert drops >= 2
    availability = [m.payload for m in sub.of(fid, "availability")]
    # online, then for each drop the broker's will `offline` and a fresh `online`, then
    # the clean stop's own `offline`.
    assert availability == [b"online", *[b"offline", b"online"] * drops, b"offline"]
    events = [line for line in read_jsonl(log_path) if line["type"] == "event"]
    assert [e["event"] for e in events] == [
        "connected",
        *["dropped", "reconnected"] * drops,
        "stopped",
    ]
    # Every status message after a reconnect has a higher version than before it.
    versions = [m.json()["version"] for m in sub.of(fid, "status")]
    assert versions == sorted(set(versions))


def test_reboots_persist_the_boot_counter_across_runs(
    faculty_ids: list[int], tmp_path: Path
) -> None:
    fid = faculty_ids[0]
    sub = Subscriber([fid], ("status",))
    faults = FaultConfig(reboot_rate=0.3, reconnect_delay_min=0.2, reconnect_delay_max=0.3)
    config = make_config([fid], tmp_path, faults=faults, heartbeat_interval=0)
    with Fleet(config) as fleet:
        assert sub.wait_for(
            lambda ms: len({split_version(m.json()["version"])[0] for m in ms}) >= 3
        )
    first_run = [m.json()["version"] for m in sub.of(fid, "status")]
    reboots = fleet.stats.reboots
    assert reboots >= 2
    boots = FlashStore(tmp_path / "flash").load(fid)
    assert boots == 1 + reboots
    assert split_version(first_run[-1])[0] == boots

    with Fleet(make_config([fid], tmp_path, heartbeat_interval=0)):
        assert sub.wait_for(lambda ms: len(ms) > len(first_run) + 2)
    sub.close()
    versions = [m.json()["version"] for m in sub.of(fid, "status")]
    assert versions == sorted(set(versions))  # strictly increasing over the unit's life
    second_run = versions[len(first_run) :]
    assert split_version(second_run[0]) == (boots + 1, 1)


@pytest.mark.slow
def test_duplicates_and_reordering_reach_the_broker(faculty_ids: list[int], tmp_path: Path) -> None:
    fid = faculty_ids[0]
    sub = Subscriber([fid], ("status",))
    faults = FaultConfig(duplicate_rate=0.3, reorder_window=2, reorder_rate=0.3)
    records: list[Any] = []
    config = make_config([fid], tmp_path, faults=faults, rate=1200.0, heartbeat_interval=0)
    with Fleet(config, on_record=records.append):
        assert sub.wait_for(lambda ms: len(ms) >= 60, timeout=15)
    sub.close()
    versions = [m.json()["version"] for m in sub.of(fid, "status")]
    assert any(a == b for a, b in itertools.pairwise(versions))  # duplicates
    assert any(b < a for a, b in itertools.pairwise(versions))  # late ones
    sent = [r for r in records if getattr(r, "version", None) is not None]
    assert [r.version for r in sent][: len(versions)] == versions[: len(sent)]
    assert {r.copy.value for r in sent} == {"original", "duplicate", "delayed"}


def test_a_mismatch_with_the_system_is_logged_and_counted(
    faculty_ids: list[int], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fid = faculty_ids[0]
    # Realistic mode, slow, and a seed whose first change is minutes away: the unit keeps
    # its status while the "system" disagrees with it.
    config = make_config(
        [fid], tmp_path, mode=Mode.REALISTIC, rate=0.1, mismatch_after=0.5, heartbeat_interval=0
    )
    seed = next(s for s in range(1000) if first_change_after(config, s) > 120)
    config = replace(config, seed=seed)
    system = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-sys-{uuid.uuid4().hex}")
    system.connect(HOST, PORT)
    system.loop_start()

    def show(status: str, online: bool = True) -> None:
        payload = {"status": status, "desk_online": online, "version": 1, "updated_at": "now"}
        system.publish(
            f"consultease/faculty/{fid}/state", json.dumps(payload), qos=1, retain=True
        ).wait_for_publish(5)

    def mismatched(fleet: Fleet) -> bool:
        return fleet.snapshot().units[0].mismatched

    caplog.set_level(logging.INFO, logger="desk_firmware_sim")
    try:
        with Fleet(config) as fleet:
            assert fleet.wait_connected(10)
            truth = fleet.truth()[fid]
            assert truth is not None
            wrong = "away" if truth != "away" else "busy"
            show(truth)
            time.sleep(1.0)
            assert fleet.stats.mismatches == 0
            show(wrong)
            end = time.monotonic() + 5
            while not mismatched(fleet) and time.monotonic() < end:
                time.sleep(0.05)
            assert mismatched(fleet)
            assert fleet.stats.mismatches == 1
            show(truth)
            end = time.monotonic() + 5
            while mismatched(fleet) and time.monotonic() < end:
                time.sleep(0.05)
            assert not mismatched(fleet)
            assert fleet.truth()[fid] == truth  # the unit itself did not change meanwhile
    finally:
        system.disconnect()
        system.loop_stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"system shows {wrong} but the unit sent {truth}" in w for w in warnings)


def test_cli_runs_until_sigterm_and_stops_cleanly(faculty_ids: list[int], tmp_path: Path) -> None:
    fid = faculty_ids[0]
    sub = Subscriber([fid])
    log_path = tmp_path / "cli.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "desk_firmware_sim",
            "--faculty-ids",
            str(fid),
            "--load",
            "--rate",
            "600",
            "--heartbeat-interval",
            "0.5",
            "--seed",
            "3",
            "--state-dir",
            str(tmp_path / "flash"),
            "--json",
            str(log_path),
            "--no-live",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "CONSULTEASE_MQTT_URL": URL},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert sub.wait_for(lambda ms: sum(m.leaf == "status" for m in ms) >= 5, timeout=15)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "desk simulator summary" in out
    assert sub.wait_for(lambda ms: ms[-1].payload == b"offline")
    sub.close()
    after = retained(fid, "availability")
    assert after is not None and after.payload == b"offline"
    logged = [
        line["payload"]
        for line in read_jsonl(log_path)
        if line["type"] == "message" and line["kind"] == "status"
    ]
    assert logged == [m.json() for m in sub.of(fid, "status")]


def test_cli_reports_an_unreachable_broker_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "desk_firmware_sim",
            "--mqtt-url",
            f"mqtt://127.0.0.1:{port}",
            "--connect-timeout",
            "1",
            "--state-dir",
            str(tmp_path),
            "--quiet",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"desk_firmware_sim: error: cannot connect to mqtt://127.0.0.1:{port}: "
        "connection refused (gave up after 1s)"
    ]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[int]:
    """A Mosquitto of our own that only lets in desk-1001 and an observer."""
    binary = shutil.which("mosquitto") or shutil.which(
        "mosquitto", path="/usr/sbin:/usr/local/sbin"
    )
    passwd = shutil.which("mosquitto_passwd")
    if binary is None or passwd is None:
        pytest.skip("mosquitto and mosquitto_passwd are needed")
    password_file = tmp_path / "passwd"
    password_file.touch()
    for user, password in (("desk-1001", "right"), ("observer", "watch")):
        subprocess.run([passwd, "-b", str(password_file), user, password], check=True)
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    # As root, mosquitto would switch to its own user, who cannot read tmp_path.
    as_root = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous false\n"
        f"password_file {password_file}\n"
        "persistence false\n"
        "log_type error\n" + as_root
    )
    proc = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > end or proc.poll() is not None:
                    proc.kill()
                    _, err = proc.communicate()
                    pytest.fail(f"the private mosquitto did not start: {err.decode()}")
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_units_log_in_with_their_own_desk_account(private_broker: int, tmp_path: Path) -> None:
    port = private_broker
    seen: list[str] = []
    observer = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="observer")
    observer.username_pw_set("observer", "watch")
    observer.on_message = lambda c, u, m: seen.append(m.topic)
    observer.connect("127.0.0.1", port)
    observer.subscribe("consultease/#", qos=1)
    observer.loop_start()
    config = make_config(
        [1001, 1002],
        tmp_path,
        mqtt_url=f"mqtt://127.0.0.1:{port}",
        desk_passwords={1001: "right", 1002: "wrong"},
    )
    try:
        with Fleet(config) as fleet:
            assert fleet.wait_connected(10, count=1)
            end = time.monotonic() + 10
            while time.monotonic() < end and fleet.snapshot().units[1].last_error is None:
                time.sleep(0.05)
            good, bad = fleet.snapshot().units
            assert good.connected and good.status_sent > 0
            assert not bad.connected and bad.sent == 0
            assert bad.last_error is not None and "refused" in bad.last_error
    finally:
        observer.disconnect()
        observer.loop_stop()
    assert "consultease/faculty/1001/status" in seen
    assert not any("/1002/" in topic for topic in seen)
