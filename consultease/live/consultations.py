"""Consultation requests as a kiosk sees them, kept live from ``consultation_changed``.

Two parts, both for readers (the kiosk's status view, the admin panel's list
of open requests, the terminal board):

- ``ConsultationView`` and ``load_consultations``/``load_open``: one query that
  reads a request with its lecturer's name and room (the room is what an
  accepted student needs next) and the database clock at the read, so the
  kiosk can show "waiting 2:14" without trusting its own clock.
- ``ConsultationWatcher``: a thread of its own with its own autocommit
  connection that LISTENs on ``consultation_changed`` (SPEC 9.1). A
  notification is a hint (SPEC 5.3): the watcher reads the row back and hands
  subscribers a ``ConsultationChanged`` with the whole view. After every
  (re)connect it LISTENs first, then reads every request it was asked to
  follow (``watch``), since notifications sent while it was away are gone,
  and emits ``ConsultationsResynced``. With ``follow_all`` it reports every
  request (the admin panel and the terminal board); otherwise only watched ids
  (a kiosk follows the requests it made).

Subscribers are called on the watcher thread and must not block (the kiosk
hops to its GUI thread with a queued signal, ``kiosk_ui.consultation_bridge``).
The same wake-up socket as ``FacultyListener`` lets ``close()`` stop the
thread at once without touching its connection from another thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import selectors
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from consultease.db.connection import connect, first_line
from consultease.errors import ConsultEaseError
from consultease.retry import RetryPolicy

log = logging.getLogger(__name__)

CHANNEL = "consultation_changed"
"""The channel the consultation trigger notifies on (SPEC 9.1)."""

OPEN_STATUSES = ("pending", "accepted")
FINAL_STATUSES = ("declined", "cancelled", "expired", "completed")

_KEEPALIVES: dict[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class ConsultationView:
    """One request with what a student or an admin needs to see beside it."""

    id: int
    faculty_id: int
    faculty_name: str
    room: str | None
    student_name: str
    student_id: str | None
    course_code: str | None
    message: str
    status: str
    version: int
    created_at: datetime
    updated_at: datetime
    responded_at: datetime | None
    closed_by: str | None
    read_at: datetime
    """The database clock when the row was read: ``read_at - created_at`` is how long
    the request had been waiting then, whatever the kiosk's clock says."""

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def waited(self) -> timedelta:
        """How long the request had existed when it was read (never negative)."""
        return max(timedelta(0), self.read_at - self.created_at)


_SELECT = """
SELECT c.id, c.faculty_id, f.name AS faculty_name, f.room, c.student_name, c.student_id,
       c.course_code, c.message, c.status, c.version, c.created_at, c.updated_at,
       c.responded_at, c.closed_by, now() AS read_at
FROM consultation c JOIN faculty f ON f.id = c.faculty_id
"""


def _view(row: dict[str, Any]) -> ConsultationView:
    return ConsultationView(
        id=int(row["id"]),
        faculty_id=int(row["faculty_id"]),
        faculty_name=str(row["faculty_name"]),
        room=row["room"],
        student_name=str(row["student_name"]),
        student_id=row["student_id"],
        course_code=row["course_code"],
        message=str(row["message"]),
        status=str(row["status"]),
        version=int(row["version"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        responded_at=row["responded_at"],
        closed_by=row["closed_by"],
        read_at=row["read_at"],
    )


def load_consultations(conn: psycopg.Connection[Any], ids: Sequence[int]) -> list[ConsultationView]:
    """The requests with these ids (missing ones are absent), by id."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            _SELECT + "WHERE c.id = ANY(%(ids)s::bigint[]) ORDER BY c.id", {"ids": list(ids)}
        )
        return [_view(row) for row in cur.fetchall()]


def load_open(
    conn: psycopg.Connection[Any], *, faculty_id: int | None = None
) -> list[ConsultationView]:
    """Every open (pending or accepted) request, by lecturer name then age."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            _SELECT + "WHERE c.status = ANY(%(open)s::text[])"
            " AND (%(faculty)s::bigint IS NULL OR c.faculty_id = %(faculty)s::bigint)"
            " ORDER BY lower(f.name), f.id, c.created_at, c.id",
            {"open": list(OPEN_STATUSES), "faculty": faculty_id},
        )
        return [_view(row) for row in cur.fetchall()]


def parse_hint(payload: str) -> int | None:
    """The consultation id a notification names, or ``None`` if it names none."""
    try:
        data = json.loads(payload)
        value = data["id"]
    except (ValueError, TypeError, KeyError):
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        return int(value)
    except ValueError:
        return None


# -- events -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class ConsultationChanged:
    """A followed request changed (or was read again after a reconnect)."""

    view: ConsultationView


@dataclass(frozen=True, kw_only=True, slots=True)
class ConsultationsResynced:
    """Live updates are on (again): ``views`` are the followed requests as they are now.

    With ``follow_all`` that is every open request; otherwise the watched ids
    that still exist."""

    views: tuple[ConsultationView, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class ConsultationsDown:
    """Live updates are down; the watcher reconnects by itself."""

    reason: str


WatcherEvent = ConsultationChanged | ConsultationsResynced | ConsultationsDown
WatcherSubscriber = Callable[[WatcherEvent], None]


class _Stopping(Exception):
    """close() was called: leave the session loop."""


class ConsultationWatcher:
    """Follows consultation requests through LISTEN; see the module docstring.

    ``start()`` once, ``close()`` once (or use it as a context manager).
    ``watch``/``unwatch`` may be called from any thread.
    """

    def __init__(
        self,
        database_url: str,
        *,
        follow_all: bool = False,
        poll_interval: float = 0.5,
        max_backoff: float = 10.0,
        application_name: str = "consultease-consultations",
    ) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self._url = database_url
        self._follow_all = follow_all
        self._poll_interval = poll_interval
        self._retry = RetryPolicy(max_attempts=None, base_delay=0.1, max_delay=max_backoff)
        self._application_name = application_name
        self._lock = threading.Lock()
        self._watched: set[int] = set()
        self._pending_reads: set[int] = set()
        """Ids watched since the last read: read at once so a missed change shows."""
        self._subscribers: tuple[tuple[object, WatcherSubscriber], ...] = ()
        self._versions: dict[int, int] = {}
        self._connected = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_pair: tuple[socket.socket, socket.socket] | None = None
        self._wake_lock = threading.Lock()

    # -- public surface ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def application_name(self) -> str:
        return self._application_name

    def subscribe(self, callback: WatcherSubscriber) -> Callable[[], None]:
        token = object()
        with self._lock:
            self._subscribers = (*self._subscribers, (token, callback))

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s[0] is not token)

        return unsubscribe

    def watch(self, consultation_id: int) -> None:
        """Report changes of this request from now on (its current state comes at once)."""
        with self._lock:
            self._watched.add(consultation_id)
            self._pending_reads.add(consultation_id)
        self._wake()

    def unwatch(self, consultation_id: int) -> None:
        with self._lock:
            self._watched.discard(consultation_id)
            self._pending_reads.discard(consultation_id)

    def start(self) -> None:
        if self._thread is not None or self._stop.is_set():
            raise RuntimeError("a ConsultationWatcher can be started only once")
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        self._wake_pair = (reader, writer)
        self._thread = threading.Thread(target=self._run, name=self._application_name, daemon=False)
        self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        """Stop the thread and close its connection. Safe to call more than once."""
        self._stop.set()
        self._wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("consultation watcher did not stop within %.1f s", timeout)
                return
        self._close_wake_sockets()

    def __enter__(self) -> ConsultationWatcher:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        try:
            while not self._stop.is_set():
                try:
                    self._session()
                except _Stopping:
                    break
                except Exception as exc:
                    if self._stop.is_set():
                        break
                    attempt = self._lost(exc, attempt)
                    if self._stop.wait(self._retry.delay(attempt)):
                        break
        finally:
            self._connected = False
            self._close_wake_sockets()

    def _lost(self, exc: Exception, attempt: int) -> int:
        reason = first_line(exc)
        if isinstance(exc, psycopg.Error | ConsultEaseError):
            log.warning("consultation watcher lost the database: %s", reason)
        else:
            log.exception("consultation watcher failed; reconnecting")
        if self._connected or attempt == 0:
            self._emit(ConsultationsDown(reason=reason))
        was_connected = self._connected
        self._connected = False
        return 1 if was_connected else attempt + 1

    def _session(self) -> None:
        conn = connect(
            self._url, autocommit=True, application_name=self._application_name, **_KEEPALIVES
        )
        try:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
            self._resync(conn)
            self._serve(conn)
        finally:
            conn.close()

    def _resync(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            watched = sorted(self._watched)
            self._pending_reads.clear()
        views = load_open(conn) if self._follow_all else []
        if watched:
            known = {v.id for v in views}
            views.extend(v for v in load_consultations(conn, watched) if v.id not in known)
        self._versions = {v.id: v.version for v in views}
        self._connected = True
        self._emit(ConsultationsResynced(views=tuple(views)))

    def _serve(self, conn: psycopg.Connection[Any]) -> None:
        assert self._wake_pair is not None
        with selectors.DefaultSelector() as selector:
            selector.register(conn.fileno(), selectors.EVENT_READ, "db")
            selector.register(self._wake_pair[0], selectors.EVENT_READ, "wake")
            while True:
                self._check_stop()
                ids = self._drain(conn)
                if not ids and not self._has_pending_reads():
                    ready = {key.data for key, _ in selector.select(self._poll_interval)}
                    self._check_stop()
                    if "wake" in ready:
                        self._clear_wake()
                    ids = self._drain(conn) if "db" in ready else set()
                    if not ids and not self._has_pending_reads():
                        conn.execute("SELECT 1")  # liveness: a dead server raises here
                self._read(conn, ids)

    def _drain(self, conn: psycopg.Connection[Any]) -> set[int]:
        ids: set[int] = set()
        while True:
            got = list(conn.notifies(timeout=0))
            if not got:
                return ids
            ids.update(i for i in (parse_hint(n.payload) for n in got) if i is not None)

    def _has_pending_reads(self) -> bool:
        with self._lock:
            return bool(self._pending_reads)

    def _read(self, conn: psycopg.Connection[Any], notified: Iterable[int]) -> None:
        with self._lock:
            fresh = set(self._pending_reads)
            self._pending_reads.clear()
            wanted = fresh | {i for i in notified if self._follow_all or i in self._watched}
        if not wanted:
            return
        for view in load_consultations(conn, sorted(wanted)):
            if view.id not in fresh and self._versions.get(view.id, 0) >= view.version:
                continue  # a notification for a version already reported
            self._versions[view.id] = view.version
            self._emit(ConsultationChanged(view=view))

    def _emit(self, event: WatcherEvent) -> None:
        for _, callback in self._subscribers:
            try:
                callback(event)
            except Exception:
                log.exception("consultation subscriber %r failed on %s", callback, event)

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise _Stopping

    def _wake(self) -> None:
        with self._wake_lock, contextlib.suppress(OSError):
            if self._wake_pair is not None:
                self._wake_pair[1].send(b"\0")

    def _clear_wake(self) -> None:
        with self._wake_lock, contextlib.suppress(OSError):
            if self._wake_pair is not None:
                self._wake_pair[0].recv(4096)

    def _close_wake_sockets(self) -> None:
        with self._wake_lock:
            if self._wake_pair is not None:
                for end in self._wake_pair:
                    end.close()
                self._wake_pair = None
