"""Scratch space for the benchmarks: a migrated database of their own, and faculty rows
created in one statement and removed with their history."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator, Sequence

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from consultease.db.connection import connect
from consultease.db.migrate import upgrade
from consultease.errors import ConsultEaseError

log = logging.getLogger(__name__)

BENCH_DEPARTMENT = "Benchmark"


def create_bench_rows(database_url: str, rows: int) -> list[int]:
    """``rows`` new faculty (status away, desk offline), with unique e-mail addresses."""
    tag = uuid.uuid4().hex[:10]
    with connect(database_url, application_name="consultease-bench") as conn, conn.transaction():
        return sorted(
            int(row[0])
            for row in conn.execute(
                "INSERT INTO faculty (name, department, email) "
                "SELECT 'Bench desk ' || n, %s, 'bench-' || %s || '-' || n || '@bench.invalid' "
                "FROM generate_series(1, %s) AS n RETURNING id",
                (BENCH_DEPARTMENT, tag, rows),
            ).fetchall()
        )


def delete_bench_rows(database_url: str, ids: Sequence[int]) -> None:
    with connect(database_url, application_name="consultease-bench") as conn, conn.transaction():
        conn.execute("DELETE FROM status_change WHERE faculty_id = ANY(%s)", (list(ids),))
        conn.execute("DELETE FROM faculty WHERE id = ANY(%s)", (list(ids),))


@contextlib.contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A new, migrated database on the same server, dropped afterwards: the bench
    never writes into the database it was pointed at."""
    name = f"consultease_bench_{uuid.uuid4().hex[:10]}"
    params = conninfo_to_dict(server_url)
    try:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise ConsultEaseError(
            f"the benchmark needs to create a scratch database: {exc}".splitlines()[0]
        ) from exc
    log.info("benchmark scratch database %s (dropped afterwards)", name)
    params["dbname"] = name
    url = make_conninfo(**params)  # type: ignore[arg-type]
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
