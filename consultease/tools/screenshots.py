"""The README's kiosk screenshots, rendered offscreen so they can be made again:
``python -m consultease.tools.screenshots [--out docs] [--faculty 241]``.

It seeds the campus roster (``seed.campus_roster``: 241 faculty over 12 departments,
the longest names included, "since" times spread over the morning) and a few open
consultation requests into a scratch database, runs the real kiosk window (listener
and all) at each size on Qt's offscreen platform, and saves what the window shows:
the board, then the request form, a request waiting and accepted, and the admin's
open requests. The database is the one of
``--database-url`` or ``CONSULTEASE_DATABASE_URL`` (a scratch database is created
there and dropped afterwards), else a private PostgreSQL started for the run.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from consultease.config import Settings
from consultease.db.connection import connect
from consultease.errors import ConsultEaseError
from consultease.tools.bench.scratch import scratch_database
from consultease.tools.seed import campus_roster
from consultease.tools.servers import PostgresInstance

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class Shot:
    file: str
    width: int
    height: int
    layout: str = "compact"
    large_type: bool = False
    scene: str = "board"
    """``board``, or a consultation view: ``form``, ``waiting``, ``accepted``, ``admin``."""


SHOTS: tuple[Shot, ...] = (
    Shot(file="kiosk-800x480.png", width=800, height=480),
    Shot(file="kiosk-1024x600.png", width=1024, height=600),
    Shot(file="kiosk-1920x1080.png", width=1920, height=1080),
    Shot(file="kiosk-1024x600-departments.png", width=1024, height=600, layout="departments"),
    Shot(file="kiosk-1920x1080-large-type.png", width=1920, height=1080, large_type=True),
    Shot(file="request-form-1024x600.png", width=1024, height=600, scene="form"),
    Shot(file="request-waiting-1024x600.png", width=1024, height=600, scene="waiting"),
    Shot(file="request-accepted-1024x600.png", width=1024, height=600, scene="accepted"),
    Shot(file="admin-requests-1024x600.png", width=1024, height=600, scene="admin"),
)

STUDENTS: tuple[tuple[str, str], ...] = (
    ("Maria Santos", "2021-0042"),
    ("Juan Dela Cruz", "2021-0107"),
    ("Aiko Tanaka", "2022-0015"),
    ("Kwame Mensah", "2022-0233"),
    ("Sofia Rossi", "2020-0891"),
    ("Priya Raman", "2021-0550"),
)


def seed_requests(database_url: str) -> int:
    """A few open requests (waiting and accepted) to available lecturers, for the admin view."""
    with connect(database_url, application_name="consultease-screenshots") as conn:
        ids = [
            int(r[0])
            for r in conn.execute(
                "SELECT id FROM faculty WHERE active AND desk_online AND status = 'available'"
                " ORDER BY id LIMIT %s",
                (len(STUDENTS),),
            )
        ]
        made = []
        for (name, sid), faculty_id in zip(STUDENTS, ids, strict=False):
            row = conn.execute(
                "INSERT INTO consultation (faculty_id, student_name, student_id, course_code,"
                " message) VALUES (%s, %s, %s, 'BSCS', 'Question about the midterm')"
                " RETURNING id",
                (faculty_id, name, sid),
            ).fetchone()
            assert row is not None
            made.append(int(row[0]))
        for accepted in made[::3]:
            conn.execute("UPDATE consultation SET status = 'accepted' WHERE id = %s", (accepted,))
    return len(made)


def seed_campus(database_url: str, count: int = 241, *, seed: int = 16) -> int:
    """Add the campus roster; spread ``status_since`` over the last three hours when the
    login may (a superuser stepping around the trigger), else leave it at now."""
    rng = random.Random(seed)
    entries = campus_roster(count, seed=seed)
    with connect(database_url, application_name="consultease-screenshots") as conn:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO faculty (name, department, email, room, status, desk_online,"
                " always_available, status_source) VALUES (%s, %s, %s, %s, %s, %s, %s, 'desk')",
                [
                    (
                        e.name,
                        e.department,
                        e.email,
                        e.room,
                        e.status,
                        e.desk_online,
                        e.always_available,
                    )
                    for e in entries
                ],
            )
        try:
            with conn.transaction():
                conn.execute("SET LOCAL session_replication_role = replica")
                ids = [r[0] for r in conn.execute("SELECT id FROM faculty ORDER BY id")]
                conn.execute(
                    "UPDATE faculty AS f SET status_since = now() - make_interval(mins => m.m) "
                    "FROM unnest(%s::bigint[], %s::int[]) AS m(id, m) WHERE f.id = m.id",
                    (ids, [rng.randint(2, 180) for _ in ids]),
                )
        except psycopg.errors.InsufficientPrivilege:
            log.info("not a superuser: every 'since' time is now")
    return len(entries)


def render(database_url: str, out_dir: Path, shots: Sequence[Shot] = SHOTS) -> list[Path]:
    """Show the kiosk at each size and save what it draws; the files written."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from kiosk_ui.app import application  # noqa: PLC0415 - Qt only for this tool
    from kiosk_ui.board import BoardLayout, BoardOptions  # noqa: PLC0415
    from kiosk_ui.window import KioskWindow  # noqa: PLC0415

    app = application()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for shot in shots:
        options = BoardOptions(layout=BoardLayout(shot.layout), large_type=shot.large_type)
        window = KioskWindow(
            database_url,
            options=options,
            listener_name="consultease-shots",
            consultation_requests=True,
        )
        try:
            window.resize(shot.width, shot.height)
            window.start()
            window.show()
            deadline = time.monotonic() + 30
            while not (window.model.loaded and window.board.live):
                if time.monotonic() > deadline:
                    raise ConsultEaseError(f"the kiosk did not load the faculty for {shot.file}")
                app.processEvents()
                time.sleep(0.02)
            _settle(app)
            _stage(window, shot.scene, database_url)
            _settle(app, 1.0)
            target = out_dir / shot.file
            if not window.grab().save(str(target)):
                raise ConsultEaseError(f"could not write {target}")
            written.append(target)
            log.info("wrote %s", target)
        finally:
            window.close()
            window.deleteLater()
            app.processEvents()
    return written


def _settle(app: Any, seconds: float = 0.5) -> None:
    """Let queued events, the debounced counts and a paint happen."""
    settle = time.monotonic() + seconds
    while time.monotonic() < settle:
        app.processEvents()
        time.sleep(0.02)


def _stage(window: Any, scene: str, database_url: str) -> None:
    """Put the window in the state a consultation shot shows."""
    if scene == "board":
        return
    if scene == "admin":
        window.open_admin("registrar")
        window.show_requests_admin()
        return
    flow = window.consultations
    free = next(v for v in window.model.views() if v.shown_status == "available")
    if scene == "form":
        from kiosk_ui.consultation_form import StudentCard  # noqa: PLC0415

        flow.open_form(free)
        flow.form.fill_from_card(
            StudentCard(student_name="Maria Santos", student_id="2021-0042", course_code="BSCS"),
            "0004567891",
        )
        flow.form.message_box.setPlainText("Can we go over problem 3 of the last problem set?")
        window.keyboard.close_for_now()
        return
    from consultease.live.requests import KioskRequests, NewRequest  # noqa: PLC0415

    requests = KioskRequests(database_url)
    try:
        view = requests.create(
            NewRequest(
                faculty_id=free.id,
                student_name="Ana Reyes" if scene == "waiting" else "Liam O'Connor",
                student_id="2023-0310" if scene == "waiting" else "2023-0004",
                course_code="BSMath",
                message="Can we go over problem 3 of the last problem set?",
            )
        )
    finally:
        requests.close()
    if scene == "accepted":
        with connect(database_url, application_name="consultease-screenshots") as conn:
            conn.execute("UPDATE consultation SET status = 'accepted' WHERE id = %s", (view.id,))
    flow.follow(view)


@contextlib.contextmanager
def _database(server_url: str | None) -> Iterator[str]:
    if server_url:
        with scratch_database(server_url) as url:
            yield url
        return
    with tempfile.TemporaryDirectory(prefix="consultease-shots-") as folder:
        pg = PostgresInstance(Path(folder) / "postgres", durable=False)
        pg.start()
        try:
            with scratch_database(pg.url) as url:
                yield url
        finally:
            pg.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m consultease.tools.screenshots")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="folder for the PNGs")
    parser.add_argument("--faculty", type=int, default=241)
    parser.add_argument("--database-url", help="a server to make a scratch database on")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        url_given = args.database_url or Settings.from_env().database_url
        with _database(url_given) as url:
            seed_campus(url, args.faculty)
            seed_requests(url)
            for path in render(url, args.out):
                print(path)
    except (ConsultEaseError, OSError, psycopg.Error) as exc:
        print(
            f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
