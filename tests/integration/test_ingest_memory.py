"""Memory is bounded by bytes, not by a message count (issue 13, item 4).

1,000 messages of 1 MB each reach a real ``consultease ingest`` process while the
database is stalled (a transaction holds ``ingest_rejection`` and the faculty
rows locked). The broker is a private mosquitto without the shipped
``max_packet_size`` (which would refuse such packets before they cost anything),
so that the service's own bound is what is tested. The bound, documented in the
README: peak RSS at most the idle RSS plus ``--queue-bytes`` (16 MiB) plus
``SLACK``; before the fix the same run took the service from 62 MB to 1.09 GB.
Once the database answers again, every valid update between the big ones is
applied and every big one is kept, cut to 4096 bytes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg

from consultease.domain import MAX_PAYLOAD_BYTES
from consultease.ingest.buffer import DEFAULT_QUEUE_BYTES
from tests.support.factories import add_faculty, faculty_row
from tests.support.ingest import (
    IngestProcess,
    Publisher,
    private_broker,
    status_json,
    unique_client_id,
    wait_until,
)

BIG = 1024 * 1024
BIG_MESSAGES = 1000
VALID_EVERY = 20
SLACK = 32 * 1024 * 1024
"""Beyond the queue: paho's read buffer and the one message being parsed (a few
MB), and the allocator keeping freed pages."""


def _rss(pid: int, field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def test_a_flood_of_big_messages_with_the_database_stalled_keeps_memory_bounded(
    tmp_path: Path, database_url: str, db: psycopg.Connection[Any]
) -> None:
    valid = BIG_MESSAGES // VALID_EVERY
    faculty = [add_faculty(db, name=f"Dr. Memory {n}") for n in range(valid)]
    messages: list[tuple[str, bytes]] = []
    for n in range(BIG_MESSAGES):
        target = faculty[n // VALID_EVERY]
        messages.append((f"consultease/faculty/{target}/status", bytes([65 + n % 26]) * BIG))
        if n % VALID_EVERY == VALID_EVERY - 1:
            payload = status_json("busy", version=n + 1)
            messages.append((f"consultease/faculty/{target}/status", payload))
    with (
        private_broker(tmp_path / "broker", persistence=False) as broker,
        IngestProcess(
            database_url=database_url,
            mqtt_url=broker.url,
            client_id=unique_client_id("memory"),
            args=["--state", "off"],
        ) as ingest,
    ):
        ingest.wait_ready()
        time.sleep(1.0)
        idle = _rss(ingest.pid, "VmRSS")
        with psycopg.connect(database_url) as stall:
            stall.execute("LOCK TABLE ingest_rejection IN ACCESS EXCLUSIVE MODE")
            stall.execute("SELECT id FROM faculty ORDER BY id FOR UPDATE")
            with Publisher(broker.url, inflight=20) as publisher:
                publisher.publish_all(messages, timeout=300)
            time.sleep(3.0)  # let the service read what the broker holds for it
            peak_stalled = _rss(ingest.pid, "VmHWM")
            stall.rollback()
        wait_until(
            lambda: (
                db.execute("SELECT count(*) FROM ingest_rejection").fetchone() == (BIG_MESSAGES,)
            ),
            timeout=120,
            message="every big message to be kept as a rejection",
        )
        wait_until(
            lambda: all(faculty_row(db, f)["status"] == "busy" for f in faculty),
            timeout=60,
            message="every valid update to apply",
        )
        peak = _rss(ingest.pid, "VmHWM")
        assert ingest.returncode is None, ingest.output
    bound = idle + DEFAULT_QUEUE_BYTES + SLACK
    print(f"ingest RSS idle {idle / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB")
    assert peak_stalled <= bound, (idle, peak_stalled)
    assert peak <= bound, (idle, peak)
    kept = db.execute(
        "SELECT min(octet_length(payload)), max(octet_length(payload)), array_agg(DISTINCT reason)"
        " FROM ingest_rejection"
    ).fetchone()
    assert kept == (MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES, ["oversized"])
    versions = {faculty_row(db, f)["desk_version"] for f in faculty}
    assert versions == {VALID_EVERY * (i + 1) for i in range(valid)}
