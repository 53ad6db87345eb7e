"""Run only by test_no_leftovers.py, as a pytest session of its own: it starts
every kind of server the fixtures and tests start, then fails or waits to be
interrupted. Not collected with the suite (the name does not match test_*.py).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psycopg
from pytest_mqtt.model import MqttSettings

from consultease.tools.servers import MosquittoInstance
from tests.support.pg import private_servers_forced


def test_start_servers_then_fail_or_wait(
    pg_admin_url: str, mqtt_settings: MqttSettings, tmp_path: Path
) -> None:
    pids: list[int] = []
    with psycopg.connect(pg_admin_url) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert backend is not None
        if private_servers_forced():
            # The backend (alive while connected) is a child of the private
            # postmaster, which pg_ctl daemonised.
            stat = Path(f"/proc/{backend[0]}/stat").read_text()
            pids.append(int(stat.rsplit(")", 1)[1].split()[1]))
    # A fault test's own broker, started without a context manager, as a test
    # that forgets to stop it would.
    if MosquittoInstance.available():
        broker = MosquittoInstance(tmp_path / "own-broker").start()
        assert broker.pid is not None
        pids.append(broker.pid)
    Path(os.environ["LEFTOVER_PROBE_READY"]).write_text(json.dumps({"pids": pids}))
    if os.environ["LEFTOVER_PROBE_MODE"] == "fail":
        raise AssertionError("this test fails on purpose")
    time.sleep(600)
