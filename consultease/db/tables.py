"""SQLAlchemy Core descriptions of the tables: the one list of their columns.

The schema itself lives in ``sql/`` migrations; these declarations let the
admin code build parameterized statements without string formatting, and give
every reader of faculty rows the same column names (``VIEW_COLUMNS``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

faculty = Table(
    "faculty",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", Text, nullable=False),
    Column("department", Text, nullable=False),
    Column("email", Text, nullable=False),
    Column("room", Text),
    Column("status", Text, nullable=False),
    Column("desk_online", Boolean, nullable=False),
    Column("desk_version", BigInteger),
    Column("desk_ts", DateTime(timezone=True)),
    Column("last_seen", DateTime(timezone=True)),
    Column("status_source", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("always_available", Boolean, nullable=False),
    Column("status_since", DateTime(timezone=True), nullable=False),
)

status_change = Table(
    "status_change",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("faculty_id", BigInteger, nullable=False),
    Column("old_status", Text, nullable=False),
    Column("new_status", Text, nullable=False),
    Column("old_desk_online", Boolean, nullable=False),
    Column("new_desk_online", Boolean, nullable=False),
    Column("source", Text, nullable=False),
    Column("desk_version", BigInteger),
    Column("device_ts", DateTime(timezone=True)),
    Column("changed_at", DateTime(timezone=True)),
)

admin_user = Table(
    "admin_user",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("username", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("failed_attempts", Integer, nullable=False),
    Column("first_failed_at", DateTime(timezone=True)),
    Column("locked_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True)),
    Column("password_changed_at", DateTime(timezone=True)),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text),
    Column("before", JSONB),
    Column("after", JSONB),
    Column("at", DateTime(timezone=True)),
)

consultation = Table(
    "consultation",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("faculty_id", BigInteger, nullable=False),
    Column("student_name", Text, nullable=False),
    Column("student_id", Text),
    Column("course_code", Text),
    Column("message", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("responded_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Column("closed_by", Text),
    Column("created_by", Text, nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Column("delivery_attempts", Integer, nullable=False),
    Column("cancel_sent_at", DateTime(timezone=True)),
)

student = Table(
    "student",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("student_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("course_code", Text),
    Column("rfid_uid", Text),
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

VIEW_COLUMNS = (
    faculty.c.id,
    faculty.c.name,
    faculty.c.department,
    faculty.c.email,
    faculty.c.room,
    faculty.c.status,
    faculty.c.status_source,
    faculty.c.desk_online,
    faculty.c.active,
    faculty.c.version,
    faculty.c.last_seen,
    faculty.c.updated_at,
    faculty.c.always_available,
    faculty.c.status_since,
)
"""The columns behind ``FacultyView``: what every reader selects (``readmodel``, ``admin``)."""
