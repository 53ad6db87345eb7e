"""Reading a faculty CSV for ``consultease faculty import`` (SPEC 3.4a): pure, no I/O.

Columns ``id,name,department,email,room`` (a header line first, in any order; ``room``
may be empty or left out). Every problem is collected with its line number, so one
run names every bad line; ``parse_faculty_csv`` raises ``ImportFailed`` if there is any.
"""

from __future__ import annotations

import csv
import io
from typing import Final

from consultease.admin.faculty import FacultyFields, ImportRow
from consultease.errors import ImportFailed, ValidationError

REQUIRED_COLUMNS: Final = ("id", "name", "department", "email")
OPTIONAL_COLUMNS: Final = ("room",)
_ID_LIMIT: Final = 2**63


def parse_faculty_csv(text: str) -> list[ImportRow]:
    """The rows of ``text``, each validated; ``ImportFailed`` names every bad line."""
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    reader.fieldnames = _header(reader)

    rows: list[ImportRow] = []
    problems: list[str] = []
    seen_ids: dict[int, int] = {}
    seen_emails: dict[str, int] = {}
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(f"line {reader.line_num}: {exc}")
            break
        line = reader.line_num
        if None in record:
            problems.append(f"line {line}: more fields than the header names")
            continue
        if all(not (value or "").strip() for value in record.values()):
            continue  # a blank line
        try:
            row = _row(line, record)
        except ValidationError as exc:
            problems.append(f"line {line}: {exc}")
            continue
        email = row.fields.email.lower()
        if row.faculty_id in seen_ids:
            problems.append(
                f"line {line}: id {row.faculty_id} is also on line {seen_ids[row.faculty_id]}"
            )
            continue
        if email in seen_emails:
            problems.append(
                f"line {line}: email {row.fields.email} is also on line {seen_emails[email]}"
            )
            continue
        seen_ids[row.faculty_id] = line
        seen_emails[email] = line
        rows.append(row)
    if problems:
        raise ImportFailed(problems)
    return rows


def _header(reader: csv.DictReader[str]) -> list[str]:
    try:
        header = [name.strip().lower() for name in reader.fieldnames or ()]
    except csv.Error as exc:
        raise ImportFailed([f"line 1: {exc}"]) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if not header or missing or unknown:
        problem = "line 1: the header must name the columns id,name,department,email,room"
        if missing:
            problem += f" (missing: {', '.join(missing)})"
        if unknown:
            problem += f" (unknown: {', '.join(unknown)})"
        raise ImportFailed([problem])
    return header


def _row(line: int, record: dict[str, str | None]) -> ImportRow:
    raw_id = (record.get("id") or "").strip()
    if not raw_id.isascii() or not raw_id.isdigit() or not 0 < int(raw_id) < _ID_LIMIT:
        raise ValidationError(f"id must be a positive integer, got {raw_id!r}", field="id")
    fields = FacultyFields.clean(
        name=record.get("name") or "",
        department=record.get("department") or "",
        email=record.get("email") or "",
        room=record.get("room"),
    )
    return ImportRow(line=line, faculty_id=int(raw_id), fields=fields)
