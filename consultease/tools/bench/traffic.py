"""The bench's desk traffic: a lean paho publisher in a child process of its own.

Two shapes (``order``):

- ``realistic``: many desks, interleaved, one message per desk per turn
  (desk 1, desk 2, … desk N, desk 1, …). Real desks send a few changes a
  minute each, so a batch of the ingest service never holds two messages of
  one desk, and every message costs a row write and a notification.
- ``flood``: each desk sends ``burst`` messages in a row before the next one
  (the old simulator flood). A batch then covers a few desks and the store
  writes each row once per batch: it measures coalescing, not desks.

Each message is the current desk format of SPEC 3.1 (``status``, ``version``,
``ts``, ``desk_id``) at QoS 1, and changes the status (three statuses in
turn, starting after the status each row holds, given in ``statuses``), so
every message applied on its own is a visible change. Versions start at
``version_base`` + 1 for every desk and grow by one per message, so phases
of one run with growing bases never look stale to the ordering rules.

Flat out (``rate`` null) each connection keeps ``inflight`` messages
unacknowledged at most; paced, message *n* leaves at ``start + n / rate``
(open loop: late messages are not skipped). The desks are spread over
``connections`` client connections: the broker and the service see the
same packets as from separate desks, for a fraction of the client cost.
One thread publishes and serves every socket (paho's external-loop API), so
no message costs a thread wake-up, and the sockets are corked between
polls, so messages leave a few dozen to a TCP segment: the driver takes as
little of the machine as a Python client can. (The broker then reads its
inbound messages in larger chunks than from 2,000 separate desks; its
outbound side, which the service shares, is unchanged.)

Orders come as one JSON line on stdin (the broker URL may hold a password,
so never on the command line); the child answers ``ready`` once connected,
starts on ``go``, and stops at ``duration`` or when stdin closes. It writes
``{"sent": [[faculty_id, version, unix time], …], "cpu_seconds": …}`` to the
``output`` path it was given.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import json
import os
import selectors
import signal
import socket
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from consultease.config import MqttEndpoint

STATUSES: Final = ("available", "busy", "away")
DEFAULT_BURST: Final = 32


class Shape(enum.StrEnum):
    REALISTIC = "realistic"
    FLOOD = "flood"


def order(ids: Sequence[int], shape: Shape, *, burst: int = DEFAULT_BURST) -> Iterator[int]:
    """Faculty ids in sending order, endlessly."""
    if not ids:
        raise ValueError("no desks to drive")
    if shape is Shape.REALISTIC:
        return itertools.cycle(ids)
    return itertools.cycle([faculty_id for faculty_id in ids for _ in range(burst)])


def next_status(status: str) -> str:
    """The status a bench desk reports after ``status``: always a change."""
    return (
        STATUSES[(STATUSES.index(status) + 1) % len(STATUSES)]
        if status in STATUSES
        else STATUSES[0]
    )


def payload(faculty_id: int, status: str, version: int, ts_ms: int) -> bytes:
    return (
        f'{{"status":"{status}","version":{version},"ts":{ts_ms},"desk_id":"bench-{faculty_id}"}}'
    ).encode()


class _Connection:
    """One client connection, driven by the caller's loop (no paho thread), with a
    bounded number of unacknowledged messages."""

    def __init__(
        self, endpoint: MqttEndpoint, *, protocol: str, inflight: int, tag: str, index: int
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"consultease-bench-desks-{tag}-{index}",
            protocol=mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311,
        )
        self.client.max_inflight_messages_set(inflight)
        self.limit = inflight
        self.unacked = 0
        self.connected = False
        if endpoint.username:
            self.client.username_pw_set(endpoint.username, endpoint.password)
        if endpoint.tls:
            self.client.tls_set()
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.connect(endpoint.host, endpoint.port, keepalive=60)
        self._sock: socket.socket | None = None
        sock = self.client.socket()
        if isinstance(sock, socket.socket) and not isinstance(sock, ssl.SSLSocket):
            # Corked: each publish only queues its bytes in the kernel; ``flush``
            # sends what queued up as full segments. Without it every message is
            # a trip through the loopback TCP stack, which costs the driver more
            # CPU than the broker spends on the message.
            self._sock = sock
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)

    def flush(self) -> None:
        if self._sock is not None and self._sock.fileno() != -1:
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)

    def _on_connect(self, *args: object) -> None:
        self.connected = True

    def _on_publish(self, *args: object) -> None:
        self.unacked -= 1

    @property
    def full(self) -> bool:
        return self.unacked >= self.limit

    def publish(self, topic: str, payload: bytes) -> None:
        self.unacked += 1
        self.client.publish(topic, payload, qos=1)  # written at once: no thread to wake

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.client.disconnect()
            self.client.loop_write()
            self.flush()


class _Loop:
    """Every connection's socket in one selector, served from the publishing thread."""

    def __init__(self, connections: Sequence[_Connection]) -> None:
        self._connections = connections
        self._selector = selectors.DefaultSelector()
        self._registered: dict[int, _Connection] = {}
        self._next_misc = 0.0

    def poll(self, timeout: float) -> None:
        """Send what is queued, wait up to ``timeout`` for acknowledgements, read them."""
        for connection in self._connections:
            if connection.client.want_write():
                connection.client.loop_write()
            connection.flush()
            sock = connection.client.socket()
            if sock is not None and sock.fileno() not in self._registered:
                self._selector.register(sock, selectors.EVENT_READ, connection)
                self._registered[sock.fileno()] = connection
        for key, _ in self._selector.select(timeout):
            connection = key.data
            connection.client.loop_read(max_packets=1000)
        now = time.monotonic()
        if now >= self._next_misc:
            self._next_misc = now + 1.0
            for connection in self._connections:
                connection.client.loop_misc()

    def close(self) -> None:
        self._selector.close()


def drive(orders: dict[str, Any], stop: threading.Event, go: threading.Event) -> dict[str, Any]:
    """Connect, wait for ``go``, publish until ``duration`` or ``stop``; what was sent."""
    endpoint = MqttEndpoint.parse(orders["url"])
    ids: list[int] = orders["ids"]
    tag = uuid.uuid4().hex[:8]
    connections = [
        _Connection(
            endpoint, protocol=orders["protocol"], inflight=orders["inflight"], tag=tag, index=k
        )
        for k in range(max(1, min(orders["connections"], len(ids))))
    ]
    loop = _Loop(connections)
    try:
        deadline = time.monotonic() + 30
        while not all(c.connected for c in connections):
            if time.monotonic() > deadline:
                raise RuntimeError("a bench desk connection was not accepted within 30 s")
            loop.poll(0.1)
        print("ready", flush=True)
        while not go.wait(0.5):
            loop.poll(0)  # keep the connections alive while waiting
        sent = _publish(orders, connections, loop, stop)
        # Let the last messages be acknowledged before leaving.
        drain_until = time.monotonic() + 10
        while any(c.unacked for c in connections) and time.monotonic() < drain_until:
            loop.poll(0.05)
    finally:
        for connection in connections:
            connection.close()
        loop.close()
    times = os.times()
    return {"sent": sent, "cpu_seconds": times.user + times.system}


def _publish(
    orders: dict[str, Any], connections: Sequence[_Connection], loop: _Loop, stop: threading.Event
) -> list[tuple[int, int, float]]:
    ids: list[int] = orders["ids"]
    rate: float | None = orders.get("rate")
    prefix: str = orders["topic_prefix"]
    lane = {faculty_id: connections[k % len(connections)] for k, faculty_id in enumerate(ids)}
    topics = {faculty_id: f"{prefix}{faculty_id}/status" for faculty_id in ids}
    versions = dict.fromkeys(ids, int(orders["version_base"]))
    # Each desk starts from the status its row holds, so its first message changes it too.
    statuses = {int(k): str(v) for k, v in orders.get("statuses", {}).items()}
    sent: list[tuple[int, int, float]] = []
    started = time.time()
    deadline = started + float(orders["duration"])
    sequence = order(ids, Shape(orders["shape"]), burst=orders.get("burst", DEFAULT_BURST))
    for n, faculty_id in enumerate(sequence):
        due = started + n / rate if rate is not None else 0.0
        connection = lane[faculty_id]
        while connection.full or time.time() < due:
            if stop.is_set() or time.time() >= deadline:
                return sent
            loop.poll(0.05 if connection.full else max(0.0, min(0.05, due - time.time())))
        now = time.time()
        if now >= deadline or stop.is_set():
            return sent
        version = versions[faculty_id] + 1
        versions[faculty_id] = version
        status = statuses[faculty_id] = next_status(statuses.get(faculty_id, ""))
        connection.publish(
            topics[faculty_id], payload(faculty_id, status, version, int(now * 1000))
        )
        sent.append((faculty_id, version, now))
        if n % 64 == 0:
            loop.poll(0)  # read the acknowledgements that have arrived
    return sent


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # orders come on stdin; Ctrl-C is the parent's
    orders = json.loads(sys.stdin.readline())
    stop, go = threading.Event(), threading.Event()

    def listen() -> None:
        for line in sys.stdin:
            if line.strip() == "go":
                go.set()
        stop.set()  # stdin closed: the parent wants us to finish
        go.set()

    threading.Thread(target=listen, daemon=True).start()
    result = drive(orders, stop, go)
    with open(orders["output"], "w") as out:
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
