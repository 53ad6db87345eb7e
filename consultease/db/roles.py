"""The database roles of ``sql/003_roles.sql``, and the error for a login that lacks one.

Each process connects with a login of its own inside one group role:

- ``consultease_ingest``: the ingest service (desk-driven faculty columns only);
- ``consultease_kiosk``: a kiosk without the admin panel (reads faculty);
- ``consultease_admin``: the admin CLI, and a kiosk that offers the admin panel.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import psycopg
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from consultease.db.connection import first_line
from consultease.errors import ConsultEaseError, DatabaseUnavailable

INGEST_ROLE: Final = "consultease_ingest"
KIOSK_ROLE: Final = "consultease_kiosk"
ADMIN_ROLE: Final = "consultease_admin"


class PermissionDenied(ConsultEaseError):
    """The database login lacks the privileges an operation needs."""

    exit_code = 5


def permission_denied(error: BaseException | None, *, role: str) -> PermissionDenied | None:
    """A ``PermissionDenied`` naming ``role`` when ``error`` is the server's refusal."""
    if isinstance(error, psycopg.errors.InsufficientPrivilege):
        return PermissionDenied(
            f"{first_line(error)}: this needs a database login in the {role} role"
        )
    return None


@contextmanager
def transaction(engine: Engine, *, role: str) -> Iterator[Connection]:
    """``engine.begin()`` with driver errors made clear: a missing privilege names
    ``role``, a lost server is ``DatabaseUnavailable``; anything else passes through."""
    try:
        with engine.begin() as conn:
            yield conn
    except DBAPIError as exc:
        denied = permission_denied(exc.orig, role=role)
        if denied is not None:
            raise denied from exc
        if isinstance(exc.orig, psycopg.OperationalError):
            raise DatabaseUnavailable(f"database error: {first_line(exc.orig)}") from exc
        raise
