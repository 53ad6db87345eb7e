"""Applied desk updates per second through broker, ingest service and database (SPEC 8),
beside a baseline measured in the same run: a plain psycopg loop doing one
``UPDATE`` per transaction (the faculty trigger sends its ``NOTIFY``).

The desks are plain paho clients in a child process (``python -m
consultease.bench_ingest``), so they do not share the service's interpreter
lock, and run at a lower CPU priority: real desks bring their own CPUs, and
on one machine the load generator must not starve what it measures. Each
desk publishes the current format (``status``, ``version``, ``ts``) at QoS 1
as fast as the broker acknowledges, keeping at most ``window`` messages
unacknowledged. Versions strictly increase per desk, so every message
applies: the applied rate is the service's throughput.

Use from ``consultease bench``::

    report = run_ingest_bench(url, mqtt_url, desks=200, duration=10)
    print(*format_report(report), sep="\\n")

or the parts: ``baseline_update_notify`` and ``measure_ingest``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import selectors
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from consultease.bench_rows import create_bench_rows, delete_bench_rows
from consultease.config import MqttEndpoint, Settings
from consultease.db import connect
from consultease.ingest import DEFAULT_BATCH_SIZE, DEFAULT_QUEUE_SIZE, IngestService, MqttProtocol
from consultease.payloads import faculty_topic
from consultease.state_publisher import state_topic

log = logging.getLogger(__name__)

DEFAULT_DESKS = 200
DEFAULT_WINDOW = 20
"""Unacknowledged publishes one desk may have outstanding (paho's default in-flight limit)."""
DESK_NICENESS = 10
_STATUSES = ("available", "away", "busy")

_NEXT_STATUS = """
UPDATE faculty
SET status = CASE status WHEN 'available' THEN 'busy' WHEN 'busy' THEN 'away'
             ELSE 'available' END
WHERE id = %s
"""


@dataclass(frozen=True, kw_only=True, slots=True)
class IngestBenchResult:
    desks: int
    seconds: float
    """Length of the measured window (after the warm-up)."""
    applied: int
    processed: int
    applied_per_second: float
    published_per_second: float
    """What the desks managed to publish (acknowledged by the broker), over their whole run."""
    batches: int
    batch_sizes: Mapping[int, int] = field(default_factory=dict)
    """Batch size -> number of batches, in the measured window."""

    @property
    def mean_batch(self) -> float:
        return self.processed / self.batches if self.batches else 0.0

    @property
    def largest_batch(self) -> int:
        return max(self.batch_sizes, default=0)

    def batch_percentile(self, fraction: float) -> int:
        """The batch size below which ``fraction`` of the messages were committed."""
        total = sum(size * count for size, count in self.batch_sizes.items())
        seen = 0
        for size in sorted(self.batch_sizes):
            seen += size * self.batch_sizes[size]
            if seen >= fraction * total:
                return size
        return 0


def baseline_update_notify(database_url: str, *, duration: float, rows: int) -> float:
    """Updates per second of one connection doing one ``UPDATE`` per transaction.

    Each update changes ``status``, so the row trigger bumps the version and
    sends its ``NOTIFY``: the same work per change the ingest path does,
    without batching. Uses ``rows`` rows of its own, removed afterwards.
    """
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


def measure_ingest(
    database_url: str,
    mqtt_url: str,
    *,
    desks: int = DEFAULT_DESKS,
    duration: float = 10.0,
    warmup: float = 2.0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    protocol: MqttProtocol = MqttProtocol.V5,
    publish_state: bool = True,
    window: int = DEFAULT_WINDOW,
    publisher_processes: int = 1,
) -> IngestBenchResult:
    """Run an ``IngestService`` in this process against ``desks`` desks publishing flat out."""
    ids = create_bench_rows(database_url, desks)
    settings = Settings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        mqtt_client_id=f"consultease-bench-{uuid.uuid4().hex[:8]}",
    )
    service = IngestService(
        settings,
        protocol=protocol,
        batch_size=batch_size,
        queue_size=queue_size,
        publish_state=publish_state,
        session_expiry=0,  # nothing to keep once the bench is over
    )
    try:
        service.start()
        if not service.wait_ready(15):
            raise RuntimeError("the ingest service did not connect to the broker")
        shares = [ids[k::publisher_processes] for k in range(publisher_processes)]
        with _Publishers(mqtt_url, shares, window=window) as publishers:
            time.sleep(warmup)
            before, started = service.stats, time.perf_counter()
            time.sleep(duration)
            after, elapsed = service.stats, time.perf_counter() - started
            published, publish_seconds = publishers.stop()
    finally:
        service.stop()
        delete_bench_rows(database_url, ids)
        if publish_state:
            clear_state_topics(mqtt_url, ids)
    sizes = {
        size: count - before.batch_sizes.get(size, 0)
        for size, count in after.batch_sizes.items()
        if count - before.batch_sizes.get(size, 0) > 0
    }
    return IngestBenchResult(
        desks=desks,
        seconds=elapsed,
        applied=after.applied - before.applied,
        processed=after.processed - before.processed,
        applied_per_second=(after.applied - before.applied) / elapsed,
        published_per_second=published / publish_seconds if publish_seconds else 0.0,
        batches=after.batches - before.batches,
        batch_sizes=sizes,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class IngestBenchReport:
    """The ingest figure with the baseline measured just before and just after it."""

    result: IngestBenchResult
    baseline_before: float
    baseline_after: float

    @property
    def baseline(self) -> float:
        """The better of the two baselines: the ratio is never flattered by a slow moment."""
        return max(self.baseline_before, self.baseline_after)

    @property
    def speedup(self) -> float:
        return self.result.applied_per_second / self.baseline if self.baseline else math.inf


def run_ingest_bench(
    database_url: str,
    mqtt_url: str,
    *,
    desks: int = DEFAULT_DESKS,
    duration: float = 10.0,
    baseline_duration: float = 5.0,
    **options: Any,
) -> IngestBenchReport:
    """Baseline, ingest, baseline again: all in one run, on the same database and machine."""
    before = baseline_update_notify(database_url, duration=baseline_duration, rows=desks)
    result = measure_ingest(database_url, mqtt_url, desks=desks, duration=duration, **options)
    after = baseline_update_notify(database_url, duration=baseline_duration, rows=desks)
    return IngestBenchReport(result=result, baseline_before=before, baseline_after=after)


def format_report(report: IngestBenchReport) -> list[str]:
    return [
        *format_result(report.result),
        f"baseline (one UPDATE + NOTIFY per transaction): {report.baseline_before:,.0f} "
        f"updates/s before, {report.baseline_after:,.0f} after; "
        f"ingest is {report.speedup:.1f}x the better one",
    ]


def format_result(result: IngestBenchResult, *, baseline: float | None = None) -> list[str]:
    lines = [
        f"ingest: {result.applied_per_second:,.0f} applied updates/s "
        f"({result.desks} desks, {result.seconds:.1f} s measured; "
        f"desks published {result.published_per_second:,.0f}/s)",
        f"  batches: {result.batches:,}, mean {result.mean_batch:.1f}, "
        f"median-by-message {result.batch_percentile(0.5)}, "
        f"p90 {result.batch_percentile(0.9)}, largest {result.largest_batch}",
    ]
    if baseline is not None:
        ratio = result.applied_per_second / baseline if baseline else float("inf")
        lines.append(
            f"baseline (one UPDATE + NOTIFY per transaction): {baseline:,.0f} updates/s; "
            f"ingest is {ratio:.1f}x"
        )
    return lines


# -- bench rows ----------------------------------------------------------------------


def clear_state_topics(mqtt_url: str, ids: Sequence[int]) -> None:
    """Remove the retained ``…/state`` messages of deleted bench rows."""
    endpoint = MqttEndpoint.parse(mqtt_url)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"consultease-bench-clear-{uuid.uuid4().hex[:6]}",
        protocol=mqtt.MQTTv311,
        clean_session=True,
    )
    if endpoint.username is not None:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set()
    try:
        client.connect(endpoint.host, endpoint.port)
        client.loop_start()
        infos = [client.publish(state_topic(i), b"", qos=1, retain=True) for i in ids]
        for info in infos:
            info.wait_for_publish(5)
        client.disconnect()
    except (OSError, RuntimeError, ValueError) as exc:
        log.warning("could not clear the bench's retained state messages: %s", exc)
    finally:
        client.loop_stop()


# -- the desks (child processes) --------------------------------------------------------


class _Publishers:
    """``python -m consultease.bench_ingest`` children, one per share of the desks.

    Orders go on stdin as one JSON line (never the command line); a child
    answers ``ready`` once its desks are connected, starts on ``go``, stops
    on ``stop`` and answers with ``{"published": n, "seconds": s}``.
    """

    def __init__(self, mqtt_url: str, shares: list[list[int]], *, window: int) -> None:
        self._children = [
            subprocess.Popen(
                [sys.executable, "-m", __name__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in shares
        ]
        for child, share in zip(self._children, shares, strict=True):
            self._send(child, json.dumps({"url": mqtt_url, "ids": share, "window": window}))
        for child in self._children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                self.close()
                raise RuntimeError("a desk publisher process failed to start")
        for child in self._children:
            self._send(child, "go")

    @staticmethod
    def _send(child: subprocess.Popen[str], line: str) -> None:
        assert child.stdin is not None
        child.stdin.write(line + "\n")
        child.stdin.flush()

    def stop(self) -> tuple[int, float]:
        """Total messages the broker acknowledged, and the longest child run in seconds."""
        published, seconds = 0, 0.0
        for child in self._children:
            self._send(child, "stop")
        for child in self._children:
            assert child.stdout is not None
            report = json.loads(child.stdout.readline() or "{}")
            published += int(report.get("published", 0))
            seconds = max(seconds, float(report.get("seconds", 0.0)))
        return published, seconds

    def close(self) -> None:
        for child in self._children:
            if child.stdin is not None and not child.stdin.closed:
                child.stdin.close()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            if child.stdout is not None:
                child.stdout.close()

    def __enter__(self) -> _Publishers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Desk:
    """One desk: a paho client driven by the child's single thread (no loop thread)."""

    def __init__(self, faculty_id: int, endpoint: MqttEndpoint, boot: int) -> None:
        self.topic = faculty_topic(faculty_id, "status")
        self.desk_id = f"bench-{faculty_id}"
        self.version = boot * 2**32
        self.outstanding = 0
        self.acked = 0
        self.connected = False
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"consultease-bench-desk-{faculty_id}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        self.client.max_inflight_messages_set(0)  # the desk keeps its own window
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        if endpoint.username is not None:
            self.client.username_pw_set(endpoint.username, endpoint.password)
        if endpoint.tls:
            self.client.tls_set()
        self.client.connect(endpoint.host, endpoint.port, keepalive=60)

    def _on_connect(self, *args: object) -> None:
        self.connected = True

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_code: ReasonCode,
        properties: object,
    ) -> None:
        self.outstanding -= 1
        self.acked += 1

    def publish_next(self) -> None:
        self.version += 1
        payload = (
            f'{{"status":"{_STATUSES[self.version % 3]}","version":{self.version},'
            f'"ts":{int(time.time() * 1000)},"desk_id":"{self.desk_id}"}}'
        )
        self.client.publish(self.topic, payload, qos=1)
        self.outstanding += 1


def _drive_desks(orders: Mapping[str, Any]) -> None:
    endpoint = MqttEndpoint.parse(str(orders["url"]))
    window = int(orders["window"])
    ids = [int(i) for i in orders["ids"]]
    boot = int(time.time())
    desks = [_Desk(fid, endpoint, boot) for fid in ids]
    selector = selectors.DefaultSelector()
    for desk in desks:
        sock = desk.client.socket()
        assert sock is not None
        selector.register(sock, selectors.EVENT_READ, desk)

    def pump(timeout: float) -> None:
        for key, _ in selector.select(timeout):
            key.data.client.loop_read()
        for desk in desks:
            if desk.client.want_write():
                desk.client.loop_write()

    deadline = time.monotonic() + 15
    while not all(d.connected for d in desks):
        if time.monotonic() > deadline:
            raise SystemExit("desks could not connect")
        pump(0.05)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit(1)

    stop_selector = selectors.DefaultSelector()
    stop_selector.register(sys.stdin, selectors.EVENT_READ)
    started = time.perf_counter()
    last_misc = time.monotonic()
    while not stop_selector.select(0):
        for desk in desks:
            while desk.outstanding < window:
                desk.publish_next()
        pump(0.001)
        if time.monotonic() - last_misc > 1:
            for desk in desks:
                desk.client.loop_misc()
            last_misc = time.monotonic()
    seconds = time.perf_counter() - started
    print(json.dumps({"published": sum(d.acked for d in desks), "seconds": seconds}), flush=True)
    for desk in desks:
        desk.client.disconnect()


def _child_main() -> None:
    os.nice(DESK_NICENESS)  # see the module docstring
    orders = json.loads(sys.stdin.readline())
    _drive_desks(orders)


if __name__ == "__main__":
    _child_main()
