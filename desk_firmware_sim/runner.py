"""The thin MQTT runner: one network thread drives every unit's client and state machine.

A single thread (``desk-sim-io``) owns all paho clients, using paho's external-loop API
(``loop_read``/``loop_write``/``loop_misc``) over one ``selectors`` selector, so hundreds
of units cost one thread, not hundreds. Only opening a TCP/TLS connection, which blocks,
happens on a small pool of connector threads; a new client is handed over once its
socket is open. Each (re)connection uses a fresh client, like a firmware that lost its
RAM: nothing half-sent from a previous connection is replayed.

Publishing never blocks the state machines: ``publish()`` only queues bytes on a
non-blocking socket; when the broker is slow the selector drains them. In flood mode a
unit steps only while it has fewer than ``max_inflight`` unacknowledged messages.
"""

from __future__ import annotations

import contextlib
import enum
import heapq
import itertools
import logging
import math
import queue
import random
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from desk_firmware_sim.config import BrokerUrl, MqttVersion, SimConfig
from desk_firmware_sim.desk import Action, Disconnect, PersistBootCount, Send, SimulatedDesk
from desk_firmware_sim.errors import SimError
from desk_firmware_sim.faults import Copy, Disruption
from desk_firmware_sim.flash import FlashStore, default_state_dir
from desk_firmware_sim.records import EventKind, EventRecord, Record, SentRecord
from desk_firmware_sim.unit import (
    Message,
    MessageKind,
    Status,
    availability_message,
    availability_topic,
    cancellations_topic,
    messages_topic,
    state_topic,
)

_log = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL = 0.25
MAX_SELECT_WAIT = 0.5
FLOOD_BATCH = 32
MIN_BACKOFF = 0.5
MAX_BACKOFF = 30.0
STABLE_AFTER = 10.0
CONNECT_WORKERS = 8

RecordSink = Callable[[Record], None]


class _Conn(enum.Enum):
    IDLE = "idle"  # no socket; ``connect_at`` says when to try again
    CONNECTING = "connecting"  # a connector thread is opening the socket
    HANDSHAKE = "handshake"  # CONNECT sent, waiting for CONNACK
    CONNECTED = "connected"
    CLOSING = "closing"  # DISCONNECT queued on a clean stop


@dataclass(frozen=True, kw_only=True, slots=True)
class UnitSnapshot:
    """One unit as seen from outside, at one moment.

    ``status``/``version`` are the ground truth: the status of the newest message the
    unit published (highest version; for legacy units, the last one published).
    ``current_status`` is what the firmware shows now, published or not.
    """

    faculty_id: int
    desk_id: str
    status: Status | None
    version: int | None
    current_status: Status
    boot_count: int
    connected: bool
    sent: int
    status_sent: int
    heartbeats_sent: int
    duplicates: int
    delayed: int
    lost: int
    reboots: int
    drops: int
    connection_losses: int
    mismatches: int
    mismatched: bool
    shown_status: Status | None
    shown_online: bool | None
    last_error: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class FleetStats:
    units: int
    connected: int
    sent: int
    status_sent: int
    heartbeats_sent: int
    duplicates: int
    delayed: int
    lost: int
    reboots: int
    drops: int
    connection_losses: int
    mismatches: int
    elapsed: float

    @property
    def status_per_second(self) -> float:
        return self.status_sent / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class FleetSnapshot:
    units: tuple[UnitSnapshot, ...]
    stats: FleetStats


@dataclass(kw_only=True, slots=True)
class _Counts:
    sent: int = 0
    status_sent: int = 0
    heartbeats_sent: int = 0
    duplicates: int = 0
    delayed: int = 0
    lost: int = 0
    reboots: int = 0
    drops: int = 0
    connection_losses: int = 0


class _Unit:
    """Per-unit state owned by the network thread (counters are under the fleet lock)."""

    def __init__(self, *, desk: SimulatedDesk, username: str | None, password: str | None) -> None:
        self.desk = desk
        self.faculty_id = desk.faculty_id
        self.username = username
        self.password = password
        self.client: mqtt.Client | None = None
        self.sock: Any = None
        self.mask = 0
        self.conn = _Conn.IDLE
        self.connect_at = 0.0
        self.deadline = math.inf
        self.failures = 0
        self.connected_at = 0.0
        self.ever_connected = False
        self.inflight: set[int] = set()
        self.scheduled = math.inf
        self.offline_info: mqtt.MQTTMessageInfo | None = None
        # Read by other threads under the fleet lock.
        self.counts = _Counts()
        self.connected = False
        self.truth_status: Status | None = None
        self.truth_version: int | None = None
        self.last_error: str | None = None


def unit_rng(seed: int, faculty_id: int) -> random.Random:
    """The random stream of one unit in a fleet run with ``seed``: the same pair, the same run."""
    return random.Random(f"{seed}:{faculty_id}")


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class Fleet:
    """A fleet of simulated desk units publishing to one broker.

    ``start()`` boots every unit (one flash write each) and starts the network thread;
    ``stop()`` publishes retained ``offline`` for every connected unit, disconnects
    cleanly and joins all threads. ``run(stop_event)`` does both around a wait.
    ``on_record`` gets every published message and connection event, on the network
    thread. Everything else here is safe to call from any thread.
    """

    def __init__(self, config: SimConfig, *, on_record: RecordSink | None = None) -> None:
        self.config = config
        self.broker = BrokerUrl.parse(config.mqtt_url)
        self.seed = (
            config.seed if config.seed is not None else random.SystemRandom().randrange(2**32)
        )
        self.state_dir = config.state_dir if config.state_dir is not None else default_state_dir()
        self._on_record = on_record
        self._flash = FlashStore(self.state_dir)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stop_requested = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._units: list[_Unit] = []
        self._by_id: dict[int, _Unit] = {}
        self._mono0 = time.monotonic()
        self._wall0 = time.time()
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self._stopping = False
        self._jitter = random.Random(self.seed ^ 0x5EED)
        self._heap: list[tuple[float, int, _Unit]] = []
        self._tiebreak = itertools.count()
        self._completions: queue.SimpleQueue[tuple[_Unit, mqtt.Client, Future[Any]]] = (
            queue.SimpleQueue()
        )
        self._pending_connects = 0
        self._selector: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._next_housekeeping = 0.0
        self._flood_ready = False
        self._last_logged_error: str | None = None

    # ----------------------------------------------------------------- public API

    @property
    def faculty_ids(self) -> tuple[int, ...]:
        return self.config.faculty_ids

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def now(self) -> float:
        """The fleet's clock: Unix seconds, never going backwards within a run."""
        return self._wall0 + (time.monotonic() - self._mono0)

    def start(self) -> None:
        """Boot every unit and start publishing. Raises SimError if the flash is unusable."""
        if self._thread is not None:
            raise SimError("this fleet was already started")
        cfg = self.config
        now = self.now()
        for fid in cfg.faculty_ids:
            boot_count = self._flash.boot(fid)
            desk = SimulatedDesk(
                spec=cfg.unit_spec(fid),
                faults=cfg.faults,
                rng=unit_rng(self.seed, fid),
                boot_count=boot_count,
                now=now,
                mismatch_after=cfg.mismatch_after,
                answers=cfg.answers,
            )
            username, password = cfg.credentials(fid)
            unit = _Unit(desk=desk, username=username, password=password)
            unit.connect_at = now
            self._units.append(unit)
            self._by_id[fid] = unit
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._executor = ThreadPoolExecutor(
            max_workers=min(CONNECT_WORKERS, len(self._units)),
            thread_name_prefix="desk-sim-connect",
        )
        self._started_at = now
        for unit in self._units:
            self._reschedule(unit)
        _log.info(
            "starting %d simulated desk(s) against %s (seed %d)",
            len(self._units),
            self.broker.display(),
            self.seed,
        )
        self._thread = threading.Thread(target=self._main, name="desk-sim-io")
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop cleanly: retained ``offline``, DISCONNECT, threads joined. Idempotent."""
        thread = self._thread
        if thread is None:
            return
        self._stop_requested.set()
        self._wake()
        limit = timeout if timeout is not None else self.config.shutdown_timeout + 10.0
        thread.join(limit)
        if thread.is_alive():
            raise SimError(f"the desk simulator did not stop within {limit:.0f}s")
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise SimError(f"the desk simulator failed: {failure}") from failure

    def run(self, stop_event: threading.Event | None = None) -> FleetStats:
        """Start, wait for ``stop_event`` or ``config.duration``, stop; returns the totals."""
        self.start()
        try:
            deadline = time.monotonic() + self.config.duration if self.config.duration else math.inf
            waiter = stop_event if stop_event is not None else threading.Event()
            while self.running:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or waiter.wait(min(0.2, remaining)):
                    break
        finally:
            self.stop()
        return self.stats

    def wait_connected(self, timeout: float, *, count: int | None = None) -> bool:
        """Wait until ``count`` units (default: all) are connected at once."""
        wanted = len(self._units) if count is None else count
        end = time.monotonic() + timeout
        with self._changed:
            while sum(u.connected for u in self._units) < wanted:
                remaining = end - time.monotonic()
                if remaining <= 0 or not self.running:
                    return False
                self._changed.wait(min(remaining, 0.2))
            return True

    def __enter__(self) -> Fleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def last_error(self) -> str | None:
        """The most recent connection error of any unit, for messages."""
        with self._lock:
            return self._last_logged_error

    def snapshot(self) -> FleetSnapshot:
        with self._lock:
            units = tuple(self._snapshot_unit(u) for u in self._units)
        return FleetSnapshot(units=units, stats=self._totals(units))

    @property
    def stats(self) -> FleetStats:
        return self.snapshot().stats

    def truth(self) -> dict[int, Status | None]:
        """The ground truth: the last status each unit published, by faculty id."""
        with self._lock:
            return {u.faculty_id: u.truth_status for u in self._units}

    def connected(self) -> dict[int, bool]:
        with self._lock:
            return {u.faculty_id: u.connected for u in self._units}

    # ------------------------------------------------------------ snapshots (lock held)

    def _snapshot_unit(self, u: _Unit) -> UnitSnapshot:
        c = u.counts
        shown = u.desk.monitor.shown
        return UnitSnapshot(
            faculty_id=u.faculty_id,
            desk_id=u.desk.spec.desk_id,
            status=u.truth_status,
            version=u.truth_version,
            current_status=u.desk.status,
            boot_count=u.desk.boot_count,
            connected=u.connected,
            sent=c.sent,
            status_sent=c.status_sent,
            heartbeats_sent=c.heartbeats_sent,
            duplicates=c.duplicates,
            delayed=c.delayed,
            lost=c.lost,
            reboots=c.reboots,
            drops=c.drops,
            connection_losses=c.connection_losses,
            mismatches=u.desk.monitor.count,
            mismatched=u.desk.monitor.mismatched,
            shown_status=shown.status if shown is not None else None,
            shown_online=shown.desk_online if shown is not None else None,
            last_error=u.last_error,
        )

    def _totals(self, units: tuple[UnitSnapshot, ...]) -> FleetStats:
        start = self._started_at
        end = self._stopped_at if self._stopped_at is not None else self.now()
        return FleetStats(
            units=len(units),
            connected=sum(u.connected for u in units),
            sent=sum(u.sent for u in units),
            status_sent=sum(u.status_sent for u in units),
            heartbeats_sent=sum(u.heartbeats_sent for u in units),
            duplicates=sum(u.duplicates for u in units),
            delayed=sum(u.delayed for u in units),
            lost=sum(u.lost for u in units),
            reboots=sum(u.reboots for u in units),
            drops=sum(u.drops for u in units),
            connection_losses=sum(u.connection_losses for u in units),
            mismatches=sum(u.mismatches for u in units),
            elapsed=max(0.0, end - start) if start is not None else 0.0,
        )

    # ---------------------------------------------------------------- network thread

    def _wake(self) -> None:
        w = self._wake_w
        if w is not None:
            with contextlib.suppress(OSError):
                w.send(b"\0")

    def _main(self) -> None:
        try:
            while not self._stop_requested.is_set():
                self._iterate()
            self._shutdown()
        except Exception as exc:
            self._failure = exc
            _log.exception("the desk simulator's network loop failed")
            self._force_close_all()
        finally:
            self._teardown()

    def _iterate(self) -> None:
        now = self.now()
        touched: set[_Unit] = set()
        self._poll(self._select_timeout(now), touched)
        now = self.now()
        self._collect_connects(now, touched)
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + HOUSEKEEPING_INTERVAL
            self._housekeeping(now, touched)
        self._run_due(now, touched)
        if self.config.flood:
            self._flood(now, touched)
        self._sync_interest(touched)

    def _select_timeout(self, now: float) -> float:
        if self._flood_ready:
            return 0.0
        wait = self._next_housekeeping - now
        if self._heap:
            wait = min(wait, self._heap[0][0] - now)
        return max(0.0, min(wait, MAX_SELECT_WAIT))

    def _poll(self, timeout: float, touched: set[_Unit]) -> None:
        assert self._selector is not None
        for key, mask in self._selector.select(timeout):
            unit: _Unit | None = key.data
            if unit is None:
                with contextlib.suppress(OSError):
                    while self._wake_r is not None and self._wake_r.recv(4096):
                        pass
                continue
            client = unit.client
            if client is None or key.fileobj is not unit.sock:
                continue
            touched.add(unit)
            if mask & selectors.EVENT_READ:
                client.loop_read()
                sock = unit.sock
                # TLS may hold decrypted bytes the selector cannot see.
                while isinstance(sock, ssl.SSLSocket) and unit.sock is sock and sock.pending():
                    client.loop_read()
            if mask & selectors.EVENT_WRITE and unit.client is client and unit.sock is not None:
                client.loop_write()

    def _sync_interest(self, units: set[_Unit]) -> None:
        assert self._selector is not None
        for unit in units:
            sock, client = unit.sock, unit.client
            if sock is None or client is None:
                continue
            want = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.want_write() else 0)
            if want != unit.mask:
                self._selector.modify(sock, want, unit)
                unit.mask = want

    def _reschedule(self, unit: _Unit) -> None:
        deadline = unit.desk.next_deadline()
        if deadline != unit.scheduled:
            unit.scheduled = deadline
            if deadline < math.inf:
                heapq.heappush(self._heap, (deadline, next(self._tiebreak), unit))

    def _run_due(self, now: float, touched: set[_Unit]) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, unit = heapq.heappop(heap)
            if deadline != unit.scheduled:
                continue  # superseded entry
            unit.scheduled = math.inf
            self._execute(unit, unit.desk.advance(now))
            self._reschedule(unit)
            touched.add(unit)

    def _flood(self, now: float, touched: set[_Unit]) -> None:
        ready = False
        limit = self.config.max_inflight
        for unit in self._units:
            if unit.conn is not _Conn.CONNECTED or unit.client is None:
                continue
            for _ in range(min(FLOOD_BATCH, limit - len(unit.inflight))):
                if unit.conn is not _Conn.CONNECTED or unit.client.want_write():
                    break
                self._execute(unit, unit.desk.load_step(now))
            self._reschedule(unit)  # a message held back for reordering has a deadline
            touched.add(unit)
            client = unit.client
            if (
                unit.conn is _Conn.CONNECTED
                and client is not None
                and len(unit.inflight) < limit
                and not client.want_write()
            ):
                ready = True
        self._flood_ready = ready

    def _housekeeping(self, now: float, touched: set[_Unit]) -> None:
        for unit in self._units:
            client = unit.client
            if client is not None and unit.sock is not None:
                client.loop_misc()
                touched.add(unit)
            if unit.conn is _Conn.HANDSHAKE and now >= unit.deadline:
                self._abandon(unit)
                self._connect_failed(unit, now, "no CONNACK from the broker")
            if unit.conn is _Conn.IDLE and not self._stopping and now >= unit.connect_at:
                self._begin_connect(unit, now)
            event = unit.desk.check_display(now)
            if event is not None:
                if event.resolved:
                    _log.info("%s", event.describe())
                else:
                    _log.warning("%s", event.describe())
                self._emit(
                    EventRecord(
                        at=now,
                        faculty_id=unit.faculty_id,
                        event=EventKind.MISMATCH_RESOLVED if event.resolved else EventKind.MISMATCH,
                        detail=event.describe(),
                    )
                )

    # ------------------------------------------------------------------- actions

    def _execute(self, unit: _Unit, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self._publish(unit, action.message, action.copy)
            elif isinstance(action, PersistBootCount):
                self._flash.store(unit.faculty_id, action.boot_count)
                with self._lock:
                    unit.counts.reboots += 1
            elif isinstance(action, Disconnect):
                self._drop(unit, action)

    def _emit(self, record: Record) -> None:
        if self._on_record is not None:
            self._on_record(record)

    def _publish(self, unit: _Unit, message: Message, copy: Copy) -> mqtt.MQTTMessageInfo | None:
        client = unit.client
        if client is None or unit.conn is not _Conn.CONNECTED:
            with self._lock:
                unit.counts.lost += 1
            return None
        info = client.publish(
            message.topic, message.encode(), qos=message.qos, retain=message.retain
        )
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            _log.debug("desk %d: publish failed: %s", unit.faculty_id, mqtt.error_string(info.rc))
            with self._lock:
                unit.counts.lost += 1
            return None
        if message.qos > 0:
            unit.inflight.add(info.mid)
        published_at = self.now()
        with self._lock:
            c = unit.counts
            c.sent += 1
            if message.kind is MessageKind.STATUS:
                c.status_sent += 1
                if copy is Copy.DUPLICATE:
                    c.duplicates += 1
                elif copy is Copy.DELAYED:
                    c.delayed += 1
                if message.version is None or (
                    unit.truth_version is None or message.version > unit.truth_version
                ):
                    unit.truth_status = message.status
                    unit.truth_version = message.version
            elif message.kind is MessageKind.HEARTBEAT:
                c.heartbeats_sent += 1
        self._emit(
            SentRecord(
                published_at=published_at,
                faculty_id=unit.faculty_id,
                topic=message.topic,
                payload=message.payload,
                kind=message.kind,
                status=message.status,
                version=message.version,
                copy=copy,
                qos=message.qos,
                retain=message.retain,
            )
        )
        return info

    def _drop(self, unit: _Unit, action: Disconnect) -> None:
        """Kill the connection without DISCONNECT: the broker publishes the will."""
        client = unit.client
        if client is not None and unit.sock is not None:
            with contextlib.suppress(OSError):
                client.loop_write()  # what was published before the fault still goes out
        self._abandon(unit)
        unit.connect_at = action.reconnect_at
        rebooted = action.reason is Disruption.REBOOT
        with self._changed:
            if not rebooted:
                unit.counts.drops += 1
            self._set_connected(unit, connected=False)
        self._emit(
            EventRecord(
                at=self.now(),
                faculty_id=unit.faculty_id,
                event=EventKind.REBOOTED if rebooted else EventKind.DROPPED,
                detail=f"boot {unit.desk.boot_count}" if rebooted else "socket closed",
            )
        )

    def _set_connected(self, unit: _Unit, *, connected: bool) -> None:
        """Lock held by the caller (``self._changed``)."""
        unit.connected = connected
        self._changed.notify_all()

    def _abandon(self, unit: _Unit) -> None:
        """Close the unit's socket abruptly and forget its client."""
        client, sock = unit.client, unit.sock
        if client is not None:
            client.on_socket_close = None
            client.on_disconnect = None
        if sock is not None:
            assert self._selector is not None
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        unit.client = None
        unit.sock = None
        unit.mask = 0
        unit.inflight.clear()
        unit.offline_info = None
        unit.deadline = math.inf
        if unit.conn is not _Conn.CONNECTING:
            unit.conn = _Conn.IDLE
        if unit.desk.connected:
            unit.desk.on_connection_lost(self.now())
            self._reschedule(unit)

    # ---------------------------------------------------------------- connecting

    def _new_client(self, unit: _Unit) -> mqtt.Client:
        cfg = self.config
        fid = unit.faculty_id
        v5 = cfg.mqtt_version is MqttVersion.V5
        client_id = f"{cfg.client_id_prefix}{fid}"
        if v5:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=mqtt.MQTTv5,
                userdata=unit,
            )
        else:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=mqtt.MQTTv311,
                userdata=unit,
                clean_session=True,
            )
        if unit.username is not None:
            client.username_pw_set(unit.username, unit.password)
        client.will_set(availability_topic(fid), "offline", qos=1, retain=True)
        client.max_inflight_messages_set(cfg.max_inflight)
        client.max_queued_messages_set(cfg.max_queued)
        client.connect_timeout = cfg.connect_timeout
        if self.broker.tls:
            client.tls_set(ca_certs=str(cfg.tls_ca_file) if cfg.tls_ca_file else None)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_socket_close = self._on_socket_close
        if v5:
            client.connect_async(
                self.broker.host, self.broker.port, cfg.keepalive, clean_start=True
            )
        else:
            client.connect_async(self.broker.host, self.broker.port, cfg.keepalive)
        return client

    def _begin_connect(self, unit: _Unit, now: float) -> None:
        assert self._executor is not None
        client = self._new_client(unit)
        unit.client = client
        unit.conn = _Conn.CONNECTING
        self._pending_connects += 1
        future = self._executor.submit(client.reconnect)
        future.add_done_callback(partial(self._connect_done, unit, client))

    def _connect_done(self, unit: _Unit, client: mqtt.Client, future: Future[Any]) -> None:
        """On a connector thread: hand the result to the network thread."""
        self._completions.put((unit, client, future))
        self._wake()

    def _collect_connects(self, now: float, touched: set[_Unit]) -> None:
        while True:
            try:
                unit, client, future = self._completions.get_nowait()
            except queue.Empty:
                return
            self._pending_connects -= 1
            error: str | None = None
            if future.cancelled():
                error = "cancelled"
            elif (exc := future.exception()) is not None:
                error = _describe_error(exc)
            elif future.result() != mqtt.MQTT_ERR_SUCCESS:
                error = mqtt.error_string(future.result())
            sock = client.socket()
            if unit.client is not client or self._stopping:
                # Superseded, or we are stopping: never use this connection.
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
                if unit.client is client or (unit.client is None and unit.conn is _Conn.CONNECTING):
                    unit.client = None
                    unit.conn = _Conn.IDLE
                continue
            if error is not None or sock is None:
                unit.client = None
                unit.conn = _Conn.IDLE
                self._connect_failed(unit, now, error or "no socket")
                continue
            assert self._selector is not None
            unit.sock = sock
            unit.mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.want_write() else 0)
            self._selector.register(sock, unit.mask, unit)
            unit.conn = _Conn.HANDSHAKE
            unit.deadline = now + self.config.connect_timeout + self.config.keepalive
            touched.add(unit)

    def _retry_later(self, unit: _Unit, now: float) -> None:
        """Exponential backoff with jitter: 1 s, 2 s, 4 s … 30 s."""
        unit.failures += 1
        backoff = min(MAX_BACKOFF, MIN_BACKOFF * 2 ** min(unit.failures, 10))
        unit.connect_at = now + backoff * self._jitter.uniform(0.75, 1.25)

    def _connect_failed(self, unit: _Unit, now: float, error: str) -> None:
        self._retry_later(unit, now)
        message = f"cannot connect to {self.broker.display()}: {error}"
        with self._lock:
            unit.last_error = error
            repeated = message == self._last_logged_error
            self._last_logged_error = message
        if repeated:
            _log.debug("desk %d: %s (retrying)", unit.faculty_id, message)
        else:
            _log.warning("desk %d: %s (retrying)", unit.faculty_id, message)

    # ------------------------------------------------------------ paho callbacks
    # They run on the network thread, inside loop_read/loop_write/loop_misc.

    def _on_connect(
        self,
        client: mqtt.Client,
        unit: _Unit,
        flags: mqtt.ConnectFlags,
        reason_code: Any,
        properties: Any,
    ) -> None:
        if client is not unit.client:
            return
        now = self.now()
        if reason_code.is_failure:
            unit.deadline = now + self.config.connect_timeout
            self._connect_failed(unit, now, f"refused: {reason_code}")
            return  # the broker closes the socket; on_disconnect schedules the retry
        unit.conn = _Conn.CONNECTED
        unit.deadline = math.inf
        client.subscribe(
            [
                (state_topic(unit.faculty_id), 1),
                (messages_topic(unit.faculty_id), 1),
                (cancellations_topic(unit.faculty_id), 1),
            ]
        )
        if self._stopping:
            self._say_offline(unit, now)
            return
        if unit.last_error is not None:
            _log.info("desk %d: connected to %s", unit.faculty_id, self.broker.display())
        unit.connected_at = now
        restored = unit.ever_connected
        unit.ever_connected = True
        self._emit(
            EventRecord(
                at=now,
                faculty_id=unit.faculty_id,
                event=EventKind.RECONNECTED if restored else EventKind.CONNECTED,
                detail=f"boot {unit.desk.boot_count}",
            )
        )
        self._execute(unit, unit.desk.on_connected(now))
        self._reschedule(unit)
        # Flagged last, so whoever waits for "connected" already sees the first status.
        with self._changed:
            unit.last_error = None
            self._set_connected(unit, connected=True)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        unit: _Unit,
        flags: mqtt.DisconnectFlags,
        reason_code: Any,
        properties: Any,
    ) -> None:
        if client is not unit.client:
            return
        now = self.now()
        was = unit.conn
        unit.client = None
        unit.conn = _Conn.IDLE
        unit.inflight.clear()
        unit.offline_info = None
        unit.deadline = math.inf
        with self._changed:
            self._set_connected(unit, connected=False)
            if was is _Conn.CONNECTED and not self._stopping:
                unit.counts.connection_losses += 1
        if unit.desk.connected:
            unit.desk.on_connection_lost(now)
            self._reschedule(unit)
        if self._stopping:
            if was is _Conn.CLOSING:
                self._emit(EventRecord(at=now, faculty_id=unit.faculty_id, event=EventKind.STOPPED))
            return
        if was is _Conn.CONNECTED:
            _log.warning("desk %d: connection lost (%s)", unit.faculty_id, reason_code)
            self._emit(
                EventRecord(
                    at=now,
                    faculty_id=unit.faculty_id,
                    event=EventKind.CONNECTION_LOST,
                    detail=str(reason_code),
                )
            )
            # A link that keeps dying soon after connecting (say, another client with
            # our id) backs off like a failing connect; a stable one starts over.
            if now - unit.connected_at >= STABLE_AFTER:
                unit.failures = 0
            self._retry_later(unit, now)
        elif unit.connect_at <= now:
            self._connect_failed(unit, now, f"disconnected during handshake ({reason_code})")

    def _on_message(self, client: mqtt.Client, unit: _Unit, message: mqtt.MQTTMessage) -> None:
        if client is not unit.client:
            return
        fid = unit.faculty_id
        if message.topic == state_topic(fid):
            unit.desk.on_state(self.now(), message.payload)
        elif message.topic == messages_topic(fid):
            if unit.desk.on_request(self.now(), message.payload):
                _log.info(
                    "desk %d shows: %s",
                    fid,
                    bytes(message.payload[:200]).decode("utf-8", "replace"),
                )
                self._reschedule(unit)  # its answer is now due at some time
        elif message.topic == cancellations_topic(fid):
            unit.desk.on_cancellation(self.now(), message.payload)

    def _on_publish(
        self, client: mqtt.Client, unit: _Unit, mid: int, reason_code: Any, properties: Any
    ) -> None:
        if client is unit.client:
            unit.inflight.discard(mid)

    def _on_socket_close(self, client: mqtt.Client, unit: _Unit, sock: Any) -> None:
        if unit.sock is sock and sock is not None:
            assert self._selector is not None
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            unit.sock = None
            unit.mask = 0

    # ------------------------------------------------------------------ stopping

    def _say_offline(self, unit: _Unit, now: float) -> None:
        """Clean stop: a normal DISCONNECT does not fire the will, so say it ourselves."""
        message = availability_message(unit.faculty_id, online=False, at=now)
        unit.offline_info = self._publish(unit, message, Copy.ORIGINAL)
        if unit.offline_info is None and unit.client is not None:
            unit.conn = _Conn.CLOSING
            unit.client.disconnect()

    def _shutdown(self) -> None:
        self._stopping = True
        assert self._executor is not None
        self._executor.shutdown(wait=False, cancel_futures=True)
        now = self.now()
        end = now + self.config.shutdown_timeout
        for unit in self._units:
            unit.desk.faults.discard_held()
            if unit.conn is _Conn.CONNECTED:
                self._say_offline(unit, now)
        while True:
            touched: set[_Unit] = set()
            for unit in self._units:
                client = unit.client
                if unit.conn is not _Conn.CONNECTED or client is None:
                    continue
                info = unit.offline_info
                if info is None:
                    self._say_offline(unit, now)
                elif info.is_published():
                    unit.conn = _Conn.CLOSING
                    client.disconnect()
                touched.add(unit)
            self._sync_interest(touched)
            busy = self._pending_connects > 0 or any(u.conn is not _Conn.IDLE for u in self._units)
            now = self.now()
            if not busy or now >= end:
                break
            touched = set()
            self._poll(min(0.05, end - now), touched)
            now = self.now()
            self._collect_connects(now, touched)
            for unit in self._units:
                if unit.client is not None and unit.sock is not None:
                    unit.client.loop_misc()
            self._sync_interest(touched)
        leftover = [u.faculty_id for u in self._units if u.conn is not _Conn.IDLE]
        if leftover:
            _log.warning(
                "%d desk(s) did not disconnect cleanly within %.0fs; closing their sockets",
                len(leftover),
                self.config.shutdown_timeout,
            )
        self._force_close_all()

    def _force_close_all(self) -> None:
        for unit in self._units:
            if unit.client is not None or unit.sock is not None:
                self._abandon(unit)
            with self._changed:
                self._set_connected(unit, connected=False)

    def _teardown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        # Connections opened while we were stopping: close them.
        while True:
            try:
                _, client, future = self._completions.get_nowait()
            except queue.Empty:
                break
            if not future.cancelled() and future.exception() is None:
                sock = client.socket()
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
        with self._lock:
            self._stopped_at = self.now()
        if self._selector is not None:
            self._selector.close()
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._wake_r = self._wake_w = None
