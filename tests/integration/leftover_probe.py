"""Run only by test_no_leftovers.py, as a pytest session of its own: it starts
every kind of server the fixtures and tests start, then fails or waits to be
interrupted. Not collected with the suite (the name does not match test_*.py).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg
from pytest_mqtt.model import MqttSettings

from consultease.tools.servers import MosquittoInstance


def test_start_servers_then_fail_or_wait(
    pg_admin_url: str, mqtt_settings: MqttSettings, tmp_path: Path
) -> None:
    with psycopg.connect(pg_admin_url) as conn:
        conn.execute("SELECT 1")
    # A fault test's own broker, started without a context manager, as a test
    # that forgets to stop it would.
    if MosquittoInstance.available():
        MosquittoInstance(tmp_path / "own-broker").start()
    Path(os.environ["LEFTOVER_PROBE_READY"]).write_text(
        f"{mqtt_settings.host}:{mqtt_settings.port}"
    )
    if os.environ["LEFTOVER_PROBE_MODE"] == "fail":
        raise AssertionError("this test fails on purpose")
    time.sleep(600)
