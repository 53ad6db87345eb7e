"""Reading faculty rows as ``FacultyView``: one query, shared by every reader."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from consultease.domain import FacultyView, Source, Status

_SELECT_VIEWS = """
SELECT id, name, department, email, room, status, status_source, desk_online, active,
       version, last_seen, updated_at
FROM faculty
WHERE (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
  AND (active OR %(include_inactive)s)
ORDER BY lower(department), lower(name), id
"""


def view_from_row(row: Sequence[Any]) -> FacultyView:
    return FacultyView(
        id=int(row[0]),
        name=row[1],
        department=row[2],
        email=row[3],
        room=row[4],
        status=Status(row[5]),
        status_source=Source(row[6]),
        desk_online=bool(row[7]),
        active=bool(row[8]),
        version=int(row[9]),
        last_seen=row[10],
        updated_at=row[11],
    )


def load_views(
    conn: psycopg.Connection[Any],
    ids: Sequence[int] | None = None,
    *,
    include_inactive: bool = False,
) -> list[FacultyView]:
    """Faculty rows as views, sorted by department then name.

    ``ids=None`` reads every row; otherwise only the given ids (missing ones
    are simply absent from the result).
    """
    rows = conn.execute(
        _SELECT_VIEWS,
        {"ids": None if ids is None else list(ids), "include_inactive": include_inactive},
    ).fetchall()
    return [view_from_row(r) for r in rows]
