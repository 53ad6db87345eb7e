"""FacultyListener against a real PostgreSQL (SPEC 6): live, coalescing, self-healing."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from consultease.db.migrate import upgrade
from consultease.db.readmodel import load_views
from consultease.domain import Status
from consultease.live.cache import FacultyCache
from consultease.live.listener import (
    Connected,
    Disconnected,
    FacultyChanged,
    FacultyListener,
    FacultyRemoved,
    ListenerEvent,
    Reconnecting,
    Resynced,
    coalesce,
    parse_hint,
)
from consultease.tools.bench.listener import DriverMode, measure_listener_latency
from consultease.tools.servers import PostgresInstance, free_port
from tests.support.factories import add_faculty, add_many_faculty

E = TypeVar("E", bound=ListenerEvent)


class Events:
    """A subscriber that records events and lets the test wait for them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.items: list[tuple[float, ListenerEvent]] = []

    def __call__(self, event: ListenerEvent) -> None:
        with self._cond:
            self.items.append((time.perf_counter(), event))
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.items)

    def of(self, kind: type[E], since: int = 0) -> list[E]:
        with self._cond:
            return [e for _, e in self.items[since:] if isinstance(e, kind)]

    def kinds(self, since: int = 0) -> list[str]:
        with self._cond:
            return [type(e).__name__ for _, e in self.items[since:]]

    def wait_for(
        self,
        kind: type[E],
        predicate: Callable[[E], bool] = lambda _: True,
        *,
        since: int = 0,
        timeout: float = 5.0,
    ) -> tuple[float, E]:
        """The receive time and the first event of ``kind`` after ``since`` matching."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for at, event in self.items[since:]:
                    if isinstance(event, kind) and predicate(event):
                        return at, event
                left = deadline - time.monotonic()
                if left <= 0:
                    kinds = [type(e).__name__ for _, e in self.items[since:]]
                    raise AssertionError(f"no matching {kind.__name__} within {timeout}s: {kinds}")
                self._cond.wait(left)


def eventually(check: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def backends(conn: psycopg.Connection[Any], application_name: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (application_name,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def listener_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def table_views(conn: psycopg.Connection[Any]) -> list[Any]:
    """The active faculty as the cache should hold them, in the cache's order."""
    cache = FacultyCache()
    cache.replace_all(load_views(conn))
    return cache.all()


@pytest.fixture
def make_listener(database_url: str) -> Iterator[Callable[..., FacultyListener]]:
    """Build listeners with a unique application_name; all are closed after the test."""
    made: list[FacultyListener] = []

    def make(url: str | None = None, **kwargs: Any) -> FacultyListener:
        kwargs.setdefault("application_name", f"ce-test-listener-{uuid.uuid4().hex[:10]}")
        kwargs.setdefault("poll_interval", 0.2)
        listener = FacultyListener(url or database_url, **kwargs)
        made.append(listener)
        return listener

    yield make
    for listener in made:
        listener.close()


def started(listener: FacultyListener, *subscribers: Callable[[ListenerEvent], None]) -> Events:
    events = Events()
    listener.subscribe(events)
    for subscriber in subscribers:
        listener.subscribe(subscriber)
    listener.start()
    events.wait_for(Resynced)
    return events


# -- live updates ------------------------------------------------------------------


def test_update_by_another_connection_reaches_cache_and_subscriber_within_one_second(
    db: psycopg.Connection[Any], make_listener: Callable[..., FacultyListener]
) -> None:
    faculty_id = add_faculty(db, status="away")
    listener = make_listener()
    events = started(listener)
    cached = listener.cache.get(faculty_id)
    assert cached is not None
    assert (cached.status, cached.version) == (Status.AWAY, 1)
    assert events.kinds() == ["Connected", "Resynced"]
    assert listener.connected

    mark = events.mark()
    db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (faculty_id,))
    committed = time.perf_counter()
    at, changed = events.wait_for(
        FacultyChanged, lambda e: e.view.id == faculty_id, since=mark, timeout=1.0
    )
    assert at - committed < 1.0
    assert (changed.view.status, changed.view.version) == (Status.BUSY, 2)
    assert listener.cache.get(faculty_id) == changed.view
    print(f"commit-to-subscriber latency {1000 * (at - committed):.1f} ms")


def test_insert_is_delivered_as_changed_and_deactivation_and_delete_as_removed(
    db: psycopg.Connection[Any], make_listener: Callable[..., FacultyListener]
) -> None:
    keep = add_faculty(db, name="Keep")
    listener = make_listener()
    events = started(listener)

    mark = events.mark()
    added = add_faculty(db, name="New")
    _, changed = events.wait_for(FacultyChanged, lambda e: e.view.id == added, since=mark)
    assert changed.view.name == "New"

    db.execute("UPDATE faculty SET active = false WHERE id = %s", (keep,))
    events.wait_for(FacultyRemoved, lambda e: e.faculty_id == keep, since=mark)
    assert listener.cache.get(keep) is None

    db.execute("DELETE FROM faculty WHERE id = %s", (added,))
    events.wait_for(FacultyRemoved, lambda e: e.faculty_id == added, since=mark)
    assert listener.cache.all() == []
    assert events.kinds(mark) == ["FacultyChanged", "FacultyRemoved", "FacultyRemoved"]

    # Reactivation brings the row back as a change.
    db.execute("UPDATE faculty SET active = true WHERE id = %s", (keep,))
    events.wait_for(FacultyChanged, lambda e: e.view.id == keep, since=mark)
    assert [v.id for v in listener.cache.all()] == [keep]


def test_bookkeeping_update_without_version_bump_sends_nothing(
    db: psycopg.Connection[Any], make_listener: Callable[..., FacultyListener]
) -> None:
    faculty_id = add_faculty(db)
    listener = make_listener()
    events = started(listener)
    mark = events.mark()
    db.execute("UPDATE faculty SET last_seen = now() WHERE id = %s", (faculty_id,))
    db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (faculty_id,))
    events.wait_for(FacultyChanged, since=mark)
    assert events.kinds(mark) == ["FacultyChanged"]
    assert listener.stats.notifications == 1


def test_late_subscriber_gets_full_picture_from_cache_then_events(
    db: psycopg.Connection[Any], make_listener: Callable[..., FacultyListener]
) -> None:
    first = add_faculty(db, name="First")
    listener = make_listener()
    started(listener)
    late = Events()
    listener.subscribe(late)  # subscribe first, then read the snapshot
    assert [v.id for v in listener.cache.all()] == [first]
    second = add_faculty(db, name="Second")
    late.wait_for(FacultyChanged, lambda e: e.view.id == second)
    assert late.of(Resynced) == []


def test_unsubscribed_callback_receives_nothing_more(
    db: psycopg.Connection[Any], make_listener: Callable[..., FacultyListener]
) -> None:
    faculty_id = add_faculty(db)
    listener = make_listener()
    events = started(listener)
    gone = Events()
    unsubscribe = listener.subscribe(gone)
    unsubscribe()
    unsubscribe()  # idempotent
    db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (faculty_id,))
    events.wait_for(FacultyChanged)
    assert gone.items == []


# -- robustness ----------------------------------------------------------------------


def test_subscriber_that_raises_does_not_stop_delivery_to_others(
    db: psycopg.Connection[Any],
    make_listener: Callable[..., FacultyListener],
    caplog: pytest.LogCaptureFixture,
) -> None:
    faculty_id = add_faculty(db)

    def broken(event: ListenerEvent) -> None:
        raise RuntimeError(f"subscriber bug on {type(event).__name__}")

    listener = make_listener()
    caplog.set_level(logging.ERROR, logger="consultease.live.listener")
    before = Events()
    listener.subscribe(before)
    events = started(listener, broken)  # broken sits between two good subscribers

    for status in ("busy", "available", "away"):
        mark = events.mark()
        db.execute("UPDATE faculty SET status = %s WHERE id = %s", (status, faculty_id))
        _, changed = events.wait_for(FacultyChanged, since=mark)
        assert changed.view.status == Status(status)
    assert len(before.of(FacultyChanged)) == 3
    assert listener.connected
    assert listener.stats.subscriber_errors == 5  # Connected, Resynced, 3 changes
    assert listener.stats.reconnects == 0
    assert any(
        r.exc_info and "subscriber bug on FacultyChanged" in str(r.exc_info[1])
        for r in caplog.records
    )
    assert all(r.name == "consultease.live.listener" for r in caplog.records)


def test_out_of_order_delivery_never_rolls_back_the_cache(
    db: psycopg.Connection[Any], make_listener: Callable[..., FacultyListener]
) -> None:
    faculty_id = add_faculty(db, status="away")
    [old] = load_views(db, [faculty_id])
    listener = make_listener()
    events = started(listener)
    mark = events.mark()
    db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (faculty_id,))
    events.wait_for(FacultyChanged, since=mark)
    newest = listener.cache.get(faculty_id)
    assert newest is not None
    assert newest.version == 2

    # A late fetch result landing in the cache after a newer one.
    assert listener.cache.put(old) is False
    assert listener.cache.get(faculty_id) == newest

    # A replayed, older notification: skipped without even a query.
    fetched = listener.stats.rows_fetched
    stale = json.dumps({"op": "UPDATE", "id": faculty_id, "version": 1, "active": True})
    db.execute("SELECT pg_notify('faculty_changed', %s)", (stale,))
    eventually(lambda: listener.stats.notifications == 2)
    assert listener.stats.rows_fetched == fetched
    assert listener.stats.skipped == 1

    # A hint claiming a newer version than the row has: the row is read, nothing changes.
    bogus = json.dumps({"op": "UPDATE", "id": faculty_id, "version": 99})
    db.execute("SELECT pg_notify('faculty_changed', %s)", (bogus,))
    # Garbage on the channel is ignored, and the listener stays up.
    db.execute("SELECT pg_notify('faculty_changed', 'not json')")
    eventually(lambda: listener.stats.notifications == 4)
    eventually(lambda: listener.stats.rows_fetched == fetched + 1)
    assert listener.cache.get(faculty_id) == newest
    assert events.kinds(mark) == ["FacultyChanged"]

    mark = events.mark()
    db.execute("UPDATE faculty SET status = 'available' WHERE id = %s", (faculty_id,))
    _, changed = events.wait_for(FacultyChanged, since=mark)
    assert changed.view.version == 3
    assert listener.connected


def test_killed_connection_reconnects_and_resyncs_changes_made_while_away(
    db: psycopg.Connection[Any], make_listener: Callable[..., FacultyListener]
) -> None:
    changed_away = add_faculty(db, name="Changed", status="away")
    deactivated = add_faculty(db, name="Deactivated")
    deleted = add_faculty(db, name="Deleted")
    untouched = add_faculty(db, name="Untouched")
    listener = make_listener(max_backoff=0.2)

    away, resume = threading.Event(), threading.Event()

    def hold_reconnect(event: ListenerEvent) -> None:
        # Runs on the listener thread: keeps it away from the database
        # until the test has changed rows behind its back.
        if isinstance(event, Disconnected):
            away.set()
            resume.wait(5)

    events = started(listener, hold_reconnect)
    assert len(listener.cache) == 4
    mark = events.mark()

    killed_at = time.perf_counter()
    row = db.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
        (listener.application_name,),
    ).fetchone()
    assert row == (1,)
    assert away.wait(2), "the listener did not notice its backend was terminated"
    noticed_at, _ = events.wait_for(Disconnected, since=mark)
    assert noticed_at - killed_at < 1.0
    assert not listener.connected

    # Changes the listener cannot hear about: their notifications go nowhere.
    db.execute(
        "UPDATE faculty SET status = 'busy', desk_online = true WHERE id = %s", (changed_away,)
    )
    db.execute("UPDATE faculty SET active = false WHERE id = %s", (deactivated,))
    db.execute("DELETE FROM faculty WHERE id = %s", (deleted,))
    inserted = add_faculty(db, name="Inserted")
    stale = listener.cache.get(changed_away)
    assert stale is not None
    assert stale.status == Status.AWAY
    resume.set()

    _, resynced = events.wait_for(Resynced, since=mark)
    assert listener.connected
    assert events.kinds(mark)[:4] == ["Disconnected", "Reconnecting", "Connected", "Resynced"]
    assert events.of(Reconnecting, mark)[0].attempt == 1
    assert listener.cache.all() == table_views(db)
    assert list(resynced.views) == table_views(db)
    assert {v.id for v in resynced.views} == {changed_away, untouched, inserted}
    fresh = listener.cache.get(changed_away)
    assert fresh is not None
    assert (fresh.status, fresh.shown_status) == (Status.BUSY, "busy")
    stats = listener.stats
    assert (stats.reconnects, stats.resyncs) == (1, 2)
    assert backends(db, listener.application_name) == 1

    # And it is live again.
    mark = events.mark()
    db.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (untouched,))
    events.wait_for(FacultyChanged, lambda e: e.view.id == untouched, since=mark, timeout=1.0)


@pytest.fixture
def private_pg_dir() -> Iterator[Path]:
    """A data directory outside pytest's temporary tree.

    When the tests run as root PostgreSQL runs as an unprivileged user, and
    every pytest session (another one may start meanwhile) resets its base
    directory to mode 0700, which would lock a restarting server out.
    """
    root = Path(tempfile.mkdtemp(prefix="consultease-test-listener-pg-"))
    root.chmod(0o755)
    yield root / "pg"
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_listener_recovers_by_itself_after_database_restart(private_pg_dir: Path) -> None:
    server = PostgresInstance(private_pg_dir, durable=False).start()
    listener: FacultyListener | None = None
    try:
        upgrade(server.url)
        with psycopg.connect(server.url, autocommit=True) as conn:
            faculty_id = add_faculty(conn, status="away")
        listener = FacultyListener(
            server.url,
            poll_interval=0.2,
            max_backoff=0.5,
            application_name="ce-test-listener-restart",
        )
        events = started(listener)
        mark = events.mark()

        server.stop()
        events.wait_for(Disconnected, since=mark, timeout=2)
        time.sleep(2)
        attempts = events.of(Reconnecting, mark)
        assert len(attempts) >= 3, "it keeps trying while the server is down"
        assert [a.attempt for a in attempts] == list(range(1, len(attempts) + 1))
        assert all(a.delay <= 0.5 for a in attempts)
        assert events.of(Connected, mark) == []
        assert listener.cache.get(faculty_id) is not None, "the last picture is kept"

        server.start()  # same port
        events.wait_for(Connected, since=mark, timeout=10)
        events.wait_for(Resynced, since=mark)
        assert listener.connected
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("UPDATE faculty SET status = 'busy' WHERE id = %s", (faculty_id,))
        _, changed = events.wait_for(FacultyChanged, since=mark, timeout=2)
        assert changed.view.status == Status.BUSY
        assert listener.stats.reconnects == 1
    finally:
        if listener is not None:
            listener.close()
        server.destroy()


def test_bursts_are_coalesced_and_the_cache_ends_equal_to_the_table(
    db: psycopg.Connection[Any],
    database_url: str,
    make_listener: Callable[..., FacultyListener],
) -> None:
    ids = add_many_faculty(db, 100)
    listener = make_listener()
    started(listener)
    halves = [ids[:50], ids[50:]]
    transactions, per_transaction = 10, 250  # 2 x 10 x 250 = 5,000 updates

    def writer(rows: list[int], tag: int) -> None:
        with psycopg.connect(database_url) as conn:
            n = 0
            for _ in range(transactions):
                with conn.transaction():
                    for _ in range(per_transaction):
                        conn.execute(
                            "UPDATE faculty SET room = %s WHERE id = %s",
                            (f"R{tag}-{n}", rows[n % len(rows)]),
                        )
                        n += 1

    threads = [threading.Thread(target=writer, args=(half, i)) for i, half in enumerate(halves)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    expected = table_views(db)
    assert sum(v.version for v in expected) == 100 + 5000
    eventually(lambda: listener.stats.notifications == 5000)
    eventually(lambda: listener.cache.all() == expected)
    stats = listener.stats
    ratio = stats.rows_fetched / stats.notifications
    print(
        f"5,000 updates: {stats.notifications} notifications, {stats.fetches} fetches, "
        f"{stats.rows_fetched} rows fetched, {stats.skipped} skipped: ratio {ratio:.3f}"
    )
    assert stats.rows_fetched < stats.notifications / 2
    assert listener.connected


def test_many_autocommit_updates_from_two_threads_end_equal_to_the_table(
    db: psycopg.Connection[Any],
    database_url: str,
    make_listener: Callable[..., FacultyListener],
) -> None:
    ids = add_many_faculty(db, 100)
    listener = make_listener()
    started(listener)

    def writer(tag: int) -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for n in range(1000):
                conn.execute(
                    "UPDATE faculty SET room = %s WHERE id = %s", (f"R{tag}-{n}", ids[n % 100])
                )

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    eventually(lambda: listener.stats.notifications == 2000)
    eventually(lambda: listener.cache.all() == table_views(db))
    stats = listener.stats
    print(f"2,000 autocommit updates: fetch ratio {stats.rows_fetched / stats.notifications:.3f}")


# -- closing ---------------------------------------------------------------------------


def test_close_returns_within_one_second_and_leaves_no_thread_or_backend(
    db: psycopg.Connection[Any], make_listener: Callable[..., FacultyListener]
) -> None:
    add_faculty(db)
    listener = make_listener(poll_interval=5.0)  # close must not wait for a poll
    name = listener.application_name
    events = started(listener)
    assert len(listener_threads(name)) == 1
    assert not listener_threads(name)[0].daemon
    assert backends(db, name) == 1

    begun = time.monotonic()
    listener.close()
    assert time.monotonic() - begun < 1.0
    assert listener_threads(name) == []
    eventually(lambda: backends(db, name) == 0, timeout=1.0)
    assert not listener.connected
    assert events.kinds()[-1] == "Disconnected"
    listener.close()  # idempotent
    with pytest.raises(RuntimeError):
        listener.start()


def test_close_interrupts_the_reconnect_backoff(
    make_listener: Callable[..., FacultyListener],
) -> None:
    nobody = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    listener = make_listener(nobody, max_backoff=30.0)
    events = Events()
    listener.subscribe(events)
    listener.start()
    events.wait_for(Reconnecting, lambda e: e.attempt >= 3, timeout=5)
    assert not listener.connected
    assert len(events.of(Disconnected)) == 1, "one outage is reported once"
    delays = [e.delay for e in events.of(Reconnecting)]
    assert delays[0] <= 0.1

    begun = time.monotonic()
    listener.close()
    assert time.monotonic() - begun < 1.0
    assert listener_threads(listener.application_name) == []


def test_close_before_start_is_harmless(make_listener: Callable[..., FacultyListener]) -> None:
    listener = make_listener()
    listener.close()
    assert not listener.connected


# -- the benchmark -----------------------------------------------------------------------


@pytest.mark.parametrize("driver_mode", ["thread", "process"])
def test_latency_benchmark_measures_every_change_and_cleans_up(
    db: psycopg.Connection[Any], database_url: str, driver_mode: DriverMode
) -> None:
    result = measure_listener_latency(
        database_url, rate=200, duration=0.5, rows=10, driver_mode=driver_mode
    )
    print(driver_mode, {k: round(v, 3) for k, v in result.items()})
    assert result["changes"] == 100
    assert result["undelivered"] == 0
    assert result["notifications"] == 100
    assert 0 <= result["p50_ms"] <= result["p99_ms"] <= result["max_ms"] < 1000
    assert 0 < result["fetch_ratio"] <= 1
    row = db.execute("SELECT count(*) FROM faculty").fetchone()
    assert row == (0,)


# -- pure parts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    ["", "not json", "[]", '{"op": "UPDATE"}', '{"id": "7"}', '{"id": true}', "null"],
)
def test_unusable_payloads_have_no_hint(payload: str) -> None:
    assert parse_hint(payload) is None


def test_hint_reads_trigger_payload_and_tolerates_missing_fields() -> None:
    hint = parse_hint('{"op":"UPDATE","id":3,"version":7,"status":"busy","active":false}')
    assert hint is not None
    assert (hint.op, hint.id, hint.version, hint.active) == ("UPDATE", 3, 7, False)
    bare = parse_hint('{"id": 3}')
    assert bare is not None
    assert (bare.op, bare.version, bare.active) == ("UPDATE", None, None)


def test_coalesce_keeps_newest_hint_per_id_and_deletes_win() -> None:
    def note(payload: str) -> psycopg.Notify:
        return psycopg.Notify("faculty_changed", payload, 1)

    newest, deleted = coalesce(
        [
            note('{"op":"UPDATE","id":1,"version":3}'),
            note('{"op":"UPDATE","id":1,"version":5}'),
            note('{"op":"UPDATE","id":1,"version":4}'),
            note('{"op":"UPDATE","id":2,"version":2}'),
            note('{"op":"DELETE","id":2,"version":2}'),
            note('{"op":"UPDATE","id":2,"version":3}'),
            note('{"op":"UPDATE","id":4}'),
            note('{"op":"UPDATE","id":4,"version":9}'),
            note("garbage"),
        ]
    )
    assert {i: h.version for i, h in newest.items()} == {1: 5, 4: None}
    assert deleted == [2]
