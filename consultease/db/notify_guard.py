"""Guarding the NOTIFY queue: how full it is, who stalls it, and dropping them.

PostgreSQL's notification queue is one per cluster; it is trimmed only up to
the oldest position a listening session still has to read. A kiosk whose
listener stopped reading (a frozen process, a session left idle inside a
transaction) holds it there, the queue grows with every change, and once it
is full every transaction that notifies fails: no desk update commits.

What is read (``sql/005_notify_guard.sql`` holds the server side):

- ``pg_notification_queue_usage()``, from 0 to 1, against a threshold;
- the **stalled sessions** of this database: idle inside a transaction, or
  idle and blocked writing to their client (``ClientWrite``), for at least
  ``stalled_after`` seconds. PostgreSQL does not say which sessions LISTEN,
  so this evidence is what it can show (its own log names "the server
  process with PID n" once the queue is half full).

``NotifyQueueGuard`` is the automatic part, run by the ingest service's
sweeper: while the usage is above the threshold it looks at the stalled
sessions and drops (``pg_terminate_backend``) each one that two looks in a
row found stalled, and says so in the log. A dropped listener of ours
reconnects and resyncs by itself. ``consultease health`` reports the same
facts, and ``--fix`` drops the stalled sessions at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from consultease.config import DEFAULT_NOTIFY_QUEUE_THRESHOLD, DEFAULT_STALLED_AFTER
from consultease.db.connection import connect, first_line
from consultease.errors import DatabaseUnavailable

log = logging.getLogger(__name__)


_STALLED = """
SELECT pid, backend_start, usename, application_name, client_addr, state, wait_event,
       stalled_seconds, dropped
FROM consultease_stalled_sessions_v1(make_interval(secs => %s), %s::integer[], %s::timestamptz[])
"""

_GUARD_PRIVILEGED = """
SELECT r.rolname,
       r.rolsuper OR (pg_has_role(r.oid, 'pg_read_all_stats', 'MEMBER')
                      AND pg_has_role(r.oid, 'pg_signal_backend', 'MEMBER'))
FROM pg_proc AS p JOIN pg_roles AS r ON r.oid = p.proowner
WHERE p.proname = 'consultease_stalled_sessions_v1'
"""


@dataclass(frozen=True, kw_only=True, slots=True)
class StalledSession:
    pid: int
    backend_start: datetime
    user: str | None
    application: str | None
    client: str | None
    state: str
    wait_event: str | None
    stalled_seconds: float
    dropped: bool = False

    @property
    def evidence(self) -> str:
        if self.state.startswith("idle in transaction"):
            return f"{self.state} for {self.stalled_seconds:.0f} s"
        return f"blocked writing to its client for {self.stalled_seconds:.0f} s"

    def describe(self) -> str:
        who = ", ".join(
            part
            for part in (
                self.user,
                self.application or None,
                f"from {self.client}" if self.client else None,
            )
            if part
        )
        return f"pid {self.pid} ({who or 'unknown'}): {self.evidence}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "backend_start": self.backend_start.isoformat(),
            "user": self.user,
            "application": self.application,
            "client": self.client,
            "state": self.state,
            "wait_event": self.wait_event,
            "stalled_seconds": round(self.stalled_seconds, 1),
            "dropped": self.dropped,
        }


def queue_usage(conn: psycopg.Connection[Any]) -> float:
    row = conn.execute("SELECT pg_notification_queue_usage()").fetchone()
    return float(row[0]) if row else 0.0


def stalled_sessions(
    conn: psycopg.Connection[Any],
    *,
    stalled_after: float,
    drop: Iterable[StalledSession] = (),
) -> list[StalledSession]:
    """The stalled sessions of this database now; those in ``drop`` (matched by pid
    and start time) are ended if they still show the evidence."""
    targets = list(drop)
    rows = conn.execute(
        _STALLED,
        (stalled_after, [s.pid for s in targets], [s.backend_start for s in targets]),
    ).fetchall()
    return [
        StalledSession(
            pid=int(r[0]),
            backend_start=r[1],
            user=r[2],
            application=r[3],
            client=r[4],
            state=str(r[5]),
            wait_event=r[6],
            stalled_seconds=float(r[7]),
            dropped=bool(r[8]),
        )
        for r in rows
    ]


def guard_privileged(conn: psycopg.Connection[Any]) -> tuple[str, bool] | None:
    """The role the guard's function runs as, and whether it may see and end every
    login's sessions; ``None`` when the function is missing (schema not upgraded)."""
    row = conn.execute(_GUARD_PRIVILEGED).fetchone()
    return (str(row[0]), bool(row[1])) if row else None


def _key(session: StalledSession) -> tuple[int, datetime]:
    return session.pid, session.backend_start


class NotifyQueueGuard:
    """The sweeper's guard: call ``check()`` now and then from one thread.

    It holds one autocommit connection of its own and never raises for a
    database problem: a lost server is retried at the next check, a missing
    function or privilege is logged once and the guard then only watches.
    """

    def __init__(
        self,
        database_url: str,
        *,
        threshold: float = DEFAULT_NOTIFY_QUEUE_THRESHOLD,
        stalled_after: float = DEFAULT_STALLED_AFTER,
        application_name: str = "consultease-notify-guard",
    ) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if stalled_after < 1:
            raise ValueError(f"stalled_after must be at least 1 second, got {stalled_after}")
        self._url = database_url
        self.threshold = threshold
        self.stalled_after = stalled_after
        self._application_name = application_name
        self._conn: psycopg.Connection[Any] | None = None
        self._suspects: dict[tuple[int, datetime], StalledSession] = {}
        self._untouchable: set[tuple[int, datetime]] = set()
        self._can_drop = True
        self.last_usage: float | None = None
        self.dropped_total = 0
        self._quiet_until = 0.0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def check(self) -> list[StalledSession]:
        """Read the usage; above the threshold, drop what two looks found stalled.

        Returns the sessions dropped by this check.
        """
        try:
            conn = self._connection()
            usage = queue_usage(conn)
            self.last_usage = usage
            if usage <= self.threshold:
                self._suspects.clear()
                return []
            if not self._can_drop:
                if time.monotonic() < self._quiet_until:
                    return []
                self._quiet_until = time.monotonic() + 60
                log.warning(
                    "NOTIFY queue %.3f%% full (threshold %.3f%%); the guard cannot drop sessions",
                    usage * 100,
                    self.threshold * 100,
                )
                return []
            return self._act(conn, usage)
        except (pg_errors.UndefinedFunction, pg_errors.InsufficientPrivilege) as exc:
            self._can_drop = False
            log.error(
                "the NOTIFY queue guard cannot look at sessions (%s): run `consultease db "
                "upgrade` as the owner; until then it only watches the queue",
                first_line(exc),
            )
        except (psycopg.Error, DatabaseUnavailable) as exc:
            log.warning("NOTIFY queue check failed: %s", first_line(exc))
            self.close()
        return []

    def _act(self, conn: psycopg.Connection[Any], usage: float) -> list[StalledSession]:
        stalled = stalled_sessions(conn, stalled_after=self.stalled_after)
        again = [
            s for s in stalled if _key(s) in self._suspects and _key(s) not in self._untouchable
        ]
        dropped: list[StalledSession] = []
        if again:
            try:
                result = stalled_sessions(conn, stalled_after=self.stalled_after, drop=again)
            except pg_errors.InsufficientPrivilege as exc:
                # The listing worked, so it is ending one of them that is not allowed
                # (a superuser's session, when the guard's role is not one): leave them.
                self._untouchable.update(_key(s) for s in again)
                log.error(
                    "NOTIFY queue %.3f%% full: may not drop %s (%s)",
                    usage * 100,
                    "; ".join(s.describe() for s in again),
                    first_line(exc),
                )
                return []
            dropped = [s for s in result if s.dropped]
        gone = {_key(s) for s in dropped}
        self._suspects = {_key(s): s for s in stalled if _key(s) not in gone}
        for session in dropped:
            log.warning(
                "NOTIFY queue %.3f%% full (threshold %.3f%%): dropped stalled session %s",
                usage * 100,
                self.threshold * 100,
                session.describe(),
            )
        if not stalled and time.monotonic() >= self._quiet_until:
            self._quiet_until = time.monotonic() + 60
            log.warning(
                "NOTIFY queue %.3f%% full (threshold %.3f%%) and no session stalled for %.0f s "
                "yet; PostgreSQL's log names the oldest listener once it is half full",
                usage * 100,
                self.threshold * 100,
                self.stalled_after,
            )
        self.dropped_total += len(dropped)
        return dropped

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(
                self._url, autocommit=True, application_name=self._application_name
            )
        return self._conn


def drop_stalled(
    conn: psycopg.Connection[Any], sessions: Sequence[StalledSession], *, stalled_after: float
) -> list[StalledSession]:
    """End ``sessions`` now (``consultease health --fix``); the ones actually ended."""
    if not sessions:
        return []
    result = stalled_sessions(conn, stalled_after=stalled_after, drop=sessions)
    return [s for s in result if s.dropped]
