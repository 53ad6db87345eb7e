"""Students an RFID card can name (SPEC 9.3): admins add and import them; a kiosk
looks one card up at a time.

A kiosk login never reads the ``student`` table: ``lookup_rfid`` goes through
``consultease_student_by_rfid_v1`` (``sql/007_consultation.sql``), which answers for
one card and says nothing about anyone else. Every admin change is audited in the
same transaction (``student.add``, ``student.import``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from consultease.admin.audit import record
from consultease.consultation import (
    MAX_COURSE_CODE,
    MAX_STUDENT_NAME,
    clean_student_id,
    normalize_rfid_uid,
)
from consultease.db.connection import first_line, sqlalchemy_engine
from consultease.db.roles import ADMIN_ROLE, KIOSK_ROLE, transaction
from consultease.db.tables import student
from consultease.errors import NotFound, ValidationError

IMPORT_COLUMNS: Final = ("student_id", "name", "course_code", "rfid_uid")
"""The CSV header ``import_csv`` reads (``course_code`` and ``rfid_uid`` may be empty)."""
MAX_IMPORT_ROWS: Final = 100_000


@dataclass(frozen=True, kw_only=True, slots=True)
class Student:
    id: int
    student_id: str
    name: str
    course_code: str | None
    rfid_uid: str | None
    active: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class StudentCard:
    """What a card lookup tells the kiosk: enough to fill the request form."""

    student_id: str
    name: str
    course_code: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class StudentFields:
    student_id: str
    name: str
    course_code: str | None
    rfid_uid: str | None

    @classmethod
    def clean(
        cls,
        *,
        student_id: str,
        name: str,
        course_code: str | None = None,
        rfid_uid: str | None = None,
    ) -> StudentFields:
        """Trim and check; the first problem raises ``ValidationError`` naming its field."""
        sid = clean_student_id(student_id)
        clean_name = " ".join(name.split())
        if not clean_name:
            raise ValidationError("the student's name must not be empty", field="name")
        if len(clean_name) > MAX_STUDENT_NAME:
            raise ValidationError(
                f"the student's name is longer than {MAX_STUDENT_NAME} characters", field="name"
            )
        course = " ".join((course_code or "").split()) or None
        if course is not None and len(course) > MAX_COURSE_CODE:
            raise ValidationError(
                f"the course code is longer than {MAX_COURSE_CODE} characters", field="course_code"
            )
        uid = normalize_rfid_uid(rfid_uid) if rfid_uid and rfid_uid.strip() else None
        return cls(student_id=sid, name=clean_name, course_code=course, rfid_uid=uid)

    def values(self) -> dict[str, str | None]:
        return {
            "student_id": self.student_id,
            "name": self.name,
            "course_code": self.course_code,
            "rfid_uid": self.rfid_uid,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class ImportResult:
    added: int
    updated: int


def _student(row: Any) -> Student:
    return Student(**{c.name: row[c.name] for c in student.c})


class Students:
    """The student register. Thread-safe: each call uses its own connection."""

    def __init__(self, database_url: str, *, pooled: bool = False) -> None:
        self._engine: Engine = sqlalchemy_engine(
            database_url, application_name="consultease-students", pooled=pooled
        )

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Students:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self, role: str = ADMIN_ROLE) -> Iterator[Connection]:
        try:
            with transaction(self._engine, role=role) as conn:
                yield conn
        except IntegrityError as exc:
            raise _integrity_message(exc) from exc

    def add(
        self,
        *,
        student_id: str,
        name: str,
        course_code: str | None = None,
        rfid_uid: str | None = None,
        actor: str,
    ) -> Student:
        """Add one student (audited as ``student.add``). A student id or card UID
        already registered is a ``ValidationError`` naming the field."""
        fields = StudentFields.clean(
            student_id=student_id, name=name, course_code=course_code, rfid_uid=rfid_uid
        )
        with self._transaction() as conn:
            row = conn.execute(
                pg_insert(student).values(**fields.values()).returning(*student.c)
            ).one()
            added = _student(row._mapping)
            record(
                conn,
                actor=actor,
                action="student.add",
                target=f"student:{added.student_id}",
                before=None,
                after=fields.values(),
            )
        return added

    def import_csv(self, source: Path | str | Iterable[str], *, actor: str) -> ImportResult:
        """Add or update students from CSV with the header ``student_id,name,course_code,
        rfid_uid`` (a path, or the lines themselves). All or nothing: the first bad line
        raises ``ValidationError`` naming it, and nothing is written. A student id
        already registered is updated (name, course, card). Audited as one
        ``student.import`` row."""
        rows = list(_read_csv(source))
        added = updated = 0
        with self._transaction() as conn:
            for line, fields in rows:
                values = pg_insert(student).values(**fields.values())
                statement = values.on_conflict_do_update(
                    index_elements=[func.lower(student.c.student_id)],
                    set_={
                        "name": values.excluded.name,
                        "course_code": values.excluded.course_code,
                        "rfid_uid": values.excluded.rfid_uid,
                        "active": True,
                    },
                ).returning(text("xmax = 0 AS inserted"))
                try:
                    with conn.begin_nested():
                        inserted = conn.execute(statement).scalar_one()
                except IntegrityError as exc:
                    raise ValidationError(
                        f"line {line}: {_integrity_message(exc)}", field="rfid_uid"
                    ) from exc
                added += bool(inserted)
                updated += not inserted
            record(
                conn,
                actor=actor,
                action="student.import",
                target=None,
                before=None,
                after={"added": added, "updated": updated},
            )
        return ImportResult(added=added, updated=updated)

    def list_all(self, *, include_inactive: bool = False) -> list[Student]:
        query = select(*student.c).order_by(func.lower(student.c.name), student.c.id)
        if not include_inactive:
            query = query.where(student.c.active)
        with self._transaction() as conn:
            return [_student(r._mapping) for r in conn.execute(query)]

    def get(self, student_id: str) -> Student:
        with self._transaction() as conn:
            row = conn.execute(
                select(*student.c).where(
                    func.lower(student.c.student_id) == student_id.strip().lower()
                )
            ).one_or_none()
        if row is None:
            raise NotFound(f"no student with id {student_id!r}")
        return _student(row._mapping)

    def lookup_rfid(self, uid: str) -> StudentCard | None:
        """Who holds the card ``uid`` (as the reader typed it), or ``None`` for a card
        nobody registered. Works with a kiosk login."""
        normal = normalize_rfid_uid(uid)
        with self._transaction(KIOSK_ROLE) as conn:
            row = conn.execute(
                text("SELECT * FROM consultease_student_by_rfid_v1(:uid)"), {"uid": normal}
            ).one_or_none()
        if row is None:
            return None
        return StudentCard(student_id=row.student_id, name=row.name, course_code=row.course_code)


def _read_csv(source: Path | str | Iterable[str]) -> Iterator[tuple[int, StudentFields]]:
    if isinstance(source, Path | str):
        try:
            handle: Iterable[str] = io.StringIO(Path(source).read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(f"cannot read {source}: {exc}", field="file") from None
    else:
        handle = source
    reader = csv.DictReader(handle)
    header = tuple(h.strip().lower() for h in (reader.fieldnames or ()))
    missing = [c for c in ("student_id", "name") if c not in header]
    if missing:
        raise ValidationError(
            f"the CSV header must name {', '.join(IMPORT_COLUMNS)}; missing {', '.join(missing)}",
            field="file",
        )
    reader.fieldnames = list(header)
    seen: dict[str, int] = {}
    for index, raw in enumerate(reader, start=2):
        if index > MAX_IMPORT_ROWS + 1:
            raise ValidationError(f"more than {MAX_IMPORT_ROWS} rows", field="file")
        if not any((v or "").strip() for v in raw.values() if isinstance(v, str)):
            continue
        try:
            fields = StudentFields.clean(
                student_id=raw.get("student_id") or "",
                name=raw.get("name") or "",
                course_code=raw.get("course_code"),
                rfid_uid=raw.get("rfid_uid"),
            )
        except ValidationError as exc:
            raise ValidationError(f"line {index}: {exc}", field=exc.field) from None
        key = fields.student_id.lower()
        if key in seen:
            raise ValidationError(
                f"line {index}: student id {fields.student_id} is also on line {seen[key]}",
                field="student_id",
            )
        seen[key] = index
        yield index, fields


def _integrity_message(exc: IntegrityError) -> ValidationError:
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    if constraint == "student_student_id_key":
        return ValidationError("a student with this id is already registered", field="student_id")
    if constraint == "student_rfid_uid_key":
        return ValidationError(
            "this RFID card is already registered to a student", field="rfid_uid"
        )
    return ValidationError(f"the database refused the student: {first_line(exc.orig or exc)}")
