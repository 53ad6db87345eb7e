"""The LISTEN loop of SPEC 6: keep a ``FacultyCache`` equal to the faculty table.

One background thread owns one autocommit connection (never a pooled one:
LISTEN is session state) and runs this cycle:

1. connect, ``LISTEN faculty_changed``, *then* reload every faculty row into
   the cache and emit ``Connected`` and ``Resynced``. The order matters: a
   change committed between the reload and the LISTEN would otherwise be
   lost, while one committed between LISTEN and the reload merely arrives
   twice (and the second copy is skipped by version).
2. drain the notifications available right now (without waiting to fill a
   batch), keep the newest hint per id, skip every id whose notified version
   the cache already has, fetch the rest in one query and store them
   version-aware; emit one ``FacultyChanged`` or ``FacultyRemoved`` per row
   that actually changed. A burst of notifications for one row costs one
   fetch.
3. when nothing arrives for ``poll_interval`` seconds, run ``SELECT 1`` so a
   dead connection is found without traffic.
4. when the connection fails: emit ``Disconnected``, then reconnect with
   capped exponential backoff and jitter, emitting ``Reconnecting`` before
   each wait, and go back to 1: notifications sent while away are gone, so
   the reload is what makes the cache right again.

A notification is only a hint (SPEC 5.3): the row is always read back.

Waiting is done with a selector on the connection's socket *and* a wake-up
socket, then ``conn.notifies(timeout=0)`` collects what arrived. That lets
``close()`` wake the thread at once, without touching the connection from
another thread, and lets a server-side disconnect (which leaves the socket
readable but yields no notification) be detected immediately by the
liveness query instead of spinning until the poll interval ends.

Events reach subscribers on the listener's thread, in order. A subscriber
must not block for long (a kiosk hops to its GUI thread with a queued
signal). Subscribing after ``start()``: subscribe first, then read
``cache.all()``. The cache is always updated *before* the event for that
change is emitted, so a subscriber that does this in that order misses
nothing (it may see a change both in the snapshot and as an event, which is
harmless because events carry whole rows).
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from consultease.db.connection import connect, first_line
from consultease.db.readmodel import load_views
from consultease.domain import FacultyView
from consultease.errors import ConsultEaseError
from consultease.live.cache import FacultyCache
from consultease.retry import RetryPolicy

log = logging.getLogger(__name__)

CHANNEL = "faculty_changed"
"""The channel the faculty triggers notify on (sql/002_faculty_triggers.sql)."""

INITIAL_BACKOFF = 0.1
"""Seconds before the first reconnect attempt (before jitter)."""

MAX_BATCH = 10_000
"""At most this many notifications are coalesced in one cycle, so a flood
cannot postpone the first fetch indefinitely."""

_KEEPALIVES: dict[str, int] = {
    # A peer that vanishes without closing the socket (a cable pulled) is
    # noticed by the liveness query within ~10 s instead of the kernel default.
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}


# -- events -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class FacultyChanged:
    """An active faculty row was added or changed; ``view`` is the row as now cached."""

    view: FacultyView


@dataclass(frozen=True, kw_only=True, slots=True)
class FacultyRemoved:
    """A faculty left the picture: deactivated (``active = false``) or deleted."""

    faculty_id: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Resynced:
    """The whole cache was reloaded; ``views`` is its full content in display order.

    Replace everything you show with it: rows absent here are gone.
    """

    views: tuple[FacultyView, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Connected:
    """Live updates are on again (always followed by ``Resynced``)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Disconnected:
    """Live updates are down; the cache keeps its last picture until the next resync."""

    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Reconnecting:
    """The listener waits ``delay`` seconds before connection attempt number ``attempt``."""

    attempt: int
    delay: float


ListenerEvent = FacultyChanged | FacultyRemoved | Resynced | Connected | Disconnected | Reconnecting
Subscriber = Callable[[ListenerEvent], None]


@dataclass(frozen=True, kw_only=True, slots=True)
class ListenerStats:
    """Counters since the listener was created (a snapshot)."""

    notifications: int = 0
    """Notifications received."""
    skipped: int = 0
    """Ids not fetched because the cache already had the notified version."""
    fetches: int = 0
    """Coalesced fetch queries run."""
    rows_fetched: int = 0
    """Rows those queries returned (resyncs not included)."""
    resyncs: int = 0
    """Full reloads: after every (re)connect, and periodically."""
    reconnects: int = 0
    """Successful connections after the first one."""
    subscriber_errors: int = 0
    """Exceptions raised by subscribers (logged and otherwise ignored)."""


# -- pure helpers -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Hint:
    """What one notification payload says (SPEC 5.3); never trusted beyond the id."""

    op: str
    id: int
    version: int | None
    active: bool | None


def parse_hint(payload: str) -> Hint | None:
    """The hint in a ``faculty_changed`` payload, or ``None`` when it has no usable id."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    faculty_id = data.get("id")
    if not isinstance(faculty_id, int) or isinstance(faculty_id, bool):
        return None
    version = data.get("version")
    active = data.get("active")
    op = data.get("op")
    return Hint(
        op=op.upper() if isinstance(op, str) else "UPDATE",
        id=faculty_id,
        version=version if isinstance(version, int) and not isinstance(version, bool) else None,
        active=active if isinstance(active, bool) else None,
    )


def coalesce(batch: Iterable[psycopg.Notify]) -> tuple[dict[int, Hint], list[int]]:
    """One cycle's notifications as the newest hint per id, plus the ids deleted.

    A hint without a version (not from our trigger) is kept, so it forces a
    fetch. Unusable payloads are logged and dropped.
    """
    newest: dict[int, Hint] = {}
    deleted: dict[int, None] = {}  # an ordered set
    for note in batch:
        hint = parse_hint(note.payload)
        if hint is None:
            log.warning("ignoring unusable %s payload %.200r", CHANNEL, note.payload)
            continue
        if hint.op == "DELETE":
            deleted[hint.id] = None
            newest.pop(hint.id, None)
            continue
        if hint.id in deleted:
            continue  # ids are never reused: nothing can follow a DELETE
        current = newest.get(hint.id)
        if (
            current is None
            or hint.version is None
            or (current.version is not None and hint.version > current.version)
        ):
            newest[hint.id] = hint
    return newest, list(deleted)


class _SessionEnd(enum.Enum):
    STOPPED = "stopped"
    LOST = "lost"
    """A working connection failed."""
    FAILED = "failed"
    """No working connection was made."""


class _Stopping(Exception):
    """Raised inside the loop when ``close()`` was called."""


# -- the listener -------------------------------------------------------------------


class FacultyListener:
    """Keeps a ``FacultyCache`` in step with the database and tells subscribers.

    Use ``start()`` once and ``close()`` once (or the object as a context
    manager). ``close()`` returns within about ``timeout`` seconds; it can
    only be late if the thread is inside a single query or connection
    attempt on a network that has stopped answering (bounded by TCP
    keepalives and the 5 s connect timeout).
    """

    def __init__(
        self,
        database_url: str,
        *,
        cache: FacultyCache | None = None,
        poll_interval: float = 0.5,
        max_backoff: float = 10.0,
        application_name: str = "consultease-listener",
    ) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        if max_backoff <= 0:
            raise ValueError("max_backoff must be positive")
        self._url = database_url
        self._cache = cache if cache is not None else FacultyCache()
        self._poll_interval = poll_interval
        self._retry = RetryPolicy(
            max_attempts=None, base_delay=INITIAL_BACKOFF, max_delay=max_backoff
        )
        self._application_name = application_name
        # A full reload well inside the cache TTL keeps entries from expiring
        # on a quiet day and repairs anything a lost notification missed.
        self._resync_interval = self._cache.ttl / 2

        self._subscribers: tuple[tuple[object, Subscriber], ...] = ()
        self._subscribers_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._stats = ListenerStats()
        self._connected = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Touched by the listener thread only.
        self._ever_connected = False
        self._down_reported = False
        # close() writes to one end to wake the thread's selector; made by start().
        self._wake_lock = threading.Lock()
        self._wake_pair: tuple[socket.socket, socket.socket] | None = None

    # -- public surface ------------------------------------------------------------

    @property
    def cache(self) -> FacultyCache:
        return self._cache

    @property
    def application_name(self) -> str:
        """How the listener's session shows in ``pg_stat_activity``; also its thread's name."""
        return self._application_name

    @property
    def connected(self) -> bool:
        """True between ``Connected`` and ``Disconnected``."""
        return self._connected

    @property
    def stats(self) -> ListenerStats:
        with self._stats_lock:
            return self._stats

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` on the listener thread for every later event.

        Returns a function that unsubscribes (idempotent). A late subscriber
        should read ``cache.all()`` right after subscribing for the picture
        so far (see the module docstring).
        """
        token = object()
        with self._subscribers_lock:
            self._subscribers = (*self._subscribers, (token, callback))

        def unsubscribe() -> None:
            with self._subscribers_lock:
                self._subscribers = tuple(s for s in self._subscribers if s[0] is not token)

        return unsubscribe

    def start(self) -> None:
        """Start the background thread. A listener starts once."""
        if self._thread is not None or self._stop.is_set():
            raise RuntimeError("a FacultyListener can be started only once")
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        self._wake_pair = (reader, writer)
        self._thread = threading.Thread(target=self._run, name=self._application_name, daemon=False)
        self._thread.start()

    def close(self, timeout: float = 1.0) -> None:
        """Stop the thread and close the connection. Safe to call more than once."""
        self._stop.set()
        self._wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("listener thread did not stop within %.1f s", timeout)
                return  # the thread closes the wake-up sockets when it ends
        self._close_wake_sockets()

    def __enter__(self) -> FacultyListener:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the thread ---------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        try:
            while not self._stop.is_set():
                outcome = self._session()
                if outcome is _SessionEnd.STOPPED:
                    break
                attempt = 1 if outcome is _SessionEnd.LOST else attempt + 1
                delay = self._retry.delay(attempt)
                self._emit(Reconnecting(attempt=attempt, delay=delay))
                if self._stop.wait(delay):
                    break
            if self._connected:
                self._connected = False
                self._emit(Disconnected(reason="listener closed"))
        finally:
            self._connected = False
            self._close_wake_sockets()

    def _session(self) -> _SessionEnd:
        """One connection, from connect to failure or close()."""
        conn: psycopg.Connection[Any] | None = None
        try:
            conn = connect(
                self._url,
                autocommit=True,
                application_name=self._application_name,
                **_KEEPALIVES,
            )
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
            self._resync(conn, announce=True)
            if self._ever_connected:
                self._count(reconnects=1)
            self._ever_connected = True
            self._down_reported = False
            self._serve(conn)
        except _Stopping:
            return _SessionEnd.STOPPED
        except Exception as exc:
            if self._stop.is_set():
                return _SessionEnd.STOPPED
            return self._lost(exc)
        finally:
            if conn is not None:
                conn.close()
        return _SessionEnd.STOPPED  # _serve only returns by raising

    def _lost(self, exc: Exception) -> _SessionEnd:
        """Report a failure once per outage; say whether a live connection was lost."""
        reason = first_line(exc)
        if isinstance(exc, psycopg.Error | ConsultEaseError):
            log.warning("faculty listener lost the database: %s", reason)
        else:
            log.exception("faculty listener failed; reconnecting")
        was_connected = self._connected
        if was_connected or not self._down_reported:
            self._connected = False
            self._down_reported = True
            self._emit(Disconnected(reason=reason))
        return _SessionEnd.LOST if was_connected else _SessionEnd.FAILED

    def _serve(self, conn: psycopg.Connection[Any]) -> None:
        """Apply notifications until the connection fails (raises) or close() (_Stopping)."""
        with selectors.DefaultSelector() as selector:
            selector.register(conn.fileno(), selectors.EVENT_READ, "db")
            assert self._wake_pair is not None
            selector.register(self._wake_pair[0], selectors.EVENT_READ, "wake")
            next_resync = time.monotonic() + self._resync_interval
            while True:
                self._check_stop()
                batch = self._drain(conn)
                if not batch:
                    ready = {key.data for key, _ in selector.select(self._poll_interval)}
                    self._check_stop()
                    batch = self._drain(conn) if "db" in ready else []
                    if not batch:
                        # Quiet for a poll interval, or readable without a
                        # notification (the server sent an error or closed).
                        conn.execute("SELECT 1")
                if batch:
                    self._apply(conn, batch)
                if time.monotonic() >= next_resync:
                    self._resync(conn, announce=False)
                    next_resync = time.monotonic() + self._resync_interval

    def _drain(self, conn: psycopg.Connection[Any]) -> list[psycopg.Notify]:
        """Every notification available now, without waiting for more."""
        batch: list[psycopg.Notify] = []
        while len(batch) < MAX_BATCH:
            got = list(conn.notifies(timeout=0))
            if not got:
                break
            batch.extend(got)
        return batch

    def _resync(self, conn: psycopg.Connection[Any], *, announce: bool) -> None:
        views = load_views(conn)
        self._cache.replace_all(views)
        self._count(resyncs=1)
        log.info("faculty listener resynced %d faculty", len(views))
        if announce:
            self._connected = True
            self._emit(Connected())
        self._emit(Resynced(views=tuple(self._cache.all())))

    def _apply(self, conn: psycopg.Connection[Any], batch: Sequence[psycopg.Notify]) -> None:
        """Coalesce one cycle's notifications into at most one fetch."""
        newest, deleted = coalesce(batch)
        to_fetch = [h.id for h in newest.values() if self._needs_fetch(h)]
        self._count(notifications=len(batch), skipped=len(newest) - len(to_fetch))

        events: list[ListenerEvent] = []
        if to_fetch:
            views = load_views(conn, to_fetch, include_inactive=True)
            self._count(fetches=1, rows_fetched=len(views))
            for view in views:
                if self._cache.put(view):
                    events.append(
                        FacultyChanged(view=view)
                        if view.active
                        else FacultyRemoved(faculty_id=view.id)
                    )
            # Asked for but not found: deleted since the notification.
            deleted.extend(sorted(set(to_fetch).difference(v.id for v in views)))
        events.extend(
            FacultyRemoved(faculty_id=faculty_id)
            for faculty_id in deleted
            if self._cache.remove(faculty_id)
        )
        for event in events:
            self._emit(event)

    def _needs_fetch(self, hint: Hint) -> bool:
        if hint.version is None:
            return True  # not from our trigger: read the row to be sure
        known = self._cache.newest_version(hint.id)
        if known is not None and hint.version <= known:
            return False  # the cache has this version or a newer one
        # Deactivated and not shown: there is nothing to remove.
        return not (hint.active is False and self._cache.version_of(hint.id) is None)

    # -- small parts ------------------------------------------------------------------

    def _emit(self, event: ListenerEvent) -> None:
        for _, callback in self._subscribers:
            try:
                callback(event)
            except Exception:
                self._count(subscriber_errors=1)
                log.exception(
                    "faculty listener subscriber %r failed on %s", callback, type(event).__name__
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

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise _Stopping

    def _wake(self) -> None:
        # Already closed, or the buffer is full: either way it is awake.
        with self._wake_lock, contextlib.suppress(OSError):
            if self._wake_pair is not None:
                self._wake_pair[1].send(b"\0")

    def _close_wake_sockets(self) -> None:
        with self._wake_lock:
            if self._wake_pair is not None:
                for end in self._wake_pair:
                    end.close()
