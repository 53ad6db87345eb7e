"""``consultease bench``: the load test of SPEC section 8, measured so that it can be trusted.

Everything runs through the real broker and database. Each round measures,
back to back and in a rotating order (so no phase always runs on a warmer
or quieter machine than another):

(a) **broker pass-through**: the same desk traffic to a bare paho subscriber
    (its own process, QoS 1, acking each message), on a topic root of its
    own so the ingest service never sees it;
(b) **database**: one ``UPDATE`` per transaction from a plain psycopg loop
    (the faculty trigger sends the ``NOTIFY``), the unbatched way to apply
    changes;
(s) **the service**: ``consultease ingest`` (a child process) with the same
    traffic flat out, then paced at ``offered_rate`` for the latency a
    student would notice. With ``state_modes`` it is measured once per mode
    of the state publisher (process, thread, off), in the same round.

The traffic (``consultease.tools.bench.traffic``) is realistic by default:
many desks, interleaved, one message per desk per turn, so nothing
coalesces; ``flood`` sends bursts per desk instead. Figures are per round,
then the median and the range over the rounds.

Latency is publish-to-notification, over **every** message sent in the
window: a message coalesced into a later row write is delivered by that
write's notification. The offered rate is what the desks sent in the
window, divided by that window.

CPU cost that machine load cannot move: CPU seconds (user + system, from
``/proc``) per applied update for the ingest service and its children,
beside the broker's and the bare subscriber's per message, in the same run;
and instructions from ``perf stat`` where the machine has the counter.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from consultease.config import MqttEndpoint, Settings
from consultease.db.connection import connect
from consultease.errors import ConsultEaseError
from consultease.ingest.state_publisher import StateMode, state_topic
from consultease.payloads import FACULTY_TOPIC_PREFIX
from consultease.tools.bench.consultation import ConsultationWindow, consultation_window
from consultease.tools.bench.cpu import (
    InstructionCounter,
    PerfSupport,
    cpu_seconds,
    descendants,
    listening_pid,
    perf_support,
)
from consultease.tools.bench.scratch import create_bench_rows, delete_bench_rows, scratch_database
from consultease.tools.bench.stats import Spread, match_latencies, rate_in_window
from consultease.tools.bench.traffic import DEFAULT_BURST, Shape
from consultease.tools.environment import Endpoints, provide_services
from consultease.tools.servers import free_port

log = logging.getLogger(__name__)

Step = Callable[[str], None]

PASSTHROUGH_PREFIX: Final = "benchbroker/faculty/"
"""Baseline (a)'s topic root: as long as ``consultease``, so the packets are the
same size, and out of the ingest service's subscriptions."""
SETTLE_TIMEOUT: Final = 120.0


@dataclass(frozen=True, kw_only=True, slots=True)
class BenchOptions:
    desks: int = 2000
    traffic: Shape = Shape.REALISTIC
    burst: int = DEFAULT_BURST
    """Messages per desk in a row, in flood traffic."""
    rounds: int = 3
    duration: float = 10.0
    """Seconds measured per phase."""
    warmup: float = 2.0
    """Seconds of traffic before each measured window."""
    offered_rate: float = 500.0
    """Updates per second, all desks together, for the latency phase."""
    connections: int = 4
    """Client connections the desk traffic is spread over."""
    inflight: int = 100
    """Unacknowledged messages per connection, flat out."""
    state_modes: tuple[StateMode, ...] = (StateMode.PROCESS,)
    """The service is measured once per mode each round; the first is the headline."""

    def __post_init__(self) -> None:
        if self.desks < 1 or self.rounds < 1 or self.connections < 1 or self.inflight < 1:
            raise ConsultEaseError("desks, rounds, connections and inflight must be at least 1")
        if not (self.duration > 0 and self.warmup >= 0 and self.offered_rate > 0):
            raise ConsultEaseError("duration and offered rate must be positive")
        if not self.state_modes:
            raise ConsultEaseError("give at least one state mode")


# -- figures -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Passthrough:
    messages_per_second: float
    subscriber_cpu_us_per_message: float
    broker_cpu_us_per_message: float | None
    driver_cpu_us_per_message: float
    subscriber_instructions_per_message: float | None = None
    broker_instructions_per_message: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ServiceWindow:
    state_mode: str
    applied_per_second: float
    received_per_second: float
    sent_per_second: float
    mean_batch_size: float
    mean_commit_ms: float
    """Time to apply and commit one batch, retries included."""
    notifications_per_applied: float
    """Row writes behind each applied update: 1.0 means no coalescing."""
    latency_p50_ms: float
    latency_p99_ms: float
    latency_samples: int
    undelivered: int
    unchanged: int
    """Applied, but coalesced into no visible change: nothing to notify."""
    ingest_cpu_us_per_update: float
    """The service's own process (receive, batch, commit, ack)."""
    state_cpu_us_per_update: float
    """Its child processes (the state publisher in ``process`` mode)."""
    ingest_cores: float
    """CPU seconds per second: how much of a core the service used."""
    broker_cpu_us_per_message: float | None
    state_published_per_second: float
    peak_rss_mb: float
    ingest_instructions_per_update: float | None = None
    broker_instructions_per_message: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Paced:
    offered_rate: float
    achieved_per_second: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_samples: int
    undelivered: int
    unchanged: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Round:
    index: int
    order: tuple[str, ...]
    passthrough: Passthrough
    database_per_second: float
    services: tuple[ServiceWindow, ...]
    paced: Paced
    consultation: ConsultationWindow | None = None
    """Request -> desk and answer -> kiosk, in the headline service phase."""

    @property
    def service(self) -> ServiceWindow:
        """The headline mode's window."""
        return self.services[0]

    @property
    def ratio_to_broker(self) -> float:
        return self.service.applied_per_second / self.passthrough.messages_per_second

    @property
    def ratio_to_database(self) -> float:
        return self.service.applied_per_second / self.database_per_second


@dataclass(frozen=True, kw_only=True, slots=True)
class BenchFigures:
    options: BenchOptions
    rounds: tuple[Round, ...]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    broker: str
    """Which broker and whether its CPU figure is ours alone."""
    perf: PerfSupport
    summary: dict[str, Spread] = field(default_factory=dict)

    @classmethod
    def of(cls, **kwargs: Any) -> BenchFigures:
        rounds: tuple[Round, ...] = kwargs["rounds"]
        summary = summarise(rounds)
        return cls(summary=summary, **kwargs)

    def as_json(self) -> dict[str, Any]:
        options = asdict(self.options)
        options["traffic"] = self.options.traffic.value
        options["state_modes"] = [m.value for m in self.options.state_modes]
        return {
            "options": options,
            "load_average_before": list(self.load_before),
            "load_average_after": list(self.load_after),
            "broker": self.broker,
            "instructions": "supported" if self.perf.supported else self.perf.detail,
            "summary": {name: spread.as_json() for name, spread in self.summary.items()},
            "rounds": [_round_json(r) for r in self.rounds],
        }


def _round_json(r: Round) -> dict[str, Any]:
    return {
        "index": r.index,
        "order": list(r.order),
        "passthrough": asdict(r.passthrough),
        "database_per_second": r.database_per_second,
        "services": [asdict(s) for s in r.services],
        "paced": asdict(r.paced),
        "consultation": asdict(r.consultation) if r.consultation else None,
        "ratio_to_broker": r.ratio_to_broker,
        "ratio_to_database": r.ratio_to_database,
    }


def summarise(rounds: Sequence[Round]) -> dict[str, Spread]:
    """Median and range over the rounds of every figure the command prints."""
    summary: dict[str, Spread] = {
        "applied_per_second": Spread.of(r.service.applied_per_second for r in rounds),
        "broker_per_second": Spread.of(r.passthrough.messages_per_second for r in rounds),
        "database_per_second": Spread.of(r.database_per_second for r in rounds),
        "ratio_to_broker": Spread.of(r.ratio_to_broker for r in rounds),
        "ratio_to_database": Spread.of(r.ratio_to_database for r in rounds),
        "mean_batch_size": Spread.of(r.service.mean_batch_size for r in rounds),
        "mean_commit_ms": Spread.of(r.service.mean_commit_ms for r in rounds),
        "notifications_per_applied": Spread.of(r.service.notifications_per_applied for r in rounds),
        "flat_out_p50_ms": Spread.of(r.service.latency_p50_ms for r in rounds),
        "flat_out_p99_ms": Spread.of(r.service.latency_p99_ms for r in rounds),
        "undelivered": Spread.of(r.service.undelivered + r.paced.undelivered for r in rounds),
        "unchanged": Spread.of(r.service.unchanged + r.paced.unchanged for r in rounds),
        "paced_achieved_per_second": Spread.of(r.paced.achieved_per_second for r in rounds),
        "paced_p50_ms": Spread.of(r.paced.latency_p50_ms for r in rounds),
        "paced_p99_ms": Spread.of(r.paced.latency_p99_ms for r in rounds),
        "ingest_cpu_us_per_update": Spread.of(r.service.ingest_cpu_us_per_update for r in rounds),
        "state_cpu_us_per_update": Spread.of(r.service.state_cpu_us_per_update for r in rounds),
        "ingest_cores": Spread.of(r.service.ingest_cores for r in rounds),
        "broker_cpu_us_per_message": Spread.of(r.service.broker_cpu_us_per_message for r in rounds),
        "passthrough_broker_cpu_us_per_message": Spread.of(
            r.passthrough.broker_cpu_us_per_message for r in rounds
        ),
        "subscriber_cpu_us_per_message": Spread.of(
            r.passthrough.subscriber_cpu_us_per_message for r in rounds
        ),
        "driver_cpu_us_per_message": Spread.of(
            r.passthrough.driver_cpu_us_per_message for r in rounds
        ),
        "ingest_instructions_per_update": Spread.of(
            r.service.ingest_instructions_per_update for r in rounds
        ),
        "broker_instructions_per_message": Spread.of(
            r.passthrough.broker_instructions_per_message for r in rounds
        ),
        "subscriber_instructions_per_message": Spread.of(
            r.passthrough.subscriber_instructions_per_message for r in rounds
        ),
        "peak_rss_mb": Spread.of(r.service.peak_rss_mb for r in rounds),
        "consultation_delivery_p50_ms": Spread.of(
            r.consultation.delivery_p50_ms if r.consultation else None for r in rounds
        ),
        "consultation_delivery_p99_ms": Spread.of(
            r.consultation.delivery_p99_ms if r.consultation else None for r in rounds
        ),
        "consultation_answer_p50_ms": Spread.of(
            r.consultation.answer_p50_ms if r.consultation else None for r in rounds
        ),
        "consultation_answer_p99_ms": Spread.of(
            r.consultation.answer_p99_ms if r.consultation else None for r in rounds
        ),
        "consultation_missing": Spread.of(
            (r.consultation.requests - r.consultation.delivered)
            + (r.consultation.requests - r.consultation.answered)
            + r.consultation.duplicates
            if r.consultation
            else None
            for r in rounds
        ),
    }
    modes = {s.state_mode for r in rounds for s in r.services}
    for mode in sorted(modes):
        windows = [s for r in rounds for s in r.services if s.state_mode == mode]
        summary[f"state_{mode}_applied_per_second"] = Spread.of(
            s.applied_per_second for s in windows
        )
        summary[f"state_{mode}_cpu_us_per_update"] = Spread.of(
            s.ingest_cpu_us_per_update + (s.state_cpu_us_per_update or 0.0) for s in windows
        )
    return summary


# -- baseline (b) ------------------------------------------------------------------------


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


def current_statuses(database_url: str, ids: Sequence[int]) -> dict[int, str]:
    """The status each bench row holds now (the traffic starts from it)."""
    with connect(database_url, autocommit=True, application_name="consultease-bench") as conn:
        rows = conn.execute(
            "SELECT id, status FROM faculty WHERE id = ANY(%s)", (list(ids),)
        ).fetchall()
    return {int(r[0]): str(r[1]) for r in rows}


def desk_versions(database_url: str, ids: Sequence[int]) -> dict[int, int | None]:
    """The desk version each bench row holds now."""
    with connect(database_url, autocommit=True, application_name="consultease-bench") as conn:
        rows = conn.execute(
            "SELECT id, desk_version FROM faculty WHERE id = ANY(%s)", (list(ids),)
        ).fetchall()
    return {int(r[0]): None if r[1] is None else int(r[1]) for r in rows}


def vacuum(database_url: str) -> None:
    """Dead row versions from one phase must not slow the next one down."""
    with connect(database_url, autocommit=True, application_name="consultease-bench") as conn:
        conn.execute("VACUUM ANALYZE faculty")


# -- the pieces ----------------------------------------------------------------------------


class NotificationClock:
    """A LISTEN connection that stamps each ``faculty_changed`` carrying a desk version."""

    def __init__(self, database_url: str) -> None:
        self._conn = connect(database_url, autocommit=True, application_name="consultease-bench")
        self._conn.execute("LISTEN faculty_changed")
        self.arrivals: dict[int, list[tuple[int, float]]] = defaultdict(list)
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-listen")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for note in self._conn.notifies(timeout=0.2, stop_after=1000):
                now = time.time()
                hint = json.loads(note.payload)
                desk_version = hint.get("desk_version")
                if desk_version is not None:
                    self.arrivals[int(hint["id"])].append((int(desk_version), now))
                    self.times.append(now)

    def quiet_for(self, seconds: float) -> bool:
        return not self.times or time.time() - self.times[-1] >= seconds

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()


class _Child:
    """A ``python -m MODULE`` child taking its orders on stdin and answering on stdout."""

    def __init__(self, module: str, orders: dict[str, Any], *, ready_timeout: float = 60) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(orders) + "\n")
        self.process.stdin.flush()
        answer: list[str] = []
        reader = threading.Thread(
            target=lambda: answer.append(self.readline()), name="bench-child-ready", daemon=True
        )
        try:
            reader.start()
            reader.join(ready_timeout)
            if answer != ["ready"]:
                raise ConsultEaseError(f"the benchmark helper {module} did not start")
        except BaseException:  # a failed start, or Ctrl-C/SIGTERM while waiting
            self.close(timeout=5)
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def readline(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def close(self, timeout: float = 30) -> int:
        """Close its stdin (it finishes and leaves), wait, and make sure it is gone."""
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return -9


class Traffic:
    """The desk traffic child (``consultease.tools.bench.traffic``) for one phase."""

    def __init__(
        self,
        endpoints: Endpoints,
        ids: Sequence[int],
        options: BenchOptions,
        *,
        workdir: Path,
        version_base: int,
        prefix: str = FACULTY_TOPIC_PREFIX,
        rate: float | None = None,
        statuses: dict[int, str] | None = None,
    ) -> None:
        self.output = workdir / f"traffic-{uuid.uuid4().hex[:8]}.json"
        self._child = _Child(
            "consultease.tools.bench.traffic",
            {
                "url": endpoints.mqtt_url,
                # Desks speak MQTT 3.1.1 (the firmware's PubSubClient does nothing else).
                "protocol": "3.1.1",
                "ids": list(ids),
                "shape": options.traffic.value,
                "burst": options.burst,
                "rate": rate,
                "duration": options.warmup + options.duration + 5,
                "connections": options.connections,
                "inflight": options.inflight,
                "version_base": version_base,
                "statuses": statuses or {},
                "topic_prefix": prefix,
                "output": str(self.output),
            },
        )
        self.sent: list[tuple[int, int, float]] = []
        self.cpu = math.nan

    @property
    def pid(self) -> int:
        return self._child.pid

    def go(self) -> float:
        started = time.time()
        self._child.send("go")
        return started

    def cpu_now(self) -> float:
        return cpu_seconds([self._child.pid])

    def __enter__(self) -> Traffic:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._child.close(timeout=10)  # already closed after finish(): returns at once
        self.output.unlink(missing_ok=True)

    def finish(self) -> None:
        """Stop publishing now and collect what was sent."""
        code = self._child.close(timeout=60)
        if code != 0 or not self.output.exists():
            raise ConsultEaseError(f"the bench desk traffic exited with code {code}")
        result = json.loads(self.output.read_text())
        self.sent = [(int(i), int(v), float(t)) for i, v, t in result["sent"]]
        self.cpu = float(result["cpu_seconds"])


class IngestProcess:
    """``consultease ingest`` as a child process, read through its metrics endpoint."""

    def __init__(
        self,
        endpoints: Endpoints,
        database_url: str,
        *,
        state_mode: StateMode,
        workdir: Path,
        expect_state: int = 0,
    ) -> None:
        self.metrics_port = free_port()
        self.endpoints = endpoints
        self.client_id = f"consultease-bench-{uuid.uuid4().hex[:8]}"
        self.log_path = workdir / f"{self.client_id}.log"
        env = dict(
            os.environ,
            CONSULTEASE_DATABASE_URL=database_url,
            CONSULTEASE_MQTT_URL=endpoints.mqtt_url,
        )
        command = [
            sys.executable, "-m", "consultease", "ingest",
            "--mqtt-protocol", endpoints.mqtt_protocol,
            "--client-id", self.client_id,
            "--metrics-port", str(self.metrics_port),
            "--state", state_mode.value,
        ]  # fmt: skip
        with self.log_path.open("w") as log_file:
            self.process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )
        try:
            deadline = time.monotonic() + 60
            while not self._ready(expect_state):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    lines = self.log_path.read_text().strip().splitlines() or ["?"]
                    raise ConsultEaseError(f"the ingest service did not start: {lines[-1]}")
                time.sleep(0.1)
        except BaseException:  # a failed start, or Ctrl-C/SIGTERM while waiting
            self.stop()
            raise

    def _ready(self, expect_state: int) -> bool:
        if "ingest ready" not in self.log_path.read_text():
            return False
        return self.metrics().get("consultease_ingest_state_published_total", 0) >= expect_state

    def metrics(self) -> dict[str, float]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
            ) as response:
                text = response.read().decode()
        except OSError:
            return {}
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:  # labelled samples are summed over their labels
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
        return values

    def cpu_now(self) -> tuple[float, float]:
        """CPU seconds of the service's own process, and of its children."""
        pid = self.process.pid
        return cpu_seconds([pid]), cpu_seconds(p for p in descendants(pid) if p != pid)

    def pids(self) -> list[int]:
        return descendants(self.process.pid)

    def peak_rss_mb(self) -> float:
        """Peak resident memory of the service and its children, summed."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        return total / 1024 if total else math.nan

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Until everything received is committed and nothing waits in the queue."""
        deadline = time.monotonic() + timeout
        last = -1.0
        while time.monotonic() < deadline:
            m = self.metrics()
            received = m.get("consultease_ingest_messages_received_total", 0.0)
            processed = sum(
                m.get(f"consultease_ingest_messages_{verdict}_total", 0.0)
                for verdict in ("applied", "duplicate", "stale", "rejected")
            )
            if (
                received == last
                and processed >= received
                and not m.get("consultease_ingest_queue_depth")
            ):
                return
            last = received
            time.sleep(0.5)
        log.warning("the ingest service had not caught up after %.0f s", timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        forget_session(self.endpoints, self.client_id)


def forget_session(endpoints: Endpoints, client_id: str) -> None:
    """Delete the broker's session of ``client_id``, so no bench session keeps
    queueing other clients' desk messages on a shared broker for days."""
    endpoint = MqttEndpoint.parse(endpoints.mqtt_url)
    v5 = endpoints.mqtt_protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else True,
    )
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set()
    done = threading.Event()
    client.on_connect = lambda *args: done.set()
    options: dict[str, Any] = {}
    if v5:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 0
        options = {"clean_start": True, "properties": properties}
    try:
        client.connect(endpoint.host, endpoint.port, **options)
        client.loop_start()
        done.wait(10)
        client.disconnect()
    except OSError as exc:
        log.warning("could not remove the bench session %s: %s", client_id, exc)
    finally:
        client.loop_stop()


def clear_state(endpoints: Endpoints, ids: Sequence[int]) -> None:
    """Remove the retained state the bench's desks got (an empty retained publish)."""
    endpoint = MqttEndpoint.parse(endpoints.mqtt_url)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"consultease-bench-clear-{uuid.uuid4().hex[:8]}"
    )
    client.max_inflight_messages_set(1000)
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set()
    try:
        client.connect(endpoint.host, endpoint.port)
        client.loop_start()
        infos = [client.publish(state_topic(i), b"", qos=1, retain=True) for i in ids]
        for info in infos:
            info.wait_for_publish(10)
        client.disconnect()
    except (OSError, RuntimeError, ValueError) as exc:
        log.warning("could not clear the bench's retained state: %s", exc)
    finally:
        client.loop_stop()


class Counters:
    """Instruction counters over one window, where perf can count them."""

    def __init__(self, perf: PerfSupport, groups: dict[str, list[int]]) -> None:
        self._counters = (
            {name: InstructionCounter(pids) for name, pids in groups.items() if pids}
            if perf.supported
            else {}
        )

    def stop(self) -> dict[str, int | None]:
        counts = {name: counter.stop() for name, counter in self._counters.items()}
        self._counters = {}
        return counts

    def __enter__(self) -> Counters:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _per(amount: float | None, count: float, scale: float = 1.0) -> float | None:
    if amount is None or not count or not math.isfinite(amount):
        return None
    return amount * scale / count


# -- the phases ------------------------------------------------------------------------------


@dataclass(kw_only=True)
class _Run:
    """What every phase needs: services, rows, and a source of version bases."""

    endpoints: Endpoints
    database_url: str
    ids: list[int]
    options: BenchOptions
    workdir: Path
    broker_pid: int | None
    perf: PerfSupport
    step: Step
    phases_run: int = 0

    def version_base(self) -> int:
        """Each phase's versions start above every earlier phase's."""
        self.phases_run += 1
        return self.phases_run << 32

    def broker_cpu(self) -> float | None:
        return cpu_seconds([self.broker_pid]) if self.broker_pid is not None else None


def passthrough(run: _Run) -> Passthrough:
    """Baseline (a): the same traffic to a bare paho subscriber."""
    options = run.options
    subscriber = _Child(
        "consultease.tools.bench.subscriber",
        {
            "url": run.endpoints.mqtt_url,
            "protocol": run.endpoints.mqtt_protocol,
            "topic": f"{PASSTHROUGH_PREFIX}+/status",
        },
    )
    groups = {"subscriber": [subscriber.pid]}
    if run.broker_pid is not None:
        groups["broker"] = [run.broker_pid]

    def count() -> int:
        subscriber.send("count")
        return int(subscriber.readline())

    try:
        with Traffic(
            run.endpoints,
            run.ids,
            options,
            workdir=run.workdir,
            version_base=run.version_base(),
            prefix=PASSTHROUGH_PREFIX,
        ) as traffic:
            traffic.go()
            time.sleep(options.warmup)
            with Counters(run.perf, groups) as counters:
                before = (
                    count(), time.perf_counter(), cpu_seconds([subscriber.pid]), run.broker_cpu()
                )  # fmt: skip
                driver_before = traffic.cpu_now()
                time.sleep(options.duration)
                after = (
                    count(), time.perf_counter(), cpu_seconds([subscriber.pid]), run.broker_cpu()
                )  # fmt: skip
                driver_after = traffic.cpu_now()
                instructions = counters.stop()
            traffic.finish()
    finally:
        subscriber.close()
    received = after[0] - before[0]
    broker = None if before[3] is None or after[3] is None else after[3] - before[3]
    return Passthrough(
        messages_per_second=received / (after[1] - before[1]),
        subscriber_cpu_us_per_message=_per(after[2] - before[2], received, 1e6) or math.nan,
        broker_cpu_us_per_message=_per(broker, received, 1e6),
        driver_cpu_us_per_message=_per(driver_after - driver_before, received, 1e6) or math.nan,
        subscriber_instructions_per_message=_per(instructions.get("subscriber"), received),
        broker_instructions_per_message=_per(instructions.get("broker"), received),
    )


def database(run: _Run) -> float:
    rate = baseline_update_notify(
        run.database_url, duration=run.options.duration, rows=len(run.ids)
    )
    vacuum(run.database_url)
    return rate


def service(
    run: _Run, mode: StateMode, *, paced: bool
) -> tuple[ServiceWindow, Paced | None, ConsultationWindow | None]:
    """The service flat out with ``mode``'s state publisher; then paced, and the
    consultation figure, when asked."""
    ingest = IngestProcess(
        run.endpoints,
        run.database_url,
        state_mode=mode,
        workdir=run.workdir,
        expect_state=0 if mode is StateMode.OFF else len(run.ids),
    )
    clock: NotificationClock | None = None
    try:
        clock = NotificationClock(run.database_url)
        window = _service_window(run, ingest, clock, mode)
        paced_figures = _paced_window(run, ingest, clock) if paced else None
        consultation = None
        if paced:
            run.step("consultation requests: request -> desk, answer -> kiosk")
            consultation = consultation_window(run.database_url, run.endpoints.mqtt_url, run.ids)
    finally:
        if clock is not None:
            clock.close()
        ingest.stop()
    vacuum(run.database_url)
    return window, paced_figures, consultation


def _service_window(
    run: _Run, ingest: IngestProcess, clock: NotificationClock, mode: StateMode
) -> ServiceWindow:
    options = run.options
    groups = {"ingest": ingest.pids()}
    if run.broker_pid is not None:
        groups["broker"] = [run.broker_pid]
    base = run.version_base()
    with Traffic(
        run.endpoints,
        run.ids,
        options,
        workdir=run.workdir,
        version_base=base,
        statuses=current_statuses(run.database_url, run.ids),
    ) as traffic:
        traffic.go()
        time.sleep(options.warmup)
        with Counters(run.perf, groups) as counters:
            m0, t0, wall0 = ingest.metrics(), time.perf_counter(), time.time()
            cpu0, broker0 = ingest.cpu_now(), run.broker_cpu()
            time.sleep(options.duration)
            m1, t1, wall1 = ingest.metrics(), time.perf_counter(), time.time()
            cpu1, broker1 = ingest.cpu_now(), run.broker_cpu()
            instructions = counters.stop()
        traffic.finish()
    ingest.settle()
    _wait_quiet(clock)
    elapsed = t1 - t0

    def delta(name: str) -> float:
        return m1.get(name, 0.0) - m0.get(name, 0.0)

    applied = delta("consultease_ingest_messages_applied_total")
    received = delta("consultease_ingest_messages_received_total")
    batches = delta("consultease_ingest_batch_size_count")
    committed = desk_versions(run.database_url, run.ids)
    latencies = match_latencies(
        traffic.sent, clock.arrivals, since=wall0, until=wall1, committed=committed
    )
    # Row writes per applied message, over the whole phase (every message of it has
    # been applied and notified by now), so the window's edges cannot skew it.
    whole = match_latencies(traffic.sent, clock.arrivals, committed=committed)
    notified = sum(1 for seen in clock.arrivals.values() for dv, _ in seen if dv > base)
    applied_in_phase = len(traffic.sent) - whole.undelivered
    broker = None if broker0 is None or broker1 is None else broker1 - broker0
    return ServiceWindow(
        state_mode=mode.value,
        applied_per_second=applied / elapsed,
        received_per_second=received / elapsed,
        sent_per_second=rate_in_window((t for _, _, t in traffic.sent), since=wall0, until=wall1),
        mean_batch_size=delta("consultease_ingest_batch_size_sum") / batches if batches else 0.0,
        mean_commit_ms=(
            delta("consultease_ingest_commit_seconds_sum") * 1000 / batches if batches else math.nan
        ),
        notifications_per_applied=(notified / applied_in_phase if applied_in_phase else math.nan),
        latency_p50_ms=latencies.p(0.50),
        latency_p99_ms=latencies.p(0.99),
        latency_samples=latencies.samples,
        undelivered=latencies.undelivered,
        unchanged=latencies.unchanged,
        ingest_cpu_us_per_update=_per(cpu1[0] - cpu0[0], applied, 1e6) or math.nan,
        state_cpu_us_per_update=_per(cpu1[1] - cpu0[1], applied, 1e6) or 0.0,
        ingest_cores=(cpu1[0] - cpu0[0] + cpu1[1] - cpu0[1]) / elapsed,
        broker_cpu_us_per_message=_per(broker, received, 1e6),
        state_published_per_second=delta("consultease_ingest_state_published_total") / elapsed,
        peak_rss_mb=ingest.peak_rss_mb(),
        ingest_instructions_per_update=_per(instructions.get("ingest"), applied),
        broker_instructions_per_message=_per(instructions.get("broker"), received),
    )


def _paced_window(run: _Run, ingest: IngestProcess, clock: NotificationClock) -> Paced:
    options = run.options
    with Traffic(
        run.endpoints,
        run.ids,
        options,
        workdir=run.workdir,
        version_base=run.version_base(),
        rate=options.offered_rate,
        statuses=current_statuses(run.database_url, run.ids),
    ) as traffic:
        started = traffic.go()
        # The first seconds (every connection's first messages at once) are warm-up.
        time.sleep(options.warmup + options.duration)
        since, until = started + options.warmup, started + options.warmup + options.duration
        traffic.finish()
    ingest.settle()
    _wait_quiet(clock)
    latencies = match_latencies(
        traffic.sent,
        clock.arrivals,
        since=since,
        until=until,
        committed=desk_versions(run.database_url, run.ids),
    )
    return Paced(
        offered_rate=options.offered_rate,
        achieved_per_second=rate_in_window(
            (t for _, _, t in traffic.sent), since=since, until=until
        ),
        latency_p50_ms=latencies.p(0.50),
        latency_p99_ms=latencies.p(0.99),
        latency_samples=latencies.samples,
        undelivered=latencies.undelivered,
        unchanged=latencies.unchanged,
    )


def _wait_quiet(clock: NotificationClock, *, quiet: float = 1.0, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not clock.quiet_for(quiet) and time.monotonic() < deadline:
        time.sleep(0.2)


def phase_order(round_index: int) -> tuple[str, ...]:
    """The phases of a round, rotated each round so none always runs first."""
    phases = ("passthrough", "database", "service")
    shift = round_index % len(phases)
    return phases[shift:] + phases[:shift]


# -- the run ------------------------------------------------------------------------------


def run_bench(settings: Settings, options: BenchOptions, step: Step) -> BenchFigures:
    load_before = os.getloadavg()
    # The directory must outlive the services started in it, so it is entered first.
    with (
        tempfile.TemporaryDirectory(prefix="consultease-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        step("starting services")
        endpoints = provide_services(stack, settings, data_dir=workdir, report=log.info)
        database_url = stack.enter_context(scratch_database(endpoints.database_url))
        _unique_ids(database_url)
        ids = create_bench_rows(database_url, options.desks)
        stack.callback(clear_state, endpoints, ids)
        broker_pid, broker = _find_broker(endpoints, configured=settings.mqtt_url is not None)
        run = _Run(
            endpoints=endpoints,
            database_url=database_url,
            ids=ids,
            options=options,
            workdir=workdir,
            broker_pid=broker_pid,
            perf=perf_support(),
            step=step,
        )
        rounds = [_round(run, index) for index in range(options.rounds)]
    return BenchFigures.of(
        options=options,
        rounds=tuple(rounds),
        load_before=load_before,
        load_after=os.getloadavg(),
        broker=broker,
        perf=run.perf,
    )


def _round(run: _Run, index: int) -> Round:
    order = phase_order(index)
    label = f"round {index + 1}/{run.options.rounds}"
    results: dict[str, Any] = {}
    for phase in order:
        if phase == "passthrough":
            run.step(f"{label}: baseline (a) broker pass-through")
            results[phase] = passthrough(run)
        elif phase == "database":
            run.step(f"{label}: baseline (b) one UPDATE + NOTIFY per transaction")
            results[phase] = database(run)
        else:
            windows = []
            for position, mode in enumerate(run.options.state_modes):
                run.step(f"{label}: the ingest service (state publisher: {mode.value})")
                window, paced, consultation = service(run, mode, paced=position == 0)
                windows.append(window)
                if paced is not None:
                    results["paced"] = paced
                    results["consultation"] = consultation
            results[phase] = tuple(windows)
    return Round(
        index=index + 1,
        order=order,
        passthrough=results["passthrough"],
        database_per_second=results["database"],
        services=results["service"],
        paced=results["paced"],
        consultation=results.get("consultation"),
    )


def _unique_ids(database_url: str) -> None:
    """Bench rows get ids of their own, far from any other test's or site's, since
    their retained state goes to the broker the bench was pointed at."""
    start = random.randrange(10**9, 10**12)
    with connect(database_url, autocommit=True, application_name="consultease-bench") as conn:
        conn.execute(
            sql.SQL("ALTER TABLE faculty ALTER COLUMN id RESTART WITH {}").format(
                sql.Literal(start)
            )
        )


def _find_broker(endpoints: Endpoints, *, configured: bool) -> tuple[int | None, str]:
    endpoint = MqttEndpoint.parse(endpoints.mqtt_url)
    pid = listening_pid(endpoint.port) if endpoint.host in ("127.0.0.1", "localhost") else None
    if pid == os.getpid():
        return None, "amqtt inside the bench process: no CPU figure of its own"
    if pid is None:
        return None, f"{endpoint.host}:{endpoint.port}: not on this machine, no CPU figure"
    if configured:
        return pid, (
            f"the configured broker (pid {pid}): its CPU includes every other client's traffic"
        )
    return pid, f"a private mosquitto (pid {pid}): its CPU is this benchmark's alone"
