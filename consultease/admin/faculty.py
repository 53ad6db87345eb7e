"""Faculty management for admins: optimistic locking, with an audit row written
in the same transaction as every change.

Every write reads the row under ``SELECT … FOR UPDATE`` and decides there, so
nobody can slip a change in between the check and the write. Two kinds of check:

* **whole row** (``expect_version``, what the CLI's ``--expect-version`` gives):
  the write applies only if the row is still at that version; any visible change
  since, a desk's status included, is a ``VersionConflict``.
* **field level** (``edit_fields``, and the ``expect_*`` arguments of
  ``set_status``, ``deactivate``, ``reactivate``; what the kiosk's admin panel
  uses): each field the admin changed carries the value the edit started from.
  It conflicts only when its stored value is now neither that value (someone
  else changed it) nor the new one (someone else made the same change). Fields
  the edit does not name are never written, so another admin's change to them,
  and a desk changing the status all day, stand and never conflict. A conflict
  is a ``FieldConflict`` naming the fields.

Either way the refused attempt is audited (``….conflict``) in its own committed
transaction and changes nothing else; an applied write still bumps the row
version (the trigger does) and is audited with the row before and after.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from consultease.db.connection import first_line, sqlalchemy_engine
from consultease.db.readmodel import view_from_row
from consultease.db.roles import ADMIN_ROLE, transaction
from consultease.db.tables import VIEW_COLUMNS, audit_log, faculty, status_change
from consultease.domain import FacultyView, Source, Status
from consultease.errors import (
    FieldConflict,
    ImportFailed,
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


@dataclass(frozen=True, kw_only=True, slots=True)
class ImportRow:
    """One line of a faculty CSV, validated: the id to keep and the fields."""

    line: int
    faculty_id: int
    fields: FacultyFields


@dataclass(kw_only=True, slots=True)
class ImportReport:
    """What ``import_rows`` did, by faculty id."""

    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


EDITABLE_FIELDS: tuple[str, ...] = ("name", "department", "email", "room", "always_available")
"""What ``edit_fields`` may change."""

FieldValue = str | bool | None


@dataclass(frozen=True, kw_only=True, slots=True)
class FieldEdit:
    """One field an admin changed: the value the edit started from, and the new value.

    ``room`` uses ``None`` (or ``""``) for no room.
    """

    base: FieldValue
    value: FieldValue


def _field_value(view: FacultyView, field: str) -> FieldValue:
    """A field of a row as ``FieldEdit`` and the conflict check compare it."""
    value = getattr(view, field)
    if isinstance(value, Status | Source):
        return value.value
    if field == "room":
        return value or None
    if isinstance(value, str | bool) or value is None:
        return value
    raise TypeError(f"{field} is not a comparable field")  # pragma: no cover


def _normal(field: str, value: FieldValue) -> FieldValue:
    if field == "room" and isinstance(value, str):
        return value.strip() or None
    return value


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
        "always_available": view.always_available,
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
        always_available: bool = False,
        faculty_id: int | None = None,
    ) -> FacultyView:
        """Add a faculty; ``faculty_id`` keeps a given id (a desk has it compiled in)."""
        fields = FacultyFields.clean(name=name, department=department, email=email, room=room)
        with self._transaction() as conn:
            view = _insert(
                conn,
                fields,
                actor=actor,
                status=status,
                always_available=always_available,
                faculty_id=faculty_id,
            )
            if faculty_id is not None:
                _sync_id_sequence(conn)
        return view

    def import_rows(self, rows: Sequence[ImportRow], *, actor: str) -> ImportReport:
        """Create or update each row by its id, in one transaction; idempotent.

        A row whose id is new is created with that id, one whose fields differ is
        updated, one that matches is skipped. Any problem (an email another faculty
        uses) raises ``ImportFailed`` naming every bad line, and nothing is written.
        """
        report = ImportReport()
        errors: list[str] = []
        with self._transaction() as conn:
            for row in rows:
                current = conn.execute(
                    select(*VIEW_COLUMNS).where(faculty.c.id == row.faculty_id).with_for_update()
                ).one_or_none()
                clash = conn.execute(
                    select(faculty.c.id).where(
                        func.lower(faculty.c.email) == row.fields.email.lower(),
                        faculty.c.id != row.faculty_id,
                    )
                ).first()
                if clash is not None:
                    errors.append(
                        f"line {row.line}: email {row.fields.email} is already used by "
                        f"faculty {clash.id}"
                    )
                    continue
                if current is None:
                    _insert(conn, row.fields, actor=actor, faculty_id=row.faculty_id)
                    report.created.append(row.faculty_id)
                    continue
                view = view_from_row(current._mapping)
                wanted = {
                    "name": row.fields.name,
                    "department": row.fields.department,
                    "email": row.fields.email,
                    "room": row.fields.room,
                }
                if all(getattr(view, k) == v for k, v in wanted.items()):
                    report.skipped.append(row.faculty_id)
                    continue
                after = view_from_row(
                    conn.execute(
                        update(faculty)
                        .where(faculty.c.id == row.faculty_id)
                        .values(**wanted)
                        .returning(*VIEW_COLUMNS)
                    )
                    .one()
                    ._mapping
                )
                _audit(
                    conn,
                    actor=actor,
                    action="faculty.edit",
                    faculty_id=row.faculty_id,
                    before=_snapshot(view),
                    after=_snapshot(after),
                )
                report.updated.append(row.faculty_id)
            if errors:
                raise ImportFailed(errors)
            if report.created:
                _sync_id_sequence(conn)
        return report

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
        always_available: bool | None = None,
    ) -> FacultyView:
        """Change the given fields (``room=""`` clears the room), checked on the whole
        row: with ``expect_version``, any visible change since is a ``VersionConflict``."""

        def change(current: FacultyView) -> dict[str, Any]:
            fields = FacultyFields.clean(
                name=current.name if name is None else name,
                department=current.department if department is None else department,
                email=current.email if email is None else email,
                room=current.room if room is None else room,
            )
            values: dict[str, Any] = {
                "name": fields.name,
                "department": fields.department,
                "email": fields.email,
                "room": fields.room,
            }
            if always_available is not None:
                values["always_available"] = always_available
            return values

        return self._versioned_write(faculty_id, "faculty.edit", actor, expect_version, change)

    def edit_fields(
        self,
        faculty_id: int,
        *,
        actor: str,
        edits: Mapping[str, FieldEdit],
        based_on_version: int | None = None,
    ) -> FacultyView:
        """Change only the fields in ``edits``, each checked against its ``base`` value.

        Raises ``FieldConflict`` naming every field whose stored value is neither its
        base nor its new value (nothing is written then). ``based_on_version`` (the
        version the edit started from) is only recorded in the audit trail.
        Validation uses the row as it is now for the fields not named.
        """
        unknown = sorted(set(edits) - set(EDITABLE_FIELDS))
        if unknown:
            raise ValidationError(f"not an editable field: {', '.join(unknown)}", field=unknown[0])

        def change(current: FacultyView) -> dict[str, Any]:
            def text(field: str) -> str | None:
                value = edits[field].value if field in edits else _field_value(current, field)
                if value is not None and not isinstance(value, str):
                    raise ValidationError(f"{field} must be text", field=field)
                return value

            fields = FacultyFields.clean(
                name=text("name") or "",
                department=text("department") or "",
                email=text("email") or "",
                room=text("room"),
            )
            values: dict[str, Any] = {
                field: getattr(fields, field) for field in edits if field != "always_available"
            }
            if "always_available" in edits:
                flag = edits["always_available"].value
                if not isinstance(flag, bool):
                    raise ValidationError("always_available must be true or false")
                values["always_available"] = flag
            return values

        based_on = {field: _normal(field, edit.base) for field, edit in edits.items()}
        return self._versioned_write(
            faculty_id,
            "faculty.edit",
            actor,
            None,
            change,
            based_on=based_on,
            based_on_version=based_on_version,
        )

    def deactivate(
        self,
        faculty_id: int,
        *,
        actor: str,
        expect_version: int | None = None,
        expect_active: bool | None = None,
    ) -> FacultyView:
        """Take a faculty off the board; its history stays.

        ``expect_active`` is the field-level check (see the module docstring).
        """
        return self._versioned_write(
            faculty_id,
            "faculty.deactivate",
            actor,
            expect_version,
            lambda _: {"active": False},
            based_on=None if expect_active is None else {"active": expect_active},
        )

    def reactivate(
        self,
        faculty_id: int,
        *,
        actor: str,
        expect_version: int | None = None,
        expect_active: bool | None = None,
    ) -> FacultyView:
        return self._versioned_write(
            faculty_id,
            "faculty.reactivate",
            actor,
            expect_version,
            lambda _: {"active": True},
            based_on=None if expect_active is None else {"active": expect_active},
        )

    def set_status(
        self,
        faculty_id: int,
        status: Status,
        *,
        actor: str,
        expect_version: int | None = None,
        expect_status: Status | None = None,
    ) -> FacultyView:
        """Set the status by hand. The desk's next newer update overrides it.

        ``expect_status`` (the status the admin saw) is the field-level check: it
        conflicts only when the stored status changed to something else meanwhile.
        """
        return self._versioned_write(
            faculty_id,
            "faculty.set_status",
            actor,
            expect_version,
            lambda _: {"status": status.value, "status_source": Source.ADMIN.value},
            record_status_change=True,
            based_on=None if expect_status is None else {"status": expect_status.value},
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
                .values(desk_version=None, desk_ts=None, desk_uptime_ms=None, desk_uptime_at=None)
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
        change: Callable[[FacultyView], dict[str, Any]],
        *,
        record_status_change: bool = False,
        based_on: Mapping[str, FieldValue] | None = None,
        based_on_version: int | None = None,
    ) -> FacultyView:
        with self._transaction() as conn:
            # Locked, so the check and the write are one step: nobody can slip a
            # change in between, and a conflict is known without a second read.
            current = self._get(conn, faculty_id, lock=True)
            values = change(current)
            conflict: VersionConflict | None = None
            if based_on is not None:
                changed = tuple(
                    field
                    for field, base in based_on.items()
                    if _field_value(current, field) not in (base, values.get(field))
                )
                if changed:
                    conflict = FieldConflict(
                        faculty_id=faculty_id,
                        fields=changed,
                        latest=current,
                        based_on_version=based_on_version,
                    )
                    attempt: dict[str, Any] = {
                        "based_on": _jsonable(dict(based_on)),
                        "based_on_version": based_on_version,
                        "conflicting_fields": list(changed),
                    }
            elif expect_version is not None and current.version != expect_version:
                conflict = VersionConflict(
                    faculty_id=faculty_id,
                    expected=expect_version,
                    current=current.version,
                    latest=current,
                )
                attempt = {"expected_version": expect_version}
            if conflict is None:
                return self._write(
                    conn,
                    current,
                    action=action,
                    actor=actor,
                    values=values,
                    record_status_change=record_status_change,
                )
            # Someone else changed the row: record the attempt, write nothing.
            _audit(
                conn,
                actor=actor,
                action=action + ".conflict",
                faculty_id=faculty_id,
                before=_snapshot(current),
                after={**attempt, "attempted": _jsonable(values)},
            )
        # Raised after the commit, so the audit row of the attempt is kept.
        raise conflict

    @staticmethod
    def _write(
        conn: Connection,
        current: FacultyView,
        *,
        action: str,
        actor: str,
        values: dict[str, Any],
        record_status_change: bool,
    ) -> FacultyView:
        """Apply ``values`` to the locked row, audited; nothing (and no audit) if they
        change nothing."""
        faculty_id = current.id
        if all(_field_value(current, field) == value for field, value in values.items()):
            return current
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


def _insert(
    conn: Connection,
    fields: FacultyFields,
    *,
    actor: str,
    status: Status = Status.AWAY,
    always_available: bool = False,
    faculty_id: int | None = None,
) -> FacultyView:
    values = {
        "name": fields.name,
        "department": fields.department,
        "email": fields.email,
        "room": fields.room,
        "status": status.value,
        "status_source": Source.ADMIN.value,
        "always_available": always_available,
    }
    if faculty_id is None:
        row = conn.execute(insert(faculty).values(**values).returning(*VIEW_COLUMNS)).one()
        view = view_from_row(row._mapping)
    else:
        # The id is an identity column (GENERATED ALWAYS): a given one needs OVERRIDING.
        if conn.execute(select(faculty.c.id).where(faculty.c.id == faculty_id)).first():
            raise ValidationError(f"faculty id {faculty_id} is already taken", field="id")
        conn.execute(_INSERT_WITH_ID, {"id": faculty_id, **values})
        view = FacultyAdmin._get(conn, faculty_id)
    _audit(
        conn,
        actor=actor,
        action="faculty.add",
        faculty_id=view.id,
        before=None,
        after=_snapshot(view),
    )
    return view


_INSERT_WITH_ID = text(
    "INSERT INTO faculty (id, name, department, email, room, status, status_source, "
    "always_available) OVERRIDING SYSTEM VALUE VALUES (:id, :name, :department, :email, "
    ":room, :status, :status_source, :always_available)"
)

_SYNC_ID_SEQUENCE = text(
    "SELECT setval('faculty_id_seq', "
    "greatest((SELECT max(id) FROM faculty), "
    "(SELECT last_value FROM faculty_id_seq)))"
)


def _sync_id_sequence(conn: Connection) -> None:
    """Move the id sequence past every given id, so the next generated id is free."""
    conn.execute(_SYNC_ID_SEQUENCE)


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
