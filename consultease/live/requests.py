"""What a kiosk does with consultation requests: make one, cancel it, read a card.

``KioskRequests`` is the kiosk's whole write surface for SPEC 9, used from the
kiosk's worker thread (never the GUI thread). Each call is one short
transaction on a connection of its own. It writes only what the kiosk role may
(sql/007: insert a pending request, cancel its own, look up one card through
``consultease_student_by_rfid_v1``); the triggers of the ``consultation``
table enforce the transition rule and bump the version, whoever writes. The
row comes back as a ``ConsultationView`` from the same query the watcher uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from consultease.db.connection import connect, first_line
from consultease.errors import ConsultEaseError, DatabaseUnavailable, NotFound, ValidationError
from consultease.live.consultations import ConsultationView, load_consultations


@dataclass(frozen=True, kw_only=True, slots=True)
class NewRequest:
    faculty_id: int
    student_name: str
    student_id: str | None
    course_code: str | None
    message: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CardHolder:
    """Who a card belongs to, as ``consultease_student_by_rfid_v1`` tells a kiosk."""

    student_name: str
    student_id: str | None
    course_code: str | None


class RequestRefused(ConsultEaseError):
    """The request cannot be made or changed (a rule, not a fault): shown as it is."""


class KioskRequests:
    """A kiosk's requests, over short transactions (see the module docstring)."""

    def __init__(self, database_url: str, *, application_name: str = "consultease-kiosk") -> None:
        self._url = database_url
        self._application_name = application_name

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        conn = connect(self._url, application_name=self._application_name)
        try:
            with conn.transaction():
                yield conn
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"the database is not reachable: {first_line(exc)}") from exc
        finally:
            conn.close()

    def create(self, request: NewRequest) -> ConsultationView:
        """A new pending request; refused when the lecturer is not available now or the
        student already has an open request with them."""
        try:
            with self._transaction() as conn:
                row = conn.execute(
                    "SELECT name, status, desk_online, always_available, active FROM faculty"
                    " WHERE id = %s FOR SHARE",
                    (request.faculty_id,),
                ).fetchone()
                if row is None or not row[4]:
                    raise NotFound(f"no faculty with id {request.faculty_id}")
                name, status, online, always = str(row[0]), str(row[1]), bool(row[2]), bool(row[3])
                if not always and (status != "available" or not online):
                    shown = "offline" if not online else status
                    raise RequestRefused(f"{name} is {shown} right now: try again later")
                created = conn.execute(
                    "INSERT INTO consultation"
                    " (faculty_id, student_name, student_id, course_code, message)"
                    " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                    (
                        request.faculty_id,
                        request.student_name,
                        request.student_id,
                        request.course_code,
                        request.message,
                    ),
                ).fetchone()
                assert created is not None
                [view] = load_consultations(conn, [int(created[0])])
                return view
        except pg_errors.UniqueViolation as exc:
            raise RequestRefused(
                "you already have an open request with this lecturer: see it on the board"
            ) from exc
        except pg_errors.CheckViolation as exc:
            raise ValidationError(f"the request was refused: {first_line(exc)}") from exc

    def cancel(self, consultation_id: int) -> ConsultationView:
        """Cancel an open request (the student's own, ``closed_by = 'student'``).

        A request that has just been answered or closed is returned as it is, so
        the kiosk shows what happened instead of an error."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT status FROM consultation WHERE id = %s FOR UPDATE", (consultation_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no consultation request {consultation_id}")
            if row[0] in ("pending", "accepted"):
                conn.execute(
                    "UPDATE consultation SET status = 'cancelled', closed_by = 'student'"
                    " WHERE id = %s",
                    (consultation_id,),
                )
            [view] = load_consultations(conn, [consultation_id])
            return view

    def get(self, consultation_id: int) -> ConsultationView:
        with self._transaction() as conn:
            views = load_consultations(conn, [consultation_id])
        if not views:
            raise NotFound(f"no consultation request {consultation_id}")
        return views[0]

    def card_holder(self, uid: str) -> CardHolder | None:
        """The active student whose card has ``uid``, or ``None``."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT name, student_id, course_code FROM consultease_student_by_rfid_v1(%s)",
                (uid,),
            ).fetchone()
        if row is None:
            return None
        return CardHolder(student_name=str(row[0]), student_id=row[1], course_code=row[2])
