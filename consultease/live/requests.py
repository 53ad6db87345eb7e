"""What a kiosk does with consultation requests: make one, cancel it, read a card.

``KioskRequests`` is the kiosk's whole write surface for SPEC 9, called from the
kiosk's worker thread (never the GUI thread). The writes are the backend's
(``consultease.db.consultations.Consultations`` and
``consultease.db.students.Students``: the rule, the row lock, the triggers); this
adds what a kiosk shows beside them: the request read back as a
``ConsultationView`` (the lecturer's name and room, the database clock), from the
same query the watcher uses.

A kiosk login (``consultease_kiosk``) may do all of this: create a request, read
and cancel its own, and look up one card.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from consultease.consultation import ClosedBy
from consultease.db.connection import connect
from consultease.db.consultations import Consultations
from consultease.db.students import Students
from consultease.errors import NotFound, TransitionRefused
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
    """Who a card belongs to, as far as a kiosk may know."""

    student_name: str
    student_id: str | None
    course_code: str | None


class KioskRequests:
    """A kiosk's requests (see the module docstring). Thread-safe; ``close()`` at the end."""

    def __init__(self, database_url: str, *, application_name: str = "consultease-kiosk") -> None:
        self._url = database_url
        self._application_name = application_name
        self._consultations = Consultations(database_url)
        self._students = Students(database_url)

    def close(self) -> None:
        self._consultations.close()
        self._students.close()

    def create(self, request: NewRequest) -> ConsultationView:
        """A new pending request. Refused (``ValidationError``, one line a student can
        act on) when the lecturer is no longer available or the student already has
        an open request with them."""
        created = self._consultations.create_request(
            faculty_id=request.faculty_id,
            student_name=request.student_name,
            student_id=request.student_id,
            course_code=request.course_code,
            message=request.message,
            require_available=True,
        )
        return self.get(created.id)

    def cancel(self, consultation_id: int) -> ConsultationView:
        """Cancel the student's open request. One answered or closed meanwhile is
        returned as it now is, so the kiosk shows what happened instead of an error."""
        with contextlib.suppress(TransitionRefused):
            self._consultations.cancel(consultation_id, by=ClosedBy.STUDENT)
        return self.get(consultation_id)

    def get(self, consultation_id: int) -> ConsultationView:
        with connect(self._url, application_name=self._application_name) as conn:
            views = load_consultations(conn, [consultation_id])
        if not views:
            raise NotFound(f"no consultation request {consultation_id}")
        return views[0]

    def card_holder(self, uid: str) -> CardHolder | None:
        """The active student whose card has ``uid``, or ``None``."""
        card = self._students.lookup_rfid(uid)
        if card is None:
            return None
        return CardHolder(
            student_name=card.name, student_id=card.student_id, course_code=card.course_code
        )
