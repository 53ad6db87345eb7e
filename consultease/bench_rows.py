"""Faculty rows for the benchmarks: created in one statement, removed with their history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from consultease.db import connect

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
