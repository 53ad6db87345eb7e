"""The ingest benchmark's building blocks run end to end (a smoke test, not a timed one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from consultease.bench_ingest import (
    baseline_update_notify,
    format_report,
    run_ingest_bench,
)
from consultease.services import MosquittoInstance
from tests.support.ingest import private_broker

pytestmark = pytest.mark.slow


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoInstance]:
    with private_broker(tmp_path / "mosquitto") as instance:
        yield instance


def test_baseline_counts_updates_and_leaves_no_rows(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    assert baseline_update_notify(database_url, duration=0.3, rows=3) > 0
    assert db.execute("SELECT count(*) FROM faculty").fetchone() == (0,)


def test_ingest_bench_applies_updates_and_cleans_up(
    broker: MosquittoInstance, database_url: str, db: psycopg.Connection[Any]
) -> None:
    report = run_ingest_bench(
        database_url, broker.url, desks=5, duration=1.0, baseline_duration=0.3, warmup=0.5
    )
    result = report.result
    assert result.applied > 0 and result.applied_per_second > 0
    assert result.batches > 0 and sum(result.batch_sizes.values()) == result.batches
    assert 1 <= result.batch_percentile(0.5) <= result.largest_batch
    assert report.baseline_before > 0 and report.baseline_after > 0
    assert len(format_report(report)) == 3
    assert db.execute("SELECT count(*) FROM faculty").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM status_change").fetchone() == (0,)
