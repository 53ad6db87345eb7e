"""Throwaway LOGIN roles inside the ConsultEase group roles (sql/003_roles.sql).

Roles are cluster-wide and test sessions may run at once, so every role made
here has a unique name and is dropped when the block ends.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def url_as(url: str, user: str, password: str) -> str:
    """The same server and database, another login."""
    params = conninfo_to_dict(url)
    params.update(user=user, password=password)
    return make_conninfo(**params)  # type: ignore[arg-type]


@contextmanager
def login_in(database_url: str, group: str) -> Iterator[str]:
    """A throwaway LOGIN role in ``group``; yields a URL that connects as it."""
    name = f"ce_test_{group.removeprefix('consultease_')}_{uuid.uuid4().hex[:10]}"
    password = secrets.token_urlsafe(16)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                sql.Identifier(name), sql.Literal(password), sql.Identifier(group)
            )
        )
    try:
        yield url_as(database_url, name, password)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (name,),
            )
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
