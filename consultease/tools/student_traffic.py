"""Students asking for consultations, for the demo: requests at a human pace.

``StudentTraffic`` is one thread that, at exponentially spaced moments (a
Poisson process of ``per_minute`` requests a minute over the whole campus),
picks a student and a lecturer who is available right now, and makes the
request the way a kiosk does (``Consultations.create_request`` with
``require_available``): the dispatcher then sends it to the desk, the
simulated desk answers it (or not, and it expires), and the board and the
kiosk show it live. A student who already has an open request with that
lecturer, or a lecturer who stopped being available meanwhile, is simply
skipped, as at a real kiosk.

``seed_demo_students`` registers the demo's students (with card UIDs, so a USB
RFID reader can be tried at the demo kiosk) when the register is empty.
Runs with the same ``seed`` pick the same students, lecturers and messages.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass

import psycopg

from consultease.db.connection import connect
from consultease.db.consultations import Consultations
from consultease.db.students import Students
from consultease.errors import ConsultEaseError

log = logging.getLogger(__name__)

DEMO_STUDENTS: tuple[tuple[str, str, str, str], ...] = (
    ("2021-0042", "Maria Santos", "BSCS", "0004567891"),
    ("2021-0107", "Juan Dela Cruz", "BSIT", "0004567892"),
    ("2022-0015", "Aiko Tanaka", "BSCS", "0004567893"),
    ("2022-0233", "Kwame Mensah", "BSEE", "0004567894"),
    ("2020-0891", "Sofia Rossi", "BSMath", "0004567895"),
    ("2023-0004", "Liam O'Connor", "BSPhys", "0004567896"),
    ("2021-0550", "Priya Raman", "BSCS", "0004567897"),
    ("2022-0678", "Chen Wei", "BSEE", "0004567898"),
    ("2023-0310", "Fatima Zahra", "BSMath", "0004567899"),
    ("2020-0112", "Mateo García", "BSIT", "0004567900"),
    ("2021-0999", "Hana Kim", "BSPhys", "0004567901"),
    ("2022-0404", "Noah Müller", "BSCS", "0004567902"),
)
"""student id, name, course, card UID."""

MESSAGES: tuple[str, ...] = (
    "Can we go over problem 3 of the last problem set?",
    "I would like feedback on my thesis outline.",
    "Question about the grading of the midterm.",
    "Could you sign my enrolment form?",
    "I missed Tuesday's lecture: what should I read?",
    "Help with the lab report, section 2.",
    "May I ask about the project proposal deadline?",
    "I'd like to discuss a research opportunity.",
)


def seed_demo_students(database_url: str) -> int:
    """Register the demo students if the register is empty; how many there are."""
    students = Students(database_url)
    try:
        existing = students.list_all(include_inactive=True)
        if existing:
            return len(existing)
        for student_id, name, course, card in DEMO_STUDENTS:
            students.add(
                student_id=student_id,
                name=name,
                course_code=course,
                rfid_uid=card,
                actor="demo-seed",
            )
        return len(DEMO_STUDENTS)
    finally:
        students.close()


@dataclass(frozen=True, kw_only=True, slots=True)
class TrafficStats:
    made: int = 0
    skipped: int = 0


class StudentTraffic:
    """Requests from students to available lecturers (see the module docstring)."""

    def __init__(self, database_url: str, *, per_minute: float = 2.0, seed: int | None = None):
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self._url = database_url
        self._per_minute = per_minute
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stats = TrafficStats()

    @property
    def stats(self) -> TrafficStats:
        with self._lock:
            return self._stats

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("StudentTraffic starts once")
        self._thread = threading.Thread(
            target=self._run, name="consultease-demo-students", daemon=False
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        consultations = Consultations(self._url)
        try:
            while not self._stop.wait(self._random.expovariate(self._per_minute / 60.0)):
                try:
                    self.one_request(consultations)
                except ConsultEaseError as exc:
                    log.info("demo students: %s", exc)
                except psycopg.Error as exc:
                    log.warning("demo students: the database failed: %s", exc)
        finally:
            consultations.close()

    def one_request(self, consultations: Consultations) -> int | None:
        """Make one request now; its id, or ``None`` when nobody could be asked."""
        lecturers = self._available()
        if not lecturers:
            self._count(skipped=1)
            return None
        faculty_id = self._random.choice(lecturers)
        student_id, name, course, _card = self._random.choice(DEMO_STUDENTS)
        try:
            made = consultations.create_request(
                faculty_id=faculty_id,
                student_name=name,
                student_id=student_id,
                course_code=course,
                message=self._random.choice(MESSAGES),
                require_available=True,
            )
        except ConsultEaseError as exc:  # an open request already, or no longer available
            log.debug("demo students: skipped: %s", exc)
            self._count(skipped=1)
            return None
        self._count(made=1)
        log.debug("demo students: %s asked faculty %d (request %d)", name, faculty_id, made.id)
        return made.id

    def _available(self) -> list[int]:
        with connect(self._url, application_name="consultease-demo-students") as conn:
            rows = conn.execute(
                "SELECT id FROM faculty WHERE active"
                " AND (always_available OR (desk_online AND status = 'available')) ORDER BY id"
            ).fetchall()
        return [int(r[0]) for r in rows]

    def _count(self, *, made: int = 0, skipped: int = 0) -> None:
        with self._lock:
            self._stats = TrafficStats(
                made=self._stats.made + made, skipped=self._stats.skipped + skipped
            )
