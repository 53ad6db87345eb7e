"""Reading faculty rows as ``FacultyView``: one query, shared by every reader.

The columns come from the one description of the table (``tables.VIEW_COLUMNS``)
and rows are mapped by column name, so adding a column cannot shift the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from consultease.db.tables import VIEW_COLUMNS
from consultease.domain import FacultyView, Source, Status

_SELECT_VIEWS = sql.SQL(
    """
SELECT {columns}
FROM faculty
WHERE (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
  AND (active OR %(include_inactive)s)
ORDER BY lower(department), lower(name), id
"""
).format(columns=sql.SQL(", ").join(sql.Identifier(column.name) for column in VIEW_COLUMNS))


def view_from_row(row: Mapping[Any, Any]) -> FacultyView:
    """A ``FacultyView`` from a row mapped by column name (psycopg ``dict_row``, or
    a SQLAlchemy row's ``_mapping``)."""
    return FacultyView(
        id=int(row["id"]),
        name=row["name"],
        department=row["department"],
        email=row["email"],
        room=row["room"],
        status=Status(row["status"]),
        status_source=Source(row["status_source"]),
        desk_online=bool(row["desk_online"]),
        active=bool(row["active"]),
        version=int(row["version"]),
        last_seen=row["last_seen"],
        updated_at=row["updated_at"],
        always_available=bool(row["always_available"]),
        status_since=row["status_since"],
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
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _SELECT_VIEWS,
            {"ids": None if ids is None else list(ids), "include_inactive": include_inactive},
        ).fetchall()
    return [view_from_row(r) for r in rows]
