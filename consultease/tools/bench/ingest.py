"""``consultease bench``: the load test of SPEC section 8.

Everything runs through the real broker and database, and every figure sits
beside baselines measured in the same run:

(a) broker pass-through: the same simulated desks publishing flat out, QoS 1,
    to a plain paho subscriber that only counts;
(b) database: one ``UPDATE`` per transaction from a plain psycopg loop (the
    faculty trigger sends the ``NOTIFY``), the unbatched way to apply changes.

Then the ingest service (its own process, so its peak RSS is its own) takes
the same flat-out desks, and finally a paced load (``--offered-rate``) for the
publish-to-notification latency a student would notice. The desks are
``python -m desk_firmware_sim`` in a child process, with ``--json`` giving
the publish time of every message; a LISTEN connection here stamps each
notification as it arrives, and the two are matched on (faculty, desk version).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families

from consultease.config import MqttEndpoint, Settings
from consultease.db.connection import connect
from consultease.errors import ConsultEaseError
from consultease.tools.bench.scratch import create_bench_rows, delete_bench_rows, scratch_database
from consultease.tools.bench.stats import percentile
from consultease.tools.environment import Endpoints, provide_services
from consultease.tools.servers import free_port

log = logging.getLogger(__name__)

Step = Callable[[str], None]


@dataclass(frozen=True, kw_only=True, slots=True)
class BenchOptions:
    desks: int = 200
    duration: float = 10.0
    warmup: float = 2.0
    offered_rate: float = 500.0
    """Updates per second, all desks together, for the latency phase."""


@dataclass(frozen=True, kw_only=True, slots=True)
class BenchFigures:
    desks: int
    duration: float
    applied_per_second: float
    published_per_second: float
    mean_batch_size: float
    flood_latency_p50_ms: float
    flood_latency_p99_ms: float
    offered_rate: float
    offered_achieved_per_second: float
    offered_latency_p50_ms: float
    offered_latency_p99_ms: float
    offered_latency_samples: int
    baseline_broker_per_second: float
    baseline_database_per_second: float
    ingest_peak_rss_mb: float

    @property
    def ratio_to_broker(self) -> float:
        return self.applied_per_second / self.baseline_broker_per_second

    @property
    def ratio_to_database(self) -> float:
        return self.applied_per_second / self.baseline_database_per_second

    def as_json(self) -> dict[str, float | int]:
        data: dict[str, float | int] = asdict(self)
        data["ratio_to_broker"] = self.ratio_to_broker
        data["ratio_to_database"] = self.ratio_to_database
        return data


# -- the pieces ------------------------------------------------------------------


_NEXT_STATUS = """
UPDATE faculty
SET status = CASE status WHEN 'available' THEN 'busy' WHEN 'busy' THEN 'away'
             ELSE 'available' END
WHERE id = %s
"""


def baseline_update_notify(database_url: str, *, duration: float, rows: int) -> float:
    """Baseline (b): updates per second of one connection doing one ``UPDATE`` per
    transaction. Each changes ``status``, so the row trigger bumps the version and
    sends its ``NOTIFY``: the ingest path's work per change, without batching.
    Uses ``rows`` rows of its own, removed afterwards."""
    ids = create_bench_rows(database_url, rows)
    try:
        with connect(database_url, autocommit=True, application_name="consultease-bench") as conn:
            done = 0
            started = time.perf_counter()
            deadline = started + duration
            while time.perf_counter() < deadline:
                conn.execute(_NEXT_STATUS, (ids[done % len(ids)],))
                done += 1
            elapsed = time.perf_counter() - started
    finally:
        delete_bench_rows(database_url, ids)
    return done / elapsed


class NotificationClock:
    """A LISTEN connection that stamps each (faculty, desk version) as it arrives."""

    def __init__(self, database_url: str) -> None:
        self._conn = connect(database_url, autocommit=True, application_name="consultease-bench")
        self._conn.execute("LISTEN faculty_changed")
        self.arrivals: dict[tuple[int, int], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-listen")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for note in self._conn.notifies(timeout=0.2):
                now = time.time()
                hint = json.loads(note.payload)
                if hint.get("desk_version") is not None:
                    self.arrivals.setdefault((int(hint["id"]), int(hint["desk_version"])), now)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()


def _status_messages(journal: Path, since: float) -> Iterator[dict[str, Any]]:
    """The journal's status messages published at or after ``since`` (Unix time)."""
    with journal.open() as lines:
        for line in lines:
            record = json.loads(line)
            if (
                record.get("type") == "message"
                and record.get("kind") == "status"
                and float(record["t"]) >= since
            ):
                yield record


def latencies_ms(
    journal: Path, arrivals: dict[tuple[int, int], float], *, since: float = 0.0
) -> list[float]:
    """Publish-to-notification delays of the status messages that were notified."""
    found = []
    for record in _status_messages(journal, since):
        key = (int(record["faculty_id"]), int(record["version"]))
        if key in arrivals and record.get("copy", "original") == "original":
            found.append((arrivals[key] - float(record["t"])) * 1000)
    return found


def vacuum(database_url: str) -> None:
    with connect(database_url, autocommit=True, application_name="consultease-bench") as conn:
        conn.execute("VACUUM ANALYZE faculty")


def count_status_messages(journal: Path, *, since: float = 0.0) -> int:
    return sum(1 for _ in _status_messages(journal, since))


@contextlib.contextmanager
def desks(
    endpoints: Endpoints,
    ids: Sequence[int],
    *,
    seconds: float,
    rate_per_minute: float | None,
    workdir: Path,
    name: str,
) -> Iterator[Path]:
    """Simulated desks in a child process, flat out (``rate_per_minute=None``) or
    paced; yields the path of their message journal. Waits for them on exit."""
    journal = workdir / f"{name}.jsonl"
    pace = ["--flood"] if rate_per_minute is None else ["--load", "--rate", f"{rate_per_minute}"]
    command = [
        sys.executable, "-m", "desk_firmware_sim",
        "--mqtt-url", endpoints.mqtt_url,
        "--mqtt-version", endpoints.mqtt_protocol,
        "--faculty-ids", ",".join(map(str, ids)),
        *pace,
        "--duration", f"{seconds}",
        "--seed", "8",
        "--heartbeat-interval", "30",
        "--state-dir", str(workdir / "flash"),
        "--json", str(journal),
        "--no-live", "--quiet",
    ]  # fmt: skip
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        yield journal
        child.wait(seconds + 60)
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait(10)
    if child.returncode != 0:
        raise ConsultEaseError(f"the desk simulator exited with code {child.returncode}")


def broker_passthrough(
    endpoints: Endpoints, ids: Sequence[int], options: BenchOptions, workdir: Path
) -> float:
    """Baseline (a): QoS 1 messages/s from the desks to a plain paho subscriber."""
    endpoint = MqttEndpoint.parse(endpoints.mqtt_url)
    protocol = mqtt.MQTTv5 if endpoints.mqtt_protocol == "5" else mqtt.MQTTv311
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"consultease-bench-sub-{uuid.uuid4().hex[:8]}",
        protocol=protocol,
    )
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set()
    received = [0]

    def count(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        received[0] += 1

    client.on_message = count
    client.connect(endpoint.host, endpoint.port)
    client.subscribe("consultease/faculty/+/status", qos=1)
    client.loop_start()
    try:
        with desks(
            endpoints,
            ids,
            seconds=options.warmup + options.duration,
            rate_per_minute=None,
            workdir=workdir,
            name="passthrough",
        ):
            time.sleep(options.warmup)
            before, started = received[0], time.perf_counter()
            time.sleep(options.duration)
            rate = (received[0] - before) / (time.perf_counter() - started)
    finally:
        client.loop_stop()
        client.disconnect()
    return rate


class IngestProcess:
    """``consultease ingest`` as a child process, read through its metrics endpoint."""

    def __init__(self, endpoints: Endpoints, database_url: str) -> None:
        self.metrics_port = free_port()
        env = dict(
            os.environ,
            CONSULTEASE_DATABASE_URL=database_url,
            CONSULTEASE_MQTT_URL=endpoints.mqtt_url,
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "consultease",
                "ingest",
                "--mqtt-protocol",
                endpoints.mqtt_protocol,
                "--client-id",
                f"consultease-bench-{uuid.uuid4().hex[:8]}",
                "--metrics-port",
                str(self.metrics_port),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while self.metric("consultease_ingest_mqtt_connected") != 1:
            if self.process.poll() is not None or time.monotonic() > deadline:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                self.stop()
                raise ConsultEaseError(
                    "the ingest service did not start: " + (error.strip().splitlines() or ["?"])[-1]
                )
            time.sleep(0.1)

    def metrics(self) -> dict[str, float]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2
            ) as response:
                text = response.read().decode()
        except OSError:
            return {}
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:  # labelled samples are summed over their labels
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
        return values

    def metric(self, name: str) -> float | None:
        return self.metrics().get(name)

    def peak_rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()


# -- the run ----------------------------------------------------------------------


def run_bench(settings: Settings, options: BenchOptions, step: Step) -> BenchFigures:
    # The directory must outlive the services started in it, so it is entered first.
    with (
        tempfile.TemporaryDirectory(prefix="consultease-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        step("starting services")
        endpoints = provide_services(stack, settings, data_dir=workdir, report=log.info)
        database_url = stack.enter_context(scratch_database(endpoints.database_url))
        ids = create_bench_rows(database_url, options.desks)

        step("baseline (b): one UPDATE + NOTIFY per transaction")
        baseline_db = baseline_update_notify(
            database_url, duration=options.duration, rows=options.desks
        )

        step("baseline (a): broker pass-through, QoS 1")
        baseline_broker = broker_passthrough(endpoints, ids, options, workdir)

        vacuum(database_url)  # the baseline left thousands of dead row versions behind

        ingest = IngestProcess(endpoints, database_url)
        stack.callback(ingest.stop)
        clock = NotificationClock(database_url)
        stack.callback(clock.close)

        # Latency first, on a system that is not still digesting a flood.
        step(f"latency at an offered {options.offered_rate:.0f} updates/s")
        # As in the flat-out phase, the first seconds (200 desks connecting and
        # announcing themselves at once) are warm-up, not the steady offered load.
        paced_started = time.time()
        with desks(
            endpoints,
            ids,
            seconds=options.warmup + options.duration,
            rate_per_minute=options.offered_rate * 60 / options.desks,
            workdir=workdir,
            name="paced",
        ) as paced_journal:
            pass
        _settle(ingest)
        measured_from = paced_started + options.warmup
        paced = latencies_ms(paced_journal, clock.arrivals, since=measured_from)
        paced_sent = count_status_messages(paced_journal, since=measured_from)

        step("ingest: desks publishing as fast as they can")
        clock.arrivals.clear()
        with desks(
            endpoints,
            ids,
            seconds=options.warmup + options.duration,
            rate_per_minute=None,
            workdir=workdir,
            name="flood",
        ) as flood_journal:
            time.sleep(options.warmup)
            before, started = ingest.metrics(), time.perf_counter()
            time.sleep(options.duration)
            after, elapsed = ingest.metrics(), time.perf_counter() - started

        def delta(name: str) -> float:
            return after.get(name, 0.0) - before.get(name, 0.0)

        applied = delta("consultease_ingest_messages_applied_total")
        received = delta("consultease_ingest_messages_received_total")
        batches = delta("consultease_ingest_batch_size_count")
        batch_sum = delta("consultease_ingest_batch_size_sum")
        _settle(ingest)
        flood = latencies_ms(flood_journal, clock.arrivals)
        rss = ingest.peak_rss_mb()

    return BenchFigures(
        desks=options.desks,
        duration=options.duration,
        applied_per_second=applied / elapsed,
        published_per_second=received / elapsed,
        mean_batch_size=batch_sum / batches if batches else 0.0,
        flood_latency_p50_ms=percentile(flood, 0.50),
        flood_latency_p99_ms=percentile(flood, 0.99),
        offered_rate=options.offered_rate,
        offered_achieved_per_second=paced_sent / options.duration,
        offered_latency_p50_ms=percentile(paced, 0.50),
        offered_latency_p99_ms=percentile(paced, 0.99),
        offered_latency_samples=len(paced),
        baseline_broker_per_second=baseline_broker,
        baseline_database_per_second=baseline_db,
        ingest_peak_rss_mb=rss,
    )


def _settle(ingest: IngestProcess, timeout: float = 30) -> None:
    """Wait until the service has applied everything it was sent."""
    deadline = time.monotonic() + timeout
    last = -1.0
    while time.monotonic() < deadline:
        metrics = ingest.metrics()
        processed = metrics.get("consultease_ingest_messages_received_total", 0.0)
        if processed == last and metrics.get("consultease_ingest_queue_depth", 0.0) == 0:
            return
        last = processed
        time.sleep(0.5)
