"""Opening database connections, and the driver errors we treat as retryable."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool, QueuePool

from consultease.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
    psycopg.OperationalError,
)
"""Errors after which the same transaction may simply be tried again.

``OperationalError`` covers a dropped connection and a server that is
restarting (``AdminShutdown`` and ``CannotConnectNow`` are subclasses).
"""

CONTENT_ERRORS: tuple[type[Exception], ...] = (
    pg_errors.DataError,
    pg_errors.IntegrityError,
    UnicodeEncodeError,
)
"""Errors that blame what was written, not the database: retrying cannot help."""

CONNECT_TIMEOUT = 5


def connect(
    url: str, *, autocommit: bool = False, application_name: str = "consultease", **kwargs: Any
) -> psycopg.Connection[TupleRow]:
    """Open one connection, translating failure into ``DatabaseUnavailable``.

    Sessions always run in UTC so that timestamps read back compare cleanly.
    """
    try:
        return psycopg.connect(
            url,
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT,
            application_name=application_name,
            options="-c timezone=UTC",
            **kwargs,
        )
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to the database: {first_line(exc)}") from exc


def sqlalchemy_engine(url: str, *, application_name: str, pooled: bool = False) -> Engine:
    """A SQLAlchemy engine whose connections come from ``connect`` (same timeouts,
    same UTC session). Pooled for long-lived processes such as the kiosk."""
    return create_engine(
        "postgresql+psycopg://",
        creator=lambda: connect(url, application_name=application_name),
        poolclass=QueuePool if pooled else NullPool,
    )


def first_line(exc: BaseException) -> str:
    """The first line of an error message: driver errors can run to several."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def describe_database(url: str) -> str:
    """``host:port/dbname`` (user, never the password) for logs."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        return "(unparsable database URL)"
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or "5432"
    user = f"{params['user']}@" if params.get("user") else ""
    return f"{user}{host}:{port}/{params.get('dbname', '')}"
