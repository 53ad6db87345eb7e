"""Commit-to-subscriber latency of ``FacultyListener``: one of the figures of SPEC 8.

Driver processes (or threads), each on its own autocommit connection,
commit status changes at a fixed total rate and note ``time.perf_counter()``
right after each commit, keyed by ``(faculty id, row version)``. A
subscriber of a ``FacultyListener`` in this process notes when each
``FacultyChanged`` reaches it. Coalescing means a subscriber may never see
an intermediate version: a change counts as delivered when a view of the
same row with that version *or a newer one* arrives, which is exactly what
a kiosk shows.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Literal

from consultease.db.connection import connect
from consultease.live.listener import FacultyChanged, FacultyListener, ListenerEvent, Resynced
from consultease.tools.bench.scratch import create_bench_rows, delete_bench_rows
from consultease.tools.bench.stats import percentile

log = logging.getLogger(__name__)

DriverMode = Literal["process", "thread"]
Committed = dict[tuple[int, int], float]
"""Commit time (``perf_counter``) by (faculty id, row version)."""

DRIVER_RATE = 1000.0
"""Changes per second one driver connection is asked for, by default. Each
commit is one round trip, so one connection tops out around 1,000-3,000/s
on a small machine; more drivers than cores only add scheduling noise."""

_NEXT_STATUS = """
UPDATE faculty
SET status = CASE status WHEN 'available' THEN 'busy' WHEN 'busy' THEN 'away'
             ELSE 'available' END
WHERE id = %s
RETURNING version
"""


def measure_listener_latency(
    database_url: str,
    *,
    rate: float,
    duration: float,
    rows: int = 100,
    drivers: int | None = None,
    driver_mode: DriverMode = "process",
) -> dict[str, float]:
    """Drive ``rate`` committed changes per second for ``duration`` seconds; measure delivery.

    The database must already be migrated. ``rows`` faculty rows are created
    for the run (department ``Benchmark``) and deleted afterwards.

    The load comes from ``drivers`` drivers (default: one per ``DRIVER_RATE``
    changes per second), each with its own connection, its own share of the
    rows and ``rate / drivers`` changes per second. With ``driver_mode =
    "process"`` (the default) each driver is a separate process, as the
    ingest service is in production, so the listener does not compete with
    the load generator for this interpreter's GIL; commit and receive times
    are then compared on the system-wide monotonic clock that
    ``time.perf_counter`` reads on Linux. ``"thread"`` keeps the drivers in
    this process.

    Returns ``p50_ms``, ``p99_ms``, ``max_ms`` and ``mean_ms`` (commit to
    subscriber), ``fetch_ratio`` (rows fetched / notifications received),
    and the counts behind them: ``changes``, ``achieved_rate``,
    ``drivers``, ``notifications``, ``fetches``, ``rows_fetched``, ``undelivered``.
    """
    if rate <= 0 or duration <= 0 or rows <= 0:
        raise ValueError("rate, duration and rows must be positive")
    if driver_mode == "process" and not _perf_counter_is_system_wide():
        raise ValueError("driver_mode='process' needs a system-wide perf_counter; use 'thread'")
    if drivers is None:
        drivers = math.ceil(rate / DRIVER_RATE)
    drivers = max(1, min(drivers, rows))
    tag = uuid.uuid4().hex[:10]
    ids = create_bench_rows(database_url, rows)
    wanted = set(ids)
    received: dict[int, list[tuple[int, float]]] = defaultdict(list)
    ready = threading.Event()

    def on_event(event: ListenerEvent) -> None:
        now = time.perf_counter()
        if isinstance(event, FacultyChanged) and event.view.id in wanted:
            received[event.view.id].append((event.view.version, now))
        elif isinstance(event, Resynced):
            ready.set()

    listener = FacultyListener(database_url, application_name=f"consultease-bench-{tag}")
    listener.subscribe(on_event)
    try:
        listener.start()
        if not ready.wait(10):
            raise RuntimeError("the listener did not connect within 10 s")
        shares = [ids[k::drivers] for k in range(drivers)]
        run = _run_processes if driver_mode == "process" else _run_threads
        committed = run(database_url, shares, rate / drivers, duration)
        _wait_delivered(listener, committed, timeout=5.0)
    finally:
        listener.close()
        delete_bench_rows(database_url, ids)

    latencies: list[float] = []
    for (faculty_id, version), at in committed.items():
        seen = received.get(faculty_id, [])
        i = bisect.bisect_left(seen, (version, -math.inf))
        if i < len(seen):
            latencies.append(max(0.0, seen[i][1] - at) * 1000)
    latencies.sort()
    stats = listener.stats
    return {
        "changes": float(len(committed)),
        "drivers": float(drivers),
        "achieved_rate": _achieved_rate(committed),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": latencies[-1] if latencies else math.nan,
        "mean_ms": sum(latencies) / len(latencies) if latencies else math.nan,
        "undelivered": float(len(committed) - len(latencies)),
        "notifications": float(stats.notifications),
        "fetches": float(stats.fetches),
        "rows_fetched": float(stats.rows_fetched),
        "fetch_ratio": stats.rows_fetched / stats.notifications if stats.notifications else 0.0,
    }


def _achieved_rate(committed: Committed) -> float:
    """Changes per second between the first and the last commit."""
    if len(committed) < 2:
        return math.nan
    times = committed.values()
    return (len(committed) - 1) / (max(times) - min(times))


def _perf_counter_is_system_wide() -> bool:
    return "CLOCK_MONOTONIC" in time.get_clock_info("perf_counter").implementation


def _run_threads(
    database_url: str, shares: list[list[int]], rate: float, duration: float
) -> Committed:
    results: list[Committed] = [{} for _ in shares]
    barrier = threading.Barrier(len(shares))  # every driver connected: start together
    threads = [
        threading.Thread(
            target=_drive,
            args=(database_url, share, rate, duration, results[k]),
            kwargs={"when_connected": lambda: barrier.wait(timeout=60)},
            name=f"consultease-bench-driver-{k}",
        )
        for k, share in enumerate(shares)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {key: at for result in results for key, at in result.items()}


def _run_processes(
    database_url: str, shares: list[list[int]], rate: float, duration: float
) -> Committed:
    """One ``python -m consultease.tools.bench.listener`` child per share.

    A plain child process (not multiprocessing) so that nothing depends on
    how the caller's main module is written. Its orders come on stdin (the
    URL may hold a password, so never on the command line): one JSON line,
    then ``go`` once every child has answered ``ready``; it answers with the
    JSON list of ``[id, version, commit time]``.
    """
    children = [
        subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in shares
    ]
    try:
        for child, share in zip(children, shares, strict=True):
            assert child.stdin is not None
            orders = {"url": database_url, "ids": share, "rate": rate, "duration": duration}
            child.stdin.write(json.dumps(orders) + "\n")
            child.stdin.flush()
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("a benchmark driver process failed to start")
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.close()
        committed: Committed = {}
        for child in children:
            assert child.stdout is not None
            for faculty_id, version, at in json.loads(child.stdout.read() or "[]"):
                committed[(faculty_id, version)] = at
        if any(child.wait(10) != 0 for child in children):
            raise RuntimeError("a benchmark driver process failed")
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
            for stream in (child.stdin, child.stdout):
                if stream is not None:
                    stream.close()
    return committed


def _driver_main() -> None:
    """The child side of ``_run_processes``."""
    orders = json.loads(sys.stdin.readline())
    committed: Committed = {}

    def ready() -> None:
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            raise SystemExit(1)

    _drive(
        orders["url"],
        orders["ids"],
        orders["rate"],
        orders["duration"],
        committed,
        when_connected=ready,
    )
    json.dump([[i, v, at] for (i, v), at in committed.items()], sys.stdout)
    sys.stdout.flush()


def _drive(
    database_url: str,
    ids: list[int],
    rate: float,
    duration: float,
    committed: Committed,
    *,
    when_connected: Callable[[], None] | None = None,
) -> None:
    """Commit one change every ``1/rate`` seconds (open loop: a late one is not skipped)."""
    total = max(1, round(rate * duration))
    with connect(database_url, autocommit=True, application_name="consultease-bench") as conn:
        if when_connected is not None:
            when_connected()
        start = time.perf_counter()
        for n in range(total):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            faculty_id = ids[n % len(ids)]
            row = conn.execute(_NEXT_STATUS, (faculty_id,)).fetchone()
            at = time.perf_counter()  # autocommit: the statement has committed
            if row is not None:
                committed[(faculty_id, int(row[0]))] = at


def _wait_delivered(listener: FacultyListener, committed: Committed, *, timeout: float) -> None:
    """Until the cache holds every row's last committed version (or the timeout)."""
    last: dict[int, int] = {}
    for faculty_id, version in committed:
        last[faculty_id] = max(version, last.get(faculty_id, 0))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all((listener.cache.version_of(i) or 0) >= v for i, v in last.items()):
            return
        time.sleep(0.01)
    log.warning("not every change reached the listener within %.0f s", timeout)


if __name__ == "__main__":
    _driver_main()
