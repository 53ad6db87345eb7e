"""``consultease bench``, small: the CI smoke runs of SPEC 8.

It must finish, print every figure, and write the same figures as JSON, each
one a real measurement taken the way the method says: baselines in the same
rounds, ratios within a round, latency over every message sent, the offered
rate over its window, CPU per update with the state child apart.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from consultease.tools.bench.ingest import baseline_update_notify


def run_bench(
    pg_admin_url: str, pytestconfig: pytest.Config, tmp_path: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    host = pytestconfig.getoption("--mqtt-host") or "127.0.0.1"
    port = pytestconfig.getoption("--mqtt-port") or 1883
    env = dict(
        os.environ,
        CONSULTEASE_DATABASE_URL=pg_admin_url,
        CONSULTEASE_MQTT_URL=f"mqtt://{host}:{port}",
        COLUMNS="250",
    )
    figures_path = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "consultease", "bench", *args, "--json", str(figures_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # The bench works in a scratch database of its own and drops it afterwards
    # (other benches may run on the shared server at the same time: only ours counts).
    [scratch] = re.findall(r"scratch database (consultease_bench_\w+)", result.stderr)
    with psycopg.connect(pg_admin_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (scratch,)
        ).fetchone()
    assert left == (0,)
    return result, json.loads(figures_path.read_text())


@pytest.mark.slow
def test_bench_prints_every_figure_with_its_baselines_from_the_same_rounds(
    pg_admin_url: str, pytestconfig: pytest.Config, tmp_path: Path
) -> None:
    result, figures = run_bench(
        pg_admin_url, pytestconfig, tmp_path,
        "--desks", "1000", "--rounds", "2", "--duration", "3", "--warmup", "1",
        "--offered-rate", "200", "--state-modes", "process,off",
    )  # fmt: skip
    for label in (
        "applied updates/s",
        "baseline (a) broker pass-through",
        "baseline (b) one UPDATE + NOTIFY per transaction",
        "ratio to baseline (a), per round",
        "ratio to baseline (b), per round",
        "mean batch size",
        "notifications per applied update",
        "publish→notification p99, every message (flat out)",
        "publish→notification p99 at 200/s offered",
        "CPU per applied update, ingest process",
        "CPU per message, broker",
        "CPU per message, bare paho subscriber",
        "instructions per applied update",
        "state publisher off: applied/s",
        "load average",
        "peak RSS",
        "consultation request→desk p99",
        "consultation desk answer→kiosk p99",
    ):
        assert label in result.stdout, f"{label!r} missing from:\n{result.stdout}"

    rounds = figures["rounds"]
    assert len(rounds) == 2
    assert rounds[0]["order"] != rounds[1]["order"], "the phases rotate between rounds"
    for r in rounds:
        assert [s["state_mode"] for s in r["services"]] == ["process", "off"]
        for rate in (
            r["passthrough"]["messages_per_second"],
            r["database_per_second"],
            r["services"][0]["applied_per_second"],
            r["services"][1]["applied_per_second"],
        ):
            assert math.isfinite(rate) and rate > 0
        # Each ratio is taken within its round, not between medians of different moments.
        assert r["ratio_to_broker"] == pytest.approx(
            r["services"][0]["applied_per_second"] / r["passthrough"]["messages_per_second"]
        )
        service = r["services"][0]
        assert service["ingest_cpu_us_per_update"] > 0
        assert service["state_cpu_us_per_update"] > 0, "the state child's CPU is its own figure"
        assert r["services"][1]["state_cpu_us_per_update"] == 0, "off: no child"
        assert service["state_published_per_second"] > 0
        assert r["services"][1]["state_published_per_second"] == 0
        assert r["passthrough"]["subscriber_cpu_us_per_message"] > 0
        # Latency covers every message sent in the window, and every one arrived.
        assert service["latency_samples"] > 0 and service["undelivered"] == 0
        paced = r["paced"]
        assert paced["undelivered"] == 0 and paced["latency_samples"] > 0
        assert paced["latency_p50_ms"] <= paced["latency_p99_ms"]
        assert paced["achieved_per_second"] == pytest.approx(200, rel=0.2)
        # The consultation figure: every request reached the desk once, every answer a kiosk.
        consultation = r["consultation"]
        assert consultation["requests"] == consultation["delivered"] == consultation["answered"]
        assert consultation["requests"] > 0 and consultation["duplicates"] == 0
        assert 0 < consultation["delivery_p50_ms"] <= consultation["delivery_p99_ms"]
        assert 0 < consultation["answer_p50_ms"] <= consultation["answer_p99_ms"]

    summary = figures["summary"]
    assert summary["applied_per_second"]["rounds"] == 2
    low, median, high = (summary["applied_per_second"][k] for k in ("low", "median", "high"))
    assert low <= median <= high
    # Realistic traffic: one message per desk per turn, so no batch coalesces a desk.
    assert summary["notifications_per_applied"]["median"] == pytest.approx(1.0, abs=0.05)
    assert figures["instructions"] == "supported" or "not" in figures["instructions"]
    assert len(figures["load_average_before"]) == 3


@pytest.mark.slow
def test_flood_traffic_coalesces_and_the_bench_shows_it(
    pg_admin_url: str, pytestconfig: pytest.Config, tmp_path: Path
) -> None:
    _, figures = run_bench(
        pg_admin_url, pytestconfig, tmp_path,
        "--desks", "20", "--traffic", "flood", "--rounds", "1", "--duration", "3",
        "--warmup", "1", "--offered-rate", "100", "--state-modes", "off",
    )  # fmt: skip
    [r] = figures["rounds"]
    service = r["services"][0]
    assert service["notifications_per_applied"] < 0.5, "bursts of one desk share a row write"
    assert service["undelivered"] == 0, "a coalesced message is delivered by the later write"


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


def _descendants(pid: int) -> dict[int, str]:
    """Live processes below ``pid``, with their command lines."""
    parents: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(proc.name)] = int(stat[1])
            except (OSError, IndexError, ValueError):
                continue
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in found:
                try:
                    found[child] = (
                        Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                    )
                except OSError:
                    continue
                frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow
def test_sigterm_stops_the_bench_and_every_process_it_started(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULTEASE_")}
    env["TMPDIR"] = str(tmp_path)  # the bench's private servers live under here
    command = [
        sys.executable, "-m", "consultease", "bench", "--desks", "5", "--rounds", "1",
        "--duration", "30", "--warmup", "1",
    ]  # fmt: skip
    bench = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen: dict[int, str] = {}
    try:
        # Mid-run, in the service phase: the private servers are up, the desks are
        # publishing, and the ingest service runs with its state publisher child.
        deadline = time.monotonic() + 180
        while not (
            any("consultease.tools.bench.traffic" in c for c in seen.values())
            and any("state-publisher" in c for c in seen.values())
        ):
            assert time.monotonic() < deadline, f"the bench never reached its service: {seen}"
            assert bench.poll() is None, "the bench exited early"
            seen |= _descendants(bench.pid)
            time.sleep(0.1)
        assert any("postgres" in p for p in _processes_mentioning(str(tmp_path)))
        assert any("mosquitto" in p for p in _processes_mentioning(str(tmp_path)))
        seen |= _descendants(bench.pid)
        bench.send_signal(signal.SIGTERM)
        bench.wait(60)
    finally:
        if bench.poll() is None:
            bench.kill()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (
        _processes_mentioning(str(tmp_path)) or any(_alive(pid) for pid in seen)
    ):
        time.sleep(0.2)
    assert _processes_mentioning(str(tmp_path)) == []
    assert {pid: cmd for pid, cmd in seen.items() if _alive(pid)} == {}


def test_baseline_counts_updates_and_leaves_no_rows(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    assert baseline_update_notify(database_url, duration=0.3, rows=3) > 0
    assert db.execute("SELECT count(*) FROM faculty").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM status_change").fetchone() == (0,)
