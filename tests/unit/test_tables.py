"""The one description of the faculty columns, and the readers that rely on it."""

from __future__ import annotations

from dataclasses import fields

from consultease.db.tables import VIEW_COLUMNS, faculty
from consultease.domain import FacultyView
from consultease.ingest.store import LOCKED_COLUMNS


def test_view_columns_are_exactly_the_fields_of_faculty_view() -> None:
    assert [c.name for c in VIEW_COLUMNS] == [f.name for f in fields(FacultyView)]


def test_every_column_a_reader_names_is_a_faculty_column() -> None:
    names = set(faculty.c.keys())
    assert set(LOCKED_COLUMNS) <= names
    assert {c.name for c in VIEW_COLUMNS} <= names
