"""Kiosk live updates without a LISTEN connection: the broker's retained ``…/state`` as hints.

The state publisher (SPEC 3.4) publishes every committed change of a faculty
row as a retained message on ``consultease/faculty/{id}/state`` carrying the
row ``version``, and clears it (an empty payload) when the row goes. A kiosk
that follows those topics learns *which* row changed and *to which
version*, and reads the row itself over an ordinary connection: a read
replica, or pgbouncer, since nothing here is session state. The broker does
the fan-out (retained messages, one subscription per kiosk); the primary
sees no kiosk at all.

The rules are the listener's (``consultease.live.listener``), transposed:

1. connect to the broker, subscribe, and only once the subscription is
   acknowledged reload every faculty row (a change committed before that
   arrives as a retained message, or is in the reload; never lost), then
   emit ``Connected`` and ``Resynced``;
2. collect the hints available now, newest version per row; skip every row
   whose hinted version the cache already has; fetch the rest in one query
   and store them version-aware; one ``FacultyChanged``/``FacultyRemoved`` per
   row that actually changed;
3. a replica may be behind the hint: a row read at an older version than
   hinted (or still active after its state was cleared) is read again,
   after a short pause, until it catches up (``lag_limit`` at most);
4. when the broker or the database connection fails: ``Disconnected``,
   reconnect with backoff (``Reconnecting`` before each wait), and back to 1:
   hints sent while away may be missed, the reload repairs it. A reload also
   runs every half cache TTL, and the database is pinged when idle.

One worker thread owns the database connection and emits every event, in
order; paho's network thread only records hints and wakes it.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Final

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from consultease.config import MqttEndpoint
from consultease.db.connection import connect, first_line
from consultease.db.readmodel import load_views
from consultease.errors import ConsultEaseError
from consultease.live.cache import FacultyCache
from consultease.live.listener import (
    INITIAL_BACKOFF,
    Connected,
    Disconnected,
    FacultyChanged,
    FacultyRemoved,
    ListenerEvent,
    ListenerStats,
    Reconnecting,
    Resynced,
    Subscriber,
)
from consultease.payloads import FACULTY_TOPIC_PREFIX, STATE_SUFFIX
from consultease.retry import RetryPolicy

log = logging.getLogger(__name__)

STATE_FILTER: Final = f"{FACULTY_TOPIC_PREFIX}+/{STATE_SUFFIX}"
KEEPALIVE: Final = 15
"""Seconds between MQTT pings: a broker that vanished is noticed within ~20 s."""
_CLEARED: Final = -1
"""A hint with this version: the row's state was cleared (removed or deactivated)."""


def parse_state(topic: str, payload: bytes) -> tuple[int, int] | None:
    """``(faculty id, version)`` from one ``…/state`` message; ``_CLEARED`` as the
    version for an empty payload; ``None`` when it is not a usable state message."""
    parts = topic.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}/" != FACULTY_TOPIC_PREFIX:
        return None
    if parts[3] != STATE_SUFFIX or not parts[2].isdigit():
        return None
    faculty_id = int(parts[2])
    if not payload:
        return faculty_id, _CLEARED
    try:
        version = json.loads(payload).get("version")
    except (ValueError, AttributeError):
        return None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return None
    return faculty_id, version


class _Stopping(Exception):
    pass


class _Lost(Exception):
    """The broker connection went away (the worker reconnects nothing itself: paho does)."""


class BrokerFeed:
    """A ``LiveFeed`` (``consultease.live.feed``) fed by the broker's retained state.

    ``start()`` once, ``close()`` once (or use it as a context manager).
    """

    def __init__(
        self,
        database_url: str,
        endpoint: MqttEndpoint,
        *,
        cache: FacultyCache | None = None,
        client_id: str | None = None,
        ca_file: str | None = None,
        application_name: str = "consultease-kiosk",
        max_backoff: float = 10.0,
        idle_ping: float = 5.0,
        lag_limit: float = 30.0,
    ) -> None:
        self._url = database_url
        self._endpoint = endpoint
        self._cache = cache if cache is not None else FacultyCache()
        self._application_name = application_name
        self._idle_ping = idle_ping
        self._lag_limit = lag_limit
        self._retry = RetryPolicy(
            max_attempts=None, base_delay=INITIAL_BACKOFF, max_delay=max_backoff
        )
        self._resync_interval = self._cache.ttl / 2
        self._client_id = client_id or (
            f"consultease-kiosk-{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
        )
        self._client = self._make_client(ca_file)

        self._subscribers: tuple[tuple[object, Subscriber], ...] = ()
        self._subscribers_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._stats = ListenerStats()
        # Shared with paho's thread, under _lock.
        self._lock = threading.Condition()
        self._hints: dict[int, int] = {}
        self._subscribed_generation = 0
        self._broker_up = False
        self._broker_reason = "not connected yet"
        self._stop = threading.Event()
        # The worker's own.
        self._connected = False
        self._down_reported = False
        self._conn: psycopg.Connection[Any] | None = None
        self._synced_generation = 0
        self._last_db_use = time.monotonic()
        self._ever_connected = False
        self._lagging: dict[int, tuple[int, float, float]] = {}
        """id -> (hinted version, next read at, give up at) for rows a replica has not caught up."""
        self._thread: threading.Thread | None = None

    # -- the LiveFeed surface ------------------------------------------------------------

    @property
    def cache(self) -> FacultyCache:
        return self._cache

    @property
    def application_name(self) -> str:
        return self._application_name

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def stats(self) -> ListenerStats:
        with self._stats_lock:
            return self._stats

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        token = object()
        with self._subscribers_lock:
            self._subscribers = (*self._subscribers, (token, callback))

        def unsubscribe() -> None:
            with self._subscribers_lock:
                self._subscribers = tuple(s for s in self._subscribers if s[0] is not token)

        return unsubscribe

    def start(self) -> None:
        if self._thread is not None or self._stop.is_set():
            raise RuntimeError("a BrokerFeed can be started only once")
        self._thread = threading.Thread(target=self._run, name=self._application_name)
        self._thread.start()
        self._client.connect_async(self._endpoint.host, self._endpoint.port, keepalive=KEEPALIVE)
        self._client.loop_start()

    def close(self, timeout: float = 1.0) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("broker feed thread did not stop within %.1f s", timeout)
        if thread is not None:
            self._client.disconnect()
            self._client.loop_stop()

    def __enter__(self) -> BrokerFeed:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- paho's thread: record and wake ----------------------------------------------------

    def _make_client(self, ca_file: str | None) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,  # nothing to keep: every reconnect reloads
            reconnect_on_failure=True,
        )
        self._endpoint.log_in(client, ca_file)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._broker_down(f"the broker refused the kiosk: {reason_code}")
            return
        client.subscribe(STATE_FILTER, qos=1)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if any(code.is_failure for code in reason_codes):
            self._broker_down(f"the broker refused the subscription to {STATE_FILTER}")
            return
        with self._lock:
            self._broker_up = True
            self._subscribed_generation += 1
            self._lock.notify_all()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._broker_down(f"lost the broker ({reason_code})")

    def _broker_down(self, reason: str) -> None:
        with self._lock:
            self._broker_up = False
            self._broker_reason = reason
            self._lock.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        hint = parse_state(message.topic, bytes(message.payload))
        if hint is None:
            log.debug("ignoring %s %.80r", message.topic, bytes(message.payload))
            return
        faculty_id, version = hint
        with self._lock:
            known = self._hints.get(faculty_id)
            # The newest version wins; a clear stands until a newer state arrives.
            if known is None or version == _CLEARED or (known != _CLEARED and version > known):
                self._hints[faculty_id] = version
            self._lock.notify_all()
        self._count(notifications=1)

    # -- the worker ----------------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        next_resync = time.monotonic() + self._resync_interval
        try:
            while not self._stop.is_set():
                try:
                    if self._wait_for_work(next_resync):
                        self._resync()
                        next_resync = time.monotonic() + self._resync_interval
                    else:
                        self._apply_hints()
                    attempt = 0
                except _Stopping:
                    break
                except _Lost as exc:
                    self._down(str(exc))
                except (psycopg.Error, ConsultEaseError) as exc:
                    self._close_db()
                    self._down(f"database: {first_line(exc)}")
                    attempt += 1
                    delay = self._retry.delay(attempt)
                    self._emit(Reconnecting(attempt=attempt, delay=delay))
                    if self._stop.wait(delay):
                        break
        finally:
            self._close_db()
            if self._connected:
                self._connected = False
                self._emit(Disconnected(reason="live updates closed"))

    def _wait_for_work(self, next_resync: float) -> bool:
        """Block until there is work: True for a full reload, False for hints to apply.

        Raises ``_Lost`` when the broker went away while live, ``_Stopping`` on close.
        Pings the database while idle, so a dead one is noticed without traffic.
        """
        while True:
            with self._lock:
                if self._stop.is_set():
                    raise _Stopping
                if self._broker_up:
                    now = time.monotonic()
                    if self._subscribed_generation != self._synced_generation:
                        return True
                    if now >= next_resync:
                        return True
                    if self._hints or self._lagging_due():
                        return False
                elif self._connected:
                    raise _Lost(self._broker_reason)
                self._lock.wait(self._next_wake(next_resync))
            if self._connected and time.monotonic() - self._last_db_use >= self._idle_ping:
                self._db().execute("SELECT 1")
                self._last_db_use = time.monotonic()

    def _next_wake(self, next_resync: float) -> float:
        now = time.monotonic()
        wake = min(next_resync, self._last_db_use + self._idle_ping)
        if self._lagging:
            wake = min(wake, *(at for _, at, _ in self._lagging.values()))
        return max(0.01, wake - now)

    def _lagging_due(self) -> bool:
        now = time.monotonic()
        return any(at <= now for _, at, _ in self._lagging.values())

    def _db(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            # No prepared statements and no session state: a transaction pooler
            # (pgbouncer) or a read replica serves this connection as well.
            self._conn = connect(
                self._url,
                autocommit=True,
                application_name=self._application_name,
                prepare_threshold=None,
            )
        return self._conn

    def _close_db(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _resync(self) -> None:
        with self._lock:
            generation = self._subscribed_generation
        views = load_views(self._db())
        self._last_db_use = time.monotonic()
        self._cache.replace_all(views)
        self._synced_generation = generation
        self._count(resyncs=1)
        log.info("kiosk feed resynced %d faculty", len(views))
        if not self._connected:
            if self._ever_connected:
                self._count(reconnects=1)
            self._ever_connected = True
            self._connected = True
            self._down_reported = False
            self._emit(Connected())
        self._emit(Resynced(views=tuple(self._cache.all())))

    def _apply_hints(self) -> None:
        with self._lock:
            hints, self._hints = self._hints, {}
        now = time.monotonic()
        for faculty_id, (version, at, give_up) in list(self._lagging.items()):
            if at <= now and faculty_id not in hints:
                hints[faculty_id] = version
            if give_up <= now:
                del self._lagging[faculty_id]
                log.warning(
                    "faculty %d: the database still lags the broker's state (version %d) "
                    "after %.0f s; the next reload will repair it",
                    faculty_id,
                    version,
                    self._lag_limit,
                )
                hints.pop(faculty_id, None)
        wanted = {i: v for i, v in hints.items() if self._needs_fetch(i, v)}
        self._count(skipped=len(hints) - len(wanted))
        if not wanted:
            return
        views = load_views(self._db(), sorted(wanted), include_inactive=True)
        self._last_db_use = time.monotonic()
        self._count(fetches=1, rows_fetched=len(views))
        events: list[ListenerEvent] = []
        found = {view.id for view in views}
        for view in views:
            if self._cache.put(view):
                events.append(
                    FacultyChanged(view=view) if view.active else FacultyRemoved(faculty_id=view.id)
                )
        events.extend(
            FacultyRemoved(faculty_id=faculty_id)
            for faculty_id in sorted(wanted.keys() - found)
            if self._cache.remove(faculty_id)
        )
        self._note_lag(wanted, {view.id: view for view in views}, now)
        for event in events:
            self._emit(event)

    def _needs_fetch(self, faculty_id: int, version: int) -> bool:
        if version == _CLEARED:
            return self._cache.get(faculty_id) is not None  # shown: find out why it went
        known = self._cache.newest_version(faculty_id)
        return known is None or version > known

    def _note_lag(self, wanted: dict[int, int], views: dict[int, Any], now: float) -> None:
        """Rows the database has not caught up with yet are read again shortly."""
        for faculty_id, version in wanted.items():
            view = views.get(faculty_id)
            behind = (
                view is not None and view.active
                if version == _CLEARED
                else view is None or view.version < version
            )
            if not behind:
                self._lagging.pop(faculty_id, None)
                continue
            _, _, give_up = self._lagging.get(faculty_id, (version, now, now + self._lag_limit))
            delay = min(1.0, 0.05 * 2 ** min(5, len(self._lagging)))
            self._lagging[faculty_id] = (version, now + delay, give_up)

    def _down(self, reason: str) -> None:
        """Live updates are down: say so once per outage, and reload when back."""
        if self._connected or not self._down_reported:
            log.warning("kiosk live updates down: %s", reason)
            self._connected = False
            self._down_reported = True
            self._emit(Disconnected(reason=reason))
        # Whatever was hinted while down is covered by the reload after the next subscription.
        with self._lock:
            self._hints.clear()
            if self._broker_up:
                # The database failed, not the broker: reload once it answers again.
                self._synced_generation = -1
        self._lagging.clear()

    # -- small parts ---------------------------------------------------------------------

    def _emit(self, event: ListenerEvent) -> None:
        for _, callback in self._subscribers:
            try:
                callback(event)
            except Exception:
                self._count(subscriber_errors=1)
                log.exception(
                    "kiosk feed subscriber %r failed on %s", callback, type(event).__name__
                )

    def _count(self, **increments: int) -> None:
        with self._stats_lock:
            current = self._stats
            self._stats = ListenerStats(
                notifications=current.notifications + increments.get("notifications", 0),
                skipped=current.skipped + increments.get("skipped", 0),
                fetches=current.fetches + increments.get("fetches", 0),
                rows_fetched=current.rows_fetched + increments.get("rows_fetched", 0),
                resyncs=current.resyncs + increments.get("resyncs", 0),
                reconnects=current.reconnects + increments.get("reconnects", 0),
                subscriber_errors=current.subscriber_errors
                + increments.get("subscriber_errors", 0),
            )
