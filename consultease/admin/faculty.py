"""Faculty management for admins: optimistic locking on ``faculty.version``,
with an audit row written in the same transaction as every change.

A write names the version it was based on; the ``UPDATE … WHERE version =
expected`` matches no row when someone else got there first, and the caller
gets a ``VersionConflict`` naming the current version. The failed attempt is
audited on its own and changes nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from consultease.db.connection import first_line, sqlalchemy_engine
from consultease.db.readmodel import view_from_row
from consultease.db.roles import ADMIN_ROLE, transaction
from consultease.db.tables import VIEW_COLUMNS, audit_log, faculty, status_change
from consultease.domain import FacultyView, Source, Status
from consultease.errors import (
    NotFound,
    ValidationError,
    VersionConflict,
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_NAME = 200
MAX_EMAIL = 320
MAX_ROOM = 100


@dataclass(frozen=True, kw_only=True, slots=True)
class FacultyFields:
    """The editable fields of a faculty, validated."""

    name: str
    department: str
    email: str
    room: str | None = None

    @classmethod
    def clean(cls, *, name: str, department: str, email: str, room: str | None) -> FacultyFields:
        """Trim and check every field; the first problem raises with its field name."""
        name, department, email = name.strip(), department.strip(), email.strip()
        room = (room or "").strip() or None
        if not name:
            raise ValidationError("name must not be empty", field="name")
        if len(name) > MAX_NAME:
            raise ValidationError(f"name is longer than {MAX_NAME} characters", field="name")
        if not department:
            raise ValidationError("department must not be empty", field="department")
        if len(department) > MAX_NAME:
            raise ValidationError(
                f"department is longer than {MAX_NAME} characters", field="department"
            )
        if len(email) > MAX_EMAIL or not _EMAIL.match(email):
            raise ValidationError(f"not a valid email address: {email!r}", field="email")
        if room is not None and len(room) > MAX_ROOM:
            raise ValidationError(f"room is longer than {MAX_ROOM} characters", field="room")
        return cls(name=name, department=department, email=email, room=room)


def parse_status(text: str) -> Status:
    try:
        return Status(text.strip().lower())
    except ValueError:
        choices = ", ".join(s.value for s in Status)
        raise ValidationError(f"unknown status {text!r} (use {choices})", field="status") from None


def _snapshot(view: FacultyView) -> dict[str, Any]:
    """What the audit trail records of a faculty row."""
    return {
        "name": view.name,
        "department": view.department,
        "email": view.email,
        "room": view.room,
        "status": view.status.value,
        "status_source": view.status_source.value,
        "desk_online": view.desk_online,
        "active": view.active,
        "version": view.version,
    }


class FacultyAdmin:
    """Admin operations on faculty. Thread-safe: each call uses its own connection."""

    def __init__(self, database_url: str, *, pooled: bool = False) -> None:
        self._engine: Engine = sqlalchemy_engine(
            database_url, application_name="consultease-admin", pooled=pooled
        )

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> FacultyAdmin:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        try:
            with transaction(self._engine, role=ADMIN_ROLE) as conn:
                yield conn
        except IntegrityError as exc:
            raise _integrity_message(exc) from exc

    # -- reading --------------------------------------------------------------

    def list_all(self, *, include_inactive: bool = False) -> list[FacultyView]:
        query = select(*VIEW_COLUMNS).order_by(
            func.lower(faculty.c.department), func.lower(faculty.c.name), faculty.c.id
        )
        if not include_inactive:
            query = query.where(faculty.c.active)
        with self._transaction() as conn:
            return [view_from_row(r._mapping) for r in conn.execute(query)]

    def get(self, faculty_id: int) -> FacultyView:
        with self._transaction() as conn:
            return self._get(conn, faculty_id)

    def desk_details(self, faculty_id: int) -> dict[str, Any]:
        """Bookkeeping columns an admin may want to see (not part of FacultyView)."""
        with self._transaction() as conn:
            row = conn.execute(
                select(faculty.c.desk_version, faculty.c.desk_ts, faculty.c.last_seen).where(
                    faculty.c.id == faculty_id
                )
            ).one_or_none()
        if row is None:
            raise NotFound(f"no faculty with id {faculty_id}")
        return dict(row._mapping)

    @staticmethod
    def _get(conn: Connection, faculty_id: int, *, lock: bool = False) -> FacultyView:
        query = select(*VIEW_COLUMNS).where(faculty.c.id == faculty_id)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).one_or_none()
        if row is None:
            raise NotFound(f"no faculty with id {faculty_id}")
        return view_from_row(row._mapping)

    # -- writing --------------------------------------------------------------

    def add(
        self,
        *,
        actor: str,
        name: str,
        department: str,
        email: str,
        room: str | None = None,
        status: Status = Status.AWAY,
    ) -> FacultyView:
        fields = FacultyFields.clean(name=name, department=department, email=email, room=room)
        with self._transaction() as conn:
            row = conn.execute(
                insert(faculty)
                .values(
                    name=fields.name,
                    department=fields.department,
                    email=fields.email,
                    room=fields.room,
                    status=status.value,
                    status_source=Source.ADMIN.value,
                )
                .returning(*VIEW_COLUMNS)
            ).one()
            view = view_from_row(row._mapping)
            _audit(
                conn,
                actor=actor,
                action="faculty.add",
                faculty_id=view.id,
                before=None,
                after=_snapshot(view),
            )
        return view

    def edit(
        self,
        faculty_id: int,
        *,
        actor: str,
        expect_version: int | None = None,
        name: str | None = None,
        department: str | None = None,
        email: str | None = None,
        room: str | None = None,
    ) -> FacultyView:
        """Change the given fields (``room=""`` clears the room)."""

        def change(current: FacultyView) -> dict[str, Any]:
            fields = FacultyFields.clean(
                name=current.name if name is None else name,
                department=current.department if department is None else department,
                email=current.email if email is None else email,
                room=current.room if room is None else room,
            )
            return {
                "name": fields.name,
                "department": fields.department,
                "email": fields.email,
                "room": fields.room,
            }

        return self._versioned_write(faculty_id, "faculty.edit", actor, expect_version, change)

    def deactivate(
        self, faculty_id: int, *, actor: str, expect_version: int | None = None
    ) -> FacultyView:
        """Take a faculty off the board; its history stays."""
        return self._versioned_write(
            faculty_id, "faculty.deactivate", actor, expect_version, lambda _: {"active": False}
        )

    def reactivate(
        self, faculty_id: int, *, actor: str, expect_version: int | None = None
    ) -> FacultyView:
        return self._versioned_write(
            faculty_id, "faculty.reactivate", actor, expect_version, lambda _: {"active": True}
        )

    def set_status(
        self,
        faculty_id: int,
        status: Status,
        *,
        actor: str,
        expect_version: int | None = None,
    ) -> FacultyView:
        """Set the status by hand. The desk's next newer update overrides it."""
        return self._versioned_write(
            faculty_id,
            "faculty.set_status",
            actor,
            expect_version,
            lambda _: {"status": status.value, "status_source": Source.ADMIN.value},
            record_status_change=True,
        )

    def reset_desk(self, faculty_id: int, *, actor: str) -> FacultyView:
        """Forget the desk's version and clock, for a replaced desk unit (SPEC 4)."""
        with self._transaction() as conn:
            current = self._get(conn, faculty_id, lock=True)
            before = conn.execute(
                select(faculty.c.desk_version, faculty.c.desk_ts).where(faculty.c.id == faculty_id)
            ).one()
            conn.execute(
                update(faculty)
                .where(faculty.c.id == faculty_id)
                .values(desk_version=None, desk_ts=None)
            )
            _audit(
                conn,
                actor=actor,
                action="faculty.reset_desk",
                faculty_id=faculty_id,
                before={"desk_version": before.desk_version, "desk_ts": _iso(before.desk_ts)},
                after={"desk_version": None, "desk_ts": None},
            )
        return current

    def _versioned_write(
        self,
        faculty_id: int,
        action: str,
        actor: str,
        expect_version: int | None,
        change: Any,
        *,
        record_status_change: bool = False,
    ) -> FacultyView:
        with self._transaction() as conn:
            # Locked, so the version check and the write are one step: nobody can
            # slip a change in between, and a conflict is known without a second read.
            current = self._get(conn, faculty_id, lock=True)
            expected = current.version if expect_version is None else expect_version
            values = change(current)
            if current.version != expected:
                # Someone else changed the row: record the attempt, write nothing.
                _audit(
                    conn,
                    actor=actor,
                    action=action + ".conflict",
                    faculty_id=faculty_id,
                    before=_snapshot(current),
                    after={"expected_version": expected, "attempted": _jsonable(values)},
                )
                conflict = VersionConflict(
                    faculty_id=faculty_id,
                    expected=expected,
                    current=current.version,
                    latest=current,
                )
            else:
                row = conn.execute(
                    update(faculty)
                    .where(faculty.c.id == faculty_id)
                    .values(**values)
                    .returning(*VIEW_COLUMNS)
                ).one()
                after = view_from_row(row._mapping)
                _audit(
                    conn,
                    actor=actor,
                    action=action,
                    faculty_id=faculty_id,
                    before=_snapshot(current),
                    after=_snapshot(after),
                )
                if record_status_change and after.status is not current.status:
                    conn.execute(
                        insert(status_change).values(
                            faculty_id=faculty_id,
                            old_status=current.status.value,
                            new_status=after.status.value,
                            old_desk_online=current.desk_online,
                            new_desk_online=after.desk_online,
                            source=Source.ADMIN.value,
                        )
                    )
                return after
        # Raised after the commit, so the audit row of the attempt is kept.
        raise conflict


def _audit(
    conn: Connection,
    *,
    actor: str,
    action: str,
    faculty_id: int,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    conn.execute(
        insert(audit_log).values(
            actor=actor, action=action, target=f"faculty:{faculty_id}", before=before, after=after
        )
    )


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, str | int | bool | None) else str(v)) for k, v in values.items()}


def _integrity_message(exc: IntegrityError) -> ValidationError:
    diag = getattr(exc.orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None) or ""
    if constraint == "faculty_email_key":
        return ValidationError("that email is already used by another faculty", field="email")
    return ValidationError(f"rejected by the database: {first_line(exc.orig or exc)}")
