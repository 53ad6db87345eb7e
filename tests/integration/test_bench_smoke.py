"""``consultease bench --desks 50 --duration 5``: the CI smoke run of SPEC 8.

It must finish, print every figure, and write the same figures as JSON,
each one a real measurement (finite and positive where a rate is concerned).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from consultease.tools.bench.ingest import baseline_update_notify


@pytest.mark.slow
def test_bench_smoke_run_prints_every_figure(
    pg_admin_url: str, pytestconfig: pytest.Config, tmp_path: Path
) -> None:
    host = pytestconfig.getoption("--mqtt-host") or "127.0.0.1"
    port = pytestconfig.getoption("--mqtt-port") or 1883
    env = dict(
        os.environ,
        CONSULTEASE_DATABASE_URL=pg_admin_url,
        CONSULTEASE_MQTT_URL=f"mqtt://{host}:{port}",
        COLUMNS="200",
    )
    figures_path = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "consultease",
            "bench",
            "--desks",
            "50",
            "--duration",
            "5",
            "--json",
            str(figures_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for label in (
        "applied updates/s",
        "mean batch size",
        "publish→notification p50 / p99 (flat out)",
        "publish→notification p50 / p99 at 500/s offered",
        "baseline (a) broker pass-through",
        "baseline (b) one UPDATE + NOTIFY per transaction",
        "ratio to baseline (a)",
        "ratio to baseline (b)",
        "peak RSS",
    ):
        assert label in result.stdout, f"{label!r} missing from:\n{result.stdout}"

    figures = json.loads(figures_path.read_text())
    for name in (
        "applied_per_second",
        "published_per_second",
        "mean_batch_size",
        "baseline_broker_per_second",
        "baseline_database_per_second",
        "ingest_peak_rss_mb",
        "offered_latency_p50_ms",
        "offered_latency_p99_ms",
        "ratio_to_broker",
        "ratio_to_database",
    ):
        assert math.isfinite(figures[name]) and figures[name] > 0, (name, figures[name])
    assert figures["offered_latency_samples"] > 100
    assert figures["offered_latency_p50_ms"] <= figures["offered_latency_p99_ms"]

    # The bench works in a scratch database of its own and drops it afterwards.
    with psycopg.connect(pg_admin_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'consultease_bench_%'"
        ).fetchone()
    assert left == (0,)


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(cmdline)
    return found


@pytest.mark.slow
def test_sigterm_stops_the_bench_and_every_service_it_started(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULTEASE_")}
    env["TMPDIR"] = str(tmp_path)  # the bench's private servers live under here
    bench = subprocess.Popen(
        [sys.executable, "-m", "consultease", "bench", "--desks", "5", "--duration", "3"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Mid-run: the private servers are up and the simulated desks are publishing.
        deadline = time.monotonic() + 90
        while not any("desk_firmware_sim" in p for p in _processes_mentioning(str(tmp_path))):
            assert time.monotonic() < deadline, "the bench never started its desks"
            assert bench.poll() is None, "the bench exited early"
            time.sleep(0.1)
        assert any("postgres" in p for p in _processes_mentioning(str(tmp_path)))
        assert any("mosquitto" in p for p in _processes_mentioning(str(tmp_path)))
        bench.send_signal(signal.SIGTERM)
        bench.wait(30)
    finally:
        if bench.poll() is None:
            bench.kill()
    deadline = time.monotonic() + 10
    while _processes_mentioning(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_mentioning(str(tmp_path)) == []


def test_baseline_counts_updates_and_leaves_no_rows(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    assert baseline_update_notify(database_url, duration=0.3, rows=3) > 0
    assert db.execute("SELECT count(*) FROM faculty").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM status_change").fetchone() == (0,)
