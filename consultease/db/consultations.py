"""Consultation requests in the database (SPEC 9.1): create, read, cancel, complete, expire.

Every change reads the request under ``SELECT … FOR UPDATE`` and decides with the
pure rule (``consultease.consultation.transition``), so nobody can slip a change in
between the check and the write; the trigger of ``sql/007_consultation.sql`` refuses
an invalid transition whoever writes, stamps ``responded_at``/``closed_at`` from the
database clock, bumps ``version`` and sends ``pg_notify('consultation_changed', …)``.
The desk hears of a change from the ingest service's dispatcher, which reads those
notifications (``consultease.ingest.dispatcher``): nothing here talks to the broker.

Lock order (the same everywhere, so two writers can never wait on each other in a
cycle): faculty rows first, then consultation rows, each in ascending id order. Only
the ingest service's desk answers take both (a BUSY also sets the lecturer busy);
everything here takes consultation rows only (creating one takes the FK's share lock
on its faculty row, and nothing else).

Who may call what is up to the database login (``sql/007_consultation.sql``): a kiosk
login creates requests and reads and cancels its own; an admin login does everything
(and then passes ``actor``, so each action is audited in the same transaction); the
ingest login expires them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from consultease.admin.audit import record
from consultease.consultation import (
    OPEN_STATUSES,
    ClosedBy,
    ConsultationEvent,
    ConsultationStatus,
    Refusal,
    RequestFields,
    closed_by,
    transition,
)
from consultease.db.connection import first_line, sqlalchemy_engine
from consultease.db.roles import ADMIN_ROLE, KIOSK_ROLE, transaction
from consultease.db.tables import consultation, faculty
from consultease.domain import Status
from consultease.errors import NotFound, TransitionRefused, ValidationError

MAX_LIST: Final = 10_000
CHANNEL: Final = "consultation_changed"
"""The NOTIFY channel of ``sql/007_consultation.sql``."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Consultation:
    """One request as stored."""

    id: int
    faculty_id: int
    student_name: str
    student_id: str | None
    course_code: str | None
    message: str
    status: ConsultationStatus
    version: int
    created_at: datetime
    updated_at: datetime
    responded_at: datetime | None
    closed_at: datetime | None
    closed_by: ClosedBy | None
    delivered_at: datetime | None
    """When the desk's broker last took the ``CID:`` text (PUBACK); ``None``: never."""
    delivery_attempts: int

    @property
    def open(self) -> bool:
        return self.status.open

    def snapshot(self) -> dict[str, Any]:
        """What the audit trail records of a request."""
        return {
            "faculty_id": self.faculty_id,
            "student_name": self.student_name,
            "student_id": self.student_id,
            "course_code": self.course_code,
            "status": self.status.value,
            "closed_by": self.closed_by.value if self.closed_by else None,
            "version": self.version,
        }


COLUMNS: Final = (
    consultation.c.id,
    consultation.c.faculty_id,
    consultation.c.student_name,
    consultation.c.student_id,
    consultation.c.course_code,
    consultation.c.message,
    consultation.c.status,
    consultation.c.version,
    consultation.c.created_at,
    consultation.c.updated_at,
    consultation.c.responded_at,
    consultation.c.closed_at,
    consultation.c.closed_by,
    consultation.c.delivered_at,
    consultation.c.delivery_attempts,
)
"""The columns behind ``Consultation``, in its field order."""


def from_row(row: Any) -> Consultation:
    """A ``Consultation`` from a row of ``COLUMNS`` (a mapping or a sequence in that order)."""
    names = [c.name for c in COLUMNS]
    values = dict(row) if hasattr(row, "keys") else dict(zip(names, row, strict=True))
    values["status"] = ConsultationStatus(values["status"])
    values["closed_by"] = ClosedBy(values["closed_by"]) if values["closed_by"] else None
    return Consultation(**{c.name: values[c.name] for c in COLUMNS})


class Consultations:
    """Consultation requests. Thread-safe: each call uses its own connection."""

    def __init__(self, database_url: str, *, pooled: bool = False) -> None:
        self._engine: Engine = sqlalchemy_engine(
            database_url, application_name="consultease-consultation", pooled=pooled
        )

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Consultations:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self, role: str) -> Iterator[Connection]:
        try:
            with transaction(self._engine, role=role) as conn:
                yield conn
        except IntegrityError as exc:
            raise _integrity_message(exc) from exc

    # -- creating -----------------------------------------------------------------

    def create_request(
        self,
        *,
        faculty_id: int,
        student_name: str,
        student_id: str | None = None,
        course_code: str | None = None,
        message: str,
        require_available: bool = False,
        actor: str | None = None,
    ) -> Consultation:
        """A new pending request to ``faculty_id``; returns it as stored.

        Raises ``ValidationError`` (with ``field``) for bad input, ``NotFound`` for
        an unknown or deactivated lecturer, and a ``ValidationError`` when the
        student already has an open request with this lecturer. With
        ``require_available`` (what the kiosk's button uses) a lecturer who is not
        shown as available is refused too; without it (the CLI) a request to an
        away or offline desk waits there until the desk comes back. ``actor``
        (an admin login) audits the request as ``consultation.request``.
        """
        fields = RequestFields.clean(
            student_name=student_name,
            student_id=student_id,
            course_code=course_code,
            message=message,
        )
        role = ADMIN_ROLE if actor else KIOSK_ROLE
        with self._transaction(role) as conn:
            lecturer = conn.execute(
                select(
                    faculty.c.name,
                    faculty.c.status,
                    faculty.c.desk_online,
                    faculty.c.always_available,
                ).where(faculty.c.id == faculty_id, faculty.c.active)
            ).one_or_none()
            if lecturer is None:
                raise NotFound(f"no active faculty with id {faculty_id}")
            if require_available and not (
                lecturer.always_available
                or (lecturer.desk_online and lecturer.status == Status.AVAILABLE.value)
            ):
                shown = lecturer.status if lecturer.desk_online else "offline"
                raise ValidationError(
                    f"{lecturer.name} is {shown}: requests are open while they are available",
                    field="faculty_id",
                )
            row = conn.execute(
                insert(consultation)
                .values(
                    faculty_id=faculty_id,
                    student_name=fields.student_name,
                    student_id=fields.student_id,
                    course_code=fields.course_code,
                    message=fields.message,
                )
                .returning(*COLUMNS)
            ).one()
            created = from_row(row._mapping)
            if actor:
                record(
                    conn,
                    actor=actor,
                    action="consultation.request",
                    target=f"consultation:{created.id}",
                    before=None,
                    after=created.snapshot(),
                )
        return created

    # -- reading ------------------------------------------------------------------

    def get(self, consultation_id: int) -> Consultation:
        """The request, as the login may see it; ``NotFound`` when it may not or it
        does not exist."""
        with self._transaction(KIOSK_ROLE) as conn:
            row = conn.execute(
                select(*COLUMNS).where(consultation.c.id == consultation_id)
            ).one_or_none()
        if row is None:
            raise NotFound(f"no consultation request with id {consultation_id}")
        return from_row(row._mapping)

    def list_requests(
        self,
        *,
        faculty_id: int | None = None,
        open_only: bool = False,
        statuses: Sequence[ConsultationStatus] = (),
        limit: int = 200,
    ) -> list[Consultation]:
        """Requests, newest first: all of them, or one lecturer's, or only the open ones."""
        if not 1 <= limit <= MAX_LIST:
            raise ValidationError(f"--limit must be between 1 and {MAX_LIST}", field="limit")
        query = select(*COLUMNS).order_by(consultation.c.id.desc()).limit(limit)
        if faculty_id is not None:
            query = query.where(consultation.c.faculty_id == faculty_id)
        wanted = set(statuses) | (set(OPEN_STATUSES) if open_only else set())
        if wanted:
            query = query.where(consultation.c.status.in_(sorted(s.value for s in wanted)))
        with self._transaction(KIOSK_ROLE) as conn:
            return [from_row(r._mapping) for r in conn.execute(query)]

    def list_open(self, *, faculty_id: int | None = None) -> list[Consultation]:
        """The open (pending or accepted) requests, oldest first: what an admin works through."""
        rows = self.list_requests(faculty_id=faculty_id, open_only=True, limit=MAX_LIST)
        return sorted(rows, key=lambda c: c.id)

    def open_counts(self) -> dict[int, int]:
        """Open requests per lecturer id (the admin panel's overview)."""
        query = (
            select(consultation.c.faculty_id, func.count())
            .where(consultation.c.status.in_([s.value for s in OPEN_STATUSES]))
            .group_by(consultation.c.faculty_id)
        )
        with self._transaction(KIOSK_ROLE) as conn:
            return {int(fid): int(n) for fid, n in conn.execute(query)}

    # -- changing -----------------------------------------------------------------

    def cancel(
        self,
        consultation_id: int,
        *,
        by: ClosedBy = ClosedBy.STUDENT,
        actor: str | None = None,
    ) -> Consultation:
        """Withdraw a pending or accepted request (the desk then gets a cancellation).

        ``by`` is who cancels: the student (the kiosk) or an admin (``actor`` is then
        their login, and the action is audited as ``consultation.cancel``).
        ``TransitionRefused`` when it is already closed.
        """
        return self._step(consultation_id, ConsultationEvent.CANCEL, by=by, actor=actor)

    def complete(
        self,
        consultation_id: int,
        *,
        by: ClosedBy = ClosedBy.ADMIN,
        actor: str | None = None,
    ) -> Consultation:
        """Close an accepted request as held (audited as ``consultation.complete``
        with ``actor``). ``TransitionRefused`` unless it is accepted."""
        return self._step(consultation_id, ConsultationEvent.COMPLETE, by=by, actor=actor)

    def _step(
        self,
        consultation_id: int,
        event: ConsultationEvent,
        *,
        by: ClosedBy,
        actor: str | None,
    ) -> Consultation:
        role = ADMIN_ROLE if actor else KIOSK_ROLE
        with self._transaction(role) as conn:
            row = conn.execute(
                select(*COLUMNS).where(consultation.c.id == consultation_id).with_for_update()
            ).one_or_none()
            if row is None:
                raise NotFound(f"no consultation request with id {consultation_id}")
            before = from_row(row._mapping)
            target = transition(before.status, event)
            if isinstance(target, Refusal):
                raise refused(before, target)
            after_row = conn.execute(
                update(consultation)
                .where(consultation.c.id == consultation_id)
                .values(status=target.value, closed_by=_closer(event, by))
                .returning(*COLUMNS)
            ).one()
            after = from_row(after_row._mapping)
            if actor:
                record(
                    conn,
                    actor=actor,
                    action=f"consultation.{event.value}",
                    target=f"consultation:{consultation_id}",
                    before=before.snapshot(),
                    after=after.snapshot(),
                )
        return after

    def expire_due(self, timeout: float) -> list[Consultation]:
        """Expire every request pending for ``timeout`` seconds or more, judged on the
        database clock; returns them. Rows another transaction holds (a desk's answer
        being applied) are skipped and judged at the next call, so this never waits."""
        if timeout <= 0:
            raise ValidationError("the request timeout must be positive", field="timeout")
        return expire_due(self._engine, timeout)


def _closer(event: ConsultationEvent, by: ClosedBy) -> str | None:
    who = closed_by(event, actor=by)
    return who.value if who else None


def refused(current: Consultation, refusal: Refusal) -> TransitionRefused:
    """The error for a step the rule refuses, in words a person reads."""
    if refusal.reason.value == "duplicate":
        message = f"consultation request {current.id} is already {current.status.value}"
    else:
        message = (
            f"consultation request {current.id} is {current.status.value}: "
            f"it cannot be {_PARTICIPLE[refusal.event]}"
        )
    return TransitionRefused(
        message,
        consultation_id=current.id,
        status=current.status.value,
        reason=refusal.reason.value,
    )


_PARTICIPLE: Final = {
    ConsultationEvent.ACKNOWLEDGE: "accepted",
    ConsultationEvent.BUSY: "declined",
    ConsultationEvent.CANCEL: "cancelled",
    ConsultationEvent.EXPIRE: "expired",
    ConsultationEvent.COMPLETE: "completed",
}


def expire_due(engine: Engine, timeout: float) -> list[Consultation]:
    """``Consultations.expire_due`` on a given engine (the ingest service's sweeper)."""
    due = (
        select(consultation.c.id)
        .where(
            consultation.c.status == ConsultationStatus.PENDING.value,
            consultation.c.created_at <= func.now() - func.make_interval(0, 0, 0, 0, 0, 0, timeout),
        )
        .order_by(consultation.c.id)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    statement = (
        update(consultation)
        .where(
            and_(
                consultation.c.id.in_(select(due.c.id)),
                consultation.c.status == ConsultationStatus.PENDING.value,
            )
        )
        .values(
            status=ConsultationStatus.EXPIRED.value,
            closed_by=ClosedBy.SYSTEM.value,
        )
        .returning(*COLUMNS)
    )
    with transaction(engine, role="consultease_ingest") as conn:
        rows = conn.execute(statement).all()
    return sorted((from_row(r._mapping) for r in rows), key=lambda c: c.id)


def _integrity_message(exc: IntegrityError) -> ValidationError:
    """A broken constraint as one line a person can act on."""
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    if constraint == "consultation_one_open_per_student_key":
        return ValidationError(
            "this student already has an open request with this lecturer", field="student_id"
        )
    if constraint == "consultation_faculty_id_fkey":
        return ValidationError("no such faculty", field="faculty_id")
    return ValidationError(f"the database refused the request: {first_line(exc.orig or exc)}")
