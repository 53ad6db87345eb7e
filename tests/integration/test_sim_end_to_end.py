"""30 simulated desk units with every transport fault, through a real broker and
the ingest service: the database ends at the simulator's ground truth, and a
unit whose connection dropped shows offline until it reconnects."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from consultease.config import Settings
from consultease.ingest.service import IngestService
from consultease.tools.servers import MosquittoInstance
from desk_firmware_sim.config import MqttVersion, SimConfig
from desk_firmware_sim.faults import FaultConfig
from desk_firmware_sim.records import EventKind, EventRecord, Record
from desk_firmware_sim.runner import Fleet
from tests.support.factories import add_many_faculty

RUN_SECONDS = 20


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoInstance]:
    with MosquittoInstance(tmp_path / "broker") as instance:
        yield instance


class ConnectionLog:
    """When each unit last lost or regained its connection (monotonic seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.down_since: dict[int, float] = {}
        self.drops = 0

    def __call__(self, record: Record) -> None:  # the fleet's network thread
        if not isinstance(record, EventRecord):
            return
        with self._lock:
            if record.event in (EventKind.DROPPED, EventKind.CONNECTION_LOST):
                self.down_since.setdefault(record.faculty_id, time.monotonic())
                self.drops += record.event is EventKind.DROPPED
            elif record.event in (EventKind.CONNECTED, EventKind.RECONNECTED):
                self.down_since.pop(record.faculty_id, None)

    def down_longer_than(self, seconds: float) -> set[int]:
        now = time.monotonic()
        with self._lock:
            return {fid for fid, since in self.down_since.items() if now - since > seconds}


def online_by_id(conn: psycopg.Connection[Any]) -> dict[int, bool]:
    return {int(i): bool(o) for i, o in conn.execute("SELECT id, desk_online FROM faculty")}


def settle(service: IngestService, quiet: float = 1.5, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    last, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        processed = service.stats.processed
        if processed != last:
            last, last_change = processed, time.monotonic()
        elif service.queue_depth == 0 and time.monotonic() - last_change > quiet:
            return
        time.sleep(0.1)
    raise AssertionError("the ingest service did not settle")


@pytest.mark.slow
def test_thirty_faulty_units_end_at_ground_truth_and_dropped_ones_show_offline(
    database_url: str, db: psycopg.Connection[Any], broker: MosquittoInstance, tmp_path: Path
) -> None:
    ids = add_many_faculty(db, 30)
    service = IngestService(
        Settings(database_url=database_url, mqtt_url=broker.url, mqtt_client_id="e2e-ingest"),
        protocol="5",
    )
    service.start()
    try:
        assert service.wait_ready(15)
        log = ConnectionLog()
        fleet = Fleet(
            SimConfig(
                faculty_ids=tuple(ids),
                mqtt_url=broker.url,
                mqtt_version=MqttVersion.V5,
                rate=30,  # status changes per unit per minute
                seed=20261122,
                heartbeat_interval=5,
                state_dir=tmp_path / "flash",
                faults=FaultConfig(
                    duplicate_rate=0.2,
                    reorder_window=3,
                    reorder_rate=0.3,
                    reorder_max_hold=2,
                    reboot_rate=0.03,
                    drop_rate=0.03,
                    reconnect_delay_min=2.5,
                    reconnect_delay_max=4,
                ),
            ),
            on_record=log,
        )
        fleet.start()
        offline_checks = 0
        try:
            assert fleet.wait_connected(15)
            deadline = time.monotonic() + RUN_SECONDS
            while time.monotonic() < deadline:
                time.sleep(0.25)
                # Down for over a second (the will has long been delivered) and
                # still down after the read: the board must say offline.
                suspects = log.down_longer_than(1.0)
                shown = online_by_id(db)
                for fid in suspects & log.down_longer_than(1.0):
                    assert shown[fid] is False, f"desk {fid} dropped but is shown online"
                    offline_checks += 1
        finally:
            fleet.stop()
        truth = fleet.truth()  # after the stop: nothing is published past this point
        settle(service)
    finally:
        service.stop()

    assert log.drops > 0 and offline_checks > 0, "the run dropped no connection"
    rows = {
        int(i): (s, bool(o))
        for i, s, o in db.execute("SELECT id, status, desk_online FROM faculty")
    }
    for fid in ids:
        expected = truth[fid]
        assert expected is not None
        assert rows[fid][0] == expected.value, f"faculty {fid}: {rows[fid][0]} != {expected}"
    # A clean stop says goodbye: every desk is offline now.
    assert all(not online for _, online in rows.values())
    stats = service.stats
    assert stats.duplicate > 0 and stats.stale > 0
    unexpected = db.execute(
        "SELECT reason, count(*) FROM ingest_rejection WHERE reason <> 'stale' GROUP BY 1"
    ).fetchall()
    assert unexpected == []
