"""How the kiosk holds up under load: ``measure_kiosk``, and as a command
``python -m consultease.tools.bench.kiosk`` (needs the ``[kiosk]`` extra).

A real kiosk window (offscreen, 1024x600, listener and all) shows ``faculty``
rows while a driver thread, on its own autocommit connection, commits
``rate`` status changes per second for ``duration`` seconds. Measured:

* **GUI stall**: a 10 ms ``QTimer`` on the GUI thread notes how late each
  tick fires; the longest lateness is the longest the board could not react.
* **commit -> model**: the driver notes ``perf_counter()`` when each commit
  returns, by (faculty id, row version). The model notes when ``dataChanged``
  (or, for a row that changed its place, ``rowsInserted``) for that row is
  processed on the GUI thread with that version *or a newer one* (the
  listener coalesces bursts, so an intermediate version may never be shown:
  the row jumps straight to the newer state, which is what a student sees).
  Every change is counted here.
* **commit -> paint**: when the card delegate actually paints that row at that
  version or newer, for the changes whose card was on screen when they reached
  the board (cards move with their status, so others may come into view only
  much later). Painting does happen offscreen (the offscreen platform
  renders into an image), but only the cards on screen are ever painted, so
  this covers the changes to the ~10 visible cards only; the count is reported.

Both clocks are ``time.perf_counter()`` in one process, so they compare
directly. The commit time is taken when the driver's ``UPDATE`` returns
(autocommit, so after the commit), which understates latency by at most one
round trip to the server.
"""

from __future__ import annotations

import argparse
import bisect
import json
import logging
import math
import os
import random
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import psycopg
from PySide6.QtCore import QEventLoop, QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QStyleOptionViewItem

from consultease.tools.bench.scratch import scratch_database
from consultease.tools.bench.stats import percentile
from kiosk_ui.app import application
from kiosk_ui.delegate import CardDelegate
from kiosk_ui.model import FacultyRole
from kiosk_ui.window import KioskWindow

log = logging.getLogger(__name__)

PROBE_MS = 10
DRAIN_SECONDS = 2.0
"""How long the board keeps running after the driver stops, to let the last changes land."""

DEPARTMENTS = (
    ("Computer Science", "CS"),
    ("Mathematics", "M"),
    ("Physics", "P"),
    ("Chemistry", "C"),
    ("Biology", "B"),
    ("Electrical Engineering", "EE"),
    ("Mechanical Engineering", "ME"),
    ("Civil Engineering", "CE"),
    ("Economics", "EC"),
    ("History", "H"),
    ("Philosophy", "PH"),
    ("Linguistics", "L"),
)
_FIRST_NAMES = (
    "Ada Alan Grace Barbara Donald Frances Leslie Radia Emmy Kurt Maryam Terence Marie "
    "Richard Lise Paul Vera Jocelyn Nikola Hedy Claude Edith Oliver Amina Kwame Priya Wei "
    "Sofia Mateo Ingrid Tomasz Aiko Olu Farah Diego Hana Jonas Lucia Omar Zara"
)
_LAST_NAMES = (
    "Lovelace Turing Hopper Liskov Knuth Allen Lamport Perlman Noether Gödel Mirzakhani Tao "
    "Curie Feynman Meitner Dirac Rubin Burnell Tesla Lamarr Shannon Clarke Heaviside Mensah "
    "Raman Chen Kowalski Tanaka Adeyemi Haddad Moreno Novak Berg Rossi Farouk Osei Lindqvist"
)
FIRST = _FIRST_NAMES.split()
LAST = _LAST_NAMES.split()

STATUSES = ("available", "busy", "away")


def seed(conn: psycopg.Connection[Any], count: int, *, rng: random.Random) -> list[int]:
    """``count`` active faculty with online desks in mixed states; their ids."""
    tag = uuid.uuid4().hex[:8]
    with conn.cursor() as cur:
        with cur.copy(
            "COPY faculty (name, department, email, room, status, desk_online) FROM STDIN"
        ) as copy:
            for i in range(count):
                department, code = DEPARTMENTS[i % len(DEPARTMENTS)]
                name = f"Dr. {FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]}"
                if i >= len(FIRST) * len(LAST):
                    name += f" {i}"
                copy.write_row(
                    (
                        name,
                        department,
                        f"bench-{tag}-{i}@uni.example",
                        f"{code}-{100 + i % 400}",
                        rng.choice(STATUSES),
                        True,
                    )
                )
        cur.execute("SELECT id FROM faculty WHERE email LIKE %s ORDER BY id", (f"bench-{tag}-%",))
        return [int(row[0]) for row in cur.fetchall()]


class _Driver(threading.Thread):
    """Commits ``rate`` status changes a second on its own connection; notes commit times."""

    def __init__(
        self, database_url: str, ids: Sequence[int], *, rate: float, duration: float, seed: int
    ) -> None:
        super().__init__(name="kiosk-bench-driver", daemon=True)
        self._url = database_url
        self._ids = list(ids)
        self._rate = rate
        self._duration = duration
        self._rng = random.Random(seed)
        self.committed: dict[tuple[int, int], float] = {}
        self.elapsed = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._drive()
        except BaseException as exc:  # reported by measure_kiosk
            self.error = exc

    def _drive(self) -> None:
        with psycopg.connect(self._url, autocommit=True) as conn:
            current: dict[int, str] = dict(
                conn.execute("SELECT id, status FROM faculty").fetchall()
            )
            start = time.perf_counter()
            total = int(self._rate * self._duration)
            for n in range(total):
                due = start + n / self._rate
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                faculty_id = self._rng.choice(self._ids)
                status = self._rng.choice([s for s in STATUSES if s != current[faculty_id]])
                row = conn.execute(
                    "UPDATE faculty SET status = %s WHERE id = %s RETURNING version",
                    (status, faculty_id),
                ).fetchone()
                self.committed[(faculty_id, int(row[0]) if row else -1)] = time.perf_counter()
                current[faculty_id] = status
            self.elapsed = time.perf_counter() - start


class _RecordingDelegate(CardDelegate):
    """Paints as usual and notes the first time each (id, version) was painted."""

    def __init__(self) -> None:
        super().__init__()
        self.painted: dict[tuple[int, int], float] = {}

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        super().paint(painter, option, index)
        key = (int(index.data(FacultyRole.ID)), int(index.data(FacultyRole.VERSION)))
        self.painted.setdefault(key, time.perf_counter())


class _StallProbe:
    """A 10 ms timer on the GUI thread noting how late each tick fires."""

    def __init__(self) -> None:
        self.lateness: list[float] = []
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(PROBE_MS)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0

    def start(self) -> None:
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.lateness.append(max(0.0, now - self._last - PROBE_MS / 1000))
        self._last = now


def _shown_latencies(
    committed: dict[tuple[int, int], float], shown: dict[tuple[int, int], float]
) -> list[float]:
    """For each commit, the delay until its row was shown at that version or newer."""
    by_id: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for (faculty_id, version), at in shown.items():
        by_id[faculty_id].append((version, at))
    earliest_from: dict[int, tuple[list[int], list[float]]] = {}
    for faculty_id, entries in by_id.items():
        entries.sort()
        versions = [v for v, _ in entries]
        # The first time any version >= v was shown: a suffix minimum over time.
        suffix_min = [0.0] * len(entries)
        best = math.inf
        for i in range(len(entries) - 1, -1, -1):
            best = min(best, entries[i][1])
            suffix_min[i] = best
        earliest_from[faculty_id] = (versions, suffix_min)
    latencies: list[float] = []
    for (faculty_id, version), committed_at in committed.items():
        found = earliest_from.get(faculty_id)
        if found is None:
            continue
        versions, suffix_min = found
        i = bisect.bisect_left(versions, version)
        if i < len(versions):
            latencies.append(max(0.0, suffix_min[i] - committed_at))
    latencies.sort()
    return latencies


def _covering(
    committed: dict[tuple[int, int], float], arrived: dict[tuple[int, int], bool]
) -> dict[tuple[int, int], bool]:
    """For each commit, the flag of the first arrival of its row at that version or newer."""
    by_id: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    for (faculty_id, version), flag in arrived.items():
        by_id[faculty_id].append((version, flag))
    for entries in by_id.values():
        entries.sort()
    result: dict[tuple[int, int], bool] = {}
    for key in committed:
        entries = by_id.get(key[0], [])
        i = bisect.bisect_left(entries, (key[1], False))
        if i < len(entries):
            result[key] = entries[i][1]
    return result


def _run_loop(seconds: float) -> None:
    loop = QEventLoop()
    QTimer.singleShot(round(seconds * 1000), loop.quit)
    loop.exec()


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _record_applied(
    window: KioskWindow, on_screen: dict[tuple[int, int], bool]
) -> dict[tuple[int, int], float]:
    """When each (faculty id, version) reached the model on the GUI thread; and, in
    ``on_screen``, whether its card was on screen once the board had laid it out."""
    applied: dict[tuple[int, int], float] = {}
    board = window.board

    def visible(key: tuple[int, int]) -> None:
        row = window.model.row_of(key[0])
        if row is None:
            return
        index = board.proxy.mapFromSource(window.model.index(row))
        on_screen[key] = board.grid.visualRect(index).intersects(board.grid.viewport().rect())

    def on_data_changed(top: QModelIndex, bottom: QModelIndex, roles: Sequence[int] = ()) -> None:
        if roles and FacultyRole.SINCE_TEXT in roles:
            return
        now = time.perf_counter()
        for row in range(top.row(), bottom.row() + 1):
            view = window.model.view_at(row)
            key = (view.id, view.version)
            if key not in applied:
                applied[key] = now
                # After the board's own (zero-time) relayout: where the card is now.
                QTimer.singleShot(0, lambda key=key: visible(key))

    def on_rows_inserted(_parent: QModelIndex, first: int, last: int) -> None:
        # A row whose place in the board order changed comes back as an insertion.
        model = window.model
        on_data_changed(model.index(first), model.index(last))

    window.model.dataChanged.connect(on_data_changed)
    window.model.rowsInserted.connect(on_rows_inserted)
    return applied


def measure_kiosk(
    database_url: str,
    *,
    faculty: int = 1000,
    rate: float = 200,
    duration: float = 30,
    size: tuple[int, int] = (1024, 600),
    random_seed: int = 7,
) -> dict[str, Any]:
    """Seed ``faculty`` rows into a migrated database, run the kiosk, drive changes; figures.

    Runs the Qt event loop on the calling thread (create no QApplication
    first, or create it on this thread). Use a scratch database: rows are added.
    """
    rng = random.Random(random_seed)
    with psycopg.connect(database_url, autocommit=True) as conn:
        ids = seed(conn, faculty, rng=rng)
    application()
    window = KioskWindow(database_url, listener_name="consultease-kiosk-bench")
    recorder = _RecordingDelegate()
    window.board.use_delegate(recorder)
    on_screen: dict[tuple[int, int], bool] = {}
    applied = _record_applied(window, on_screen)
    probe = _StallProbe()
    try:
        window.resize(*size)
        window.start()
        window.show()
        deadline = time.monotonic() + 30
        while not (window.model.loaded and window.board.live) and time.monotonic() < deadline:
            _run_loop(0.05)
        if not window.model.loaded:
            raise RuntimeError("the kiosk never loaded the faculty list")
        _run_loop(0.3)
        probe.start()
        driver = _Driver(database_url, ids, rate=rate, duration=duration, seed=random_seed)
        cpu_start = time.process_time()
        driver.start()
        while driver.is_alive():
            _run_loop(0.1)
        _run_loop(DRAIN_SECONDS)
        cpu = time.process_time() - cpu_start
        probe.stop()
        if driver.error is not None:
            raise RuntimeError(f"the load driver failed: {driver.error}") from driver.error
        stats = window.listener.stats
    finally:
        window.close()
        window.deleteLater()
        _run_loop(0.05)

    committed = driver.committed
    to_model = _shown_latencies(committed, applied)
    # Only changes whose card was on screen when they arrived can be painted at once;
    # with cards that move (status first), a card may come into view much later.
    seen = _covering(committed, on_screen)
    to_paint = _shown_latencies(
        {key: at for key, at in committed.items() if seen.get(key)}, recorder.painted
    )
    lateness = sorted(probe.lateness)
    return {
        "faculty": faculty,
        "rate_requested": rate,
        "duration_s": duration,
        "window": f"{size[0]}x{size[1]}",
        "commits": len(committed),
        "rate_achieved": round(len(committed) / driver.elapsed, 1) if driver.elapsed else 0.0,
        "gui_stall_max_ms": _ms(lateness[-1]) if lateness else math.nan,
        "gui_stall_p99_ms": _ms(percentile(lateness, 0.99)),
        "gui_ticks": len(lateness),
        "commit_to_model_p50_ms": _ms(percentile(to_model, 0.50)),
        "commit_to_model_p99_ms": _ms(percentile(to_model, 0.99)),
        "commit_to_model_max_ms": _ms(to_model[-1]) if to_model else math.nan,
        "changes_shown_in_model": len(to_model),
        "commit_to_paint_p50_ms": _ms(percentile(to_paint, 0.50)),
        "commit_to_paint_p99_ms": _ms(percentile(to_paint, 0.99)),
        "commit_to_paint_max_ms": _ms(to_paint[-1]) if to_paint else math.nan,
        "changes_painted": len(to_paint),
        "listener_notifications": stats.notifications,
        "listener_fetches": stats.fetches,
        "process_cpu_share": round(cpu / (duration + DRAIN_SECONDS), 2),
    }


# -- the command ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m consultease.tools.bench.kiosk",
        description="Load the kiosk and measure it (offscreen).",
    )
    parser.add_argument(
        "--admin-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a server where a scratch database may be created and dropped",
    )
    parser.add_argument("--faculty", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0, help="changes per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    with scratch_database(args.admin_url) as url:
        figures = measure_kiosk(url, faculty=args.faculty, rate=args.rate, duration=args.duration)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        width = max(len(k) for k in figures)
        for key, value in figures.items():
            print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
