"""No loss through faults: a crashed service, a restarted database, a stop signal.

Each stream sends every faculty's versions in order (randomly interleaved
between faculty), and every version changes the status, so every applied
message leaves a ``status_change`` row with its version. "Nothing missing"
is then checkable in the database: each faculty's applied versions are
exactly 1..N, and its row ends at N.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from consultease.db.migrate import upgrade
from consultease.ingest.transport import MqttProtocol
from consultease.tools.servers import MosquittoInstance, PostgresInstance
from tests.support.factories import add_many_faculty
from tests.support.ingest import (
    IngestProcess,
    Publisher,
    applied_versions,
    desk_rows,
    ordered_stream,
    private_broker,
    redelivered_to,
    running_service,
    settings_for,
    unique_client_id,
    versioned_status,
    wait_processed,
    wait_until,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoInstance]:
    with private_broker(tmp_path / "mosquitto", persistence=True) as instance:
        yield instance


def changes(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM status_change").fetchone()
    assert row is not None
    return int(row[0])


def assert_nothing_missing(conn: psycopg.Connection[Any], ids: list[int], versions: int) -> None:
    assert desk_rows(conn, ids) == {
        fid: (versioned_status(versions).value, versions) for fid in ids
    }, "each faculty ends at its highest version"
    for fid in ids:
        missing = set(range(1, versions + 1)) - applied_versions(conn, fid)
        assert not missing, f"faculty {fid} never applied versions {sorted(missing)[:10]}"


def wait_complete(
    conn: psycopg.Connection[Any], ids: list[int], versions: int, timeout: float
) -> None:
    wait_until(
        lambda: all(v == versions for _, v in desk_rows(conn, ids).values()),
        timeout=timeout,
        message=lambda: f"every faculty at version {versions}: {desk_rows(conn, ids)}",
    )


class Streamer:
    """Publishes a stream at a steady rate from a background thread."""

    def __init__(self, mqtt_url: str, messages: list[tuple[str, bytes]], *, rate: float) -> None:
        self.published = 0
        self.error: BaseException | None = None
        self._publisher = Publisher(mqtt_url)
        self._thread = threading.Thread(target=self._run, args=(messages, rate), daemon=True)
        self._thread.start()

    def _run(self, messages: list[tuple[str, bytes]], rate: float) -> None:
        try:
            self.published = self._publisher.publish_all(messages, rate=rate, timeout=120)
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: float) -> int:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the publisher did not finish"
        self._publisher.close()
        assert self.error is None, self.error
        return self.published


def test_no_update_is_lost_when_the_service_is_killed_mid_stream(
    broker: MosquittoInstance, db: psycopg.Connection[Any], database_url: str
) -> None:
    ids = add_many_faculty(db, 20)
    versions = 150
    stream = ordered_stream(ids, versions, seed=1)
    client_id = unique_client_id()

    def service() -> IngestProcess:
        return IngestProcess(
            database_url=database_url,
            mqtt_url=broker.url,
            client_id=client_id,
            args=["--batch-size", "25", "--no-state"],
        )

    first = service().start()
    try:
        first.wait_ready()
        streamer = Streamer(broker.url, stream, rate=1500)
        wait_until(lambda: changes(db) >= 300, timeout=30, message="the stream to be under way")
        first.kill()
        assert first.returncode == -9
        killed_at = changes(db)
    finally:
        first.close()
    assert killed_at < len(stream), "the crash came mid-stream"

    with service() as second:
        second.wait_ready()
        assert streamer.join(timeout=60) == len(stream)
        wait_complete(db, ids, versions, timeout=60)
        second.terminate()
        assert second.wait(10) == 0, second.output
    assert_nothing_missing(db, ids, versions)


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    """A data directory outside pytest's temporary tree.

    PostgreSQL runs as an unprivileged user when the tests run as root, and
    every pytest session resets its base directory to mode 0700, which would
    lock a restarting server out of a directory under it.
    """
    root = Path(tempfile.mkdtemp(prefix="consultease-test-pg-"))
    root.chmod(0o755)
    yield root / "pg"
    shutil.rmtree(root, ignore_errors=True)


def test_no_update_is_lost_while_the_database_restarts(
    broker: MosquittoInstance, pg_dir: Path
) -> None:
    pg = PostgresInstance(pg_dir, durable=False).start()
    try:
        upgrade(pg.url)
        with psycopg.connect(pg.url, autocommit=True) as conn:
            ids = add_many_faculty(conn, 20)
        versions = 150
        stream = ordered_stream(ids, versions, seed=2)
        with running_service(settings_for(pg.url, broker.url), batch_size=25) as service:
            streamer = Streamer(broker.url, stream, rate=1000)
            wait_until(
                lambda: service.stats.applied >= 300, timeout=30, message="the stream under way"
            )
            pg.stop("fast")
            down_at = service.stats.processed
            time.sleep(3)
            assert service.stats.processed - down_at <= 25, "nothing commits without a database"
            assert service.queue_depth > 0, "messages wait in the queue meanwhile"
            pg.start()
            published = streamer.join(timeout=60)
            wait_processed(service, published, timeout=60)
            stats = service.stats
        assert published == len(stream)
        assert stats.applied + stats.duplicate + stats.stale == published
        assert stats.rejected == 0
        with psycopg.connect(pg.url, autocommit=True) as conn:
            assert_nothing_missing(conn, ids, versions)
    finally:
        pg.destroy()


def test_sigterm_stops_within_seconds_with_committed_work_acknowledged(
    broker: MosquittoInstance, db: psycopg.Connection[Any], database_url: str
) -> None:
    ids = add_many_faculty(db, 10)
    versions = 30
    client_id = unique_client_id()
    with IngestProcess(
        database_url=database_url, mqtt_url=broker.url, client_id=client_id
    ) as process:
        process.wait_ready()
        with Publisher(broker.url) as publisher:
            publisher.publish_all(ordered_stream(ids, versions, seed=3))
        wait_complete(db, ids, versions, timeout=30)
        started = time.monotonic()
        process.terminate()
        assert process.wait(10) == 0, process.output
        assert time.monotonic() - started < 5
    assert "ingest stopped" in process.output
    # Everything committed was acked: the broker has nothing left to redeliver.
    assert redelivered_to(broker.url, client_id, protocol=MqttProtocol.V5) == []
    assert_nothing_missing(db, ids, versions)


def test_sigterm_mid_stream_exits_cleanly_and_a_restart_finishes_the_stream(
    broker: MosquittoInstance, db: psycopg.Connection[Any], database_url: str
) -> None:
    ids = add_many_faculty(db, 20)
    versions = 100
    stream = ordered_stream(ids, versions, seed=4)
    client_id = unique_client_id()

    def service() -> IngestProcess:
        return IngestProcess(
            database_url=database_url,
            mqtt_url=broker.url,
            client_id=client_id,
            args=["--batch-size", "10"],
        )

    with service() as first:
        first.wait_ready()
        streamer = Streamer(broker.url, stream, rate=2000)
        wait_until(lambda: changes(db) >= 200, timeout=30, message="the stream under way")
        started = time.monotonic()
        first.terminate()
        assert first.wait(10) == 0, first.output
        assert time.monotonic() - started < 5
    with service() as second:
        second.wait_ready()
        streamer.join(timeout=60)
        wait_complete(db, ids, versions, timeout=60)
        second.terminate()
        assert second.wait(10) == 0
    assert_nothing_missing(db, ids, versions)
