"""The only writer of desk-driven faculty state: batches applied under row locks.

One call of ``Store.apply_batch`` is one transaction:

1. read the database clock (``now()``) once;
2. lock every affected faculty row with ``SELECT … FOR UPDATE`` in ascending
   id order (so two services applying overlapping batches cannot deadlock);
3. decide each update in arrival order against the row as it stands,
   with the pure ``ordering.decide``;
4. write each touched row once, one ``status_change`` row per applied change
   of ``status`` or ``desk_online``, and one ``ingest_rejection`` row per stale
   or rejected message;
5. commit, and only then hand the outcomes back.

Desk answers to consultation requests (``DeskResponse``, SPEC 9.2) ride in the
same batches. Lock order: the faculty rows of every update and every answer
first, then the consultation rows the answers name, each set in ascending id
order (``consultease.db.consultations`` documents the same order for every other
writer, none of which ever holds a consultation row while waiting for a faculty
row). Each answer is decided in arrival order with the pure
``consultation.transition`` against the request as it stands; an ACKNOWLEDGE
accepts a pending request, a BUSY declines it and sets the lecturer ``busy``
(source ``desk``) like a live, unversioned status message that keeps the desk's
stored version and clock. An applied answer also proves the desk alive
(``last_seen``, ``desk_online``). An answer that changes nothing is kept in
``ingest_rejection`` with its reason (``unknown_consultation``, ``wrong_faculty``,
``invalid_transition``, ``duplicate``).

In pipeline mode (the default) that is two round trips to the server whatever
the batch holds: ``BEGIN``, the clock and the lock in one; every write and the
``COMMIT`` in the other. A failure anywhere aborts the pipeline and rolls the
transaction back, exactly as without it.

Retryable failures (serialization, deadlock, a dropped connection, a server
restart) roll the whole batch back and try it again with backoff.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow, kwargs_row

from consultease.consultation import (
    ClosedBy,
    ConsultationEvent,
    ConsultationStatus,
    Refusal,
    closed_by,
    transition,
)
from consultease.db.connection import CONTENT_ERRORS, RETRYABLE_ERRORS, connect, first_line
from consultease.domain import (
    DUPLICATE,
    MAX_PAYLOAD_BYTES,
    DeskResponse,
    DeskState,
    DeskUpdate,
    Inbound,
    Outcome,
    Rejection,
    RejectReason,
    ResponseType,
    Source,
    Status,
    UpdateKind,
    Verdict,
    rejected,
)
from consultease.errors import DatabaseUnavailable, MessageRefused
from consultease.ordering import advance, decide
from consultease.retry import RetryPolicy

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_RETRY_ON: tuple[type[Exception], ...] = (*RETRYABLE_ERRORS, DatabaseUnavailable)


@dataclass(slots=True)
class _Row:
    """The working copy of one locked faculty row inside a transaction."""

    id: int
    status: Status
    desk_online: bool
    desk_version: int | None
    desk_ts: datetime | None
    active: bool
    status_source: Source
    name: str = ""
    desk_uptime_ms: int | None = None
    desk_uptime_at: datetime | None = None
    touched: bool = False
    seen: bool = False

    def __post_init__(self) -> None:
        # Built from a row mapped by column name: the text columns become enums.
        self.status = Status(self.status)
        self.status_source = Source(self.status_source)

    def state(self) -> DeskState:
        return DeskState(
            active=self.active,
            desk_version=self.desk_version,
            desk_ts=self.desk_ts,
            status_source=self.status_source,
            desk_uptime_ms=self.desk_uptime_ms,
            desk_uptime_at=self.desk_uptime_at,
        )

    def written(self) -> dict[str, object]:
        """The row as ``_WRITE_ROWS`` reads it from JSON."""
        return {
            "id": self.id,
            "status": self.status.value,
            "status_source": self.status_source.value,
            "desk_online": self.desk_online,
            "desk_version": self.desk_version,
            "desk_ts": _iso(self.desk_ts),
            "seen": self.seen,
            "desk_uptime_ms": self.desk_uptime_ms,
            "desk_uptime_at": _iso(self.desk_uptime_at),
        }


LOCKED_COLUMNS: Final = (
    "id",
    "status",
    "desk_online",
    "desk_version",
    "desk_ts",
    "active",
    "status_source",
    "name",
    "desk_uptime_ms",
    "desk_uptime_at",
)
"""The faculty columns a batch locks and reads, by name (``_Row``'s fields)."""


@dataclass(slots=True)
class _Request:
    """The working copy of one locked consultation row inside a transaction."""

    id: int
    faculty_id: int
    status: ConsultationStatus
    created_at: datetime
    closed_by: str | None = None
    touched: bool = False

    def __post_init__(self) -> None:
        self.status = ConsultationStatus(self.status)


@dataclass(slots=True)
class _Writes:
    changes: list[dict[str, object]] = field(default_factory=list)
    """``status_change`` rows, by column name (sent as one JSON array)."""
    rejections: list[tuple[object, ...]] = field(default_factory=list)
    mismatches: list[tuple[int, str, str]] = field(default_factory=list)
    answered_after: list[float] = field(default_factory=list)
    """Seconds from request to answer, per request the batch answered."""


_RESPONSE_EVENTS: Final = {
    ResponseType.ACKNOWLEDGE: ConsultationEvent.ACKNOWLEDGE,
    ResponseType.BUSY: ConsultationEvent.BUSY,
}

_LOCK_REQUESTS = """
SELECT id, faculty_id, status, created_at FROM consultation
WHERE id = ANY(%s) ORDER BY id FOR UPDATE
"""

_WRITE_REQUESTS = """
UPDATE consultation AS c
SET status = u.status, closed_by = u.closed_by
FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS u(id, status, closed_by)
WHERE c.id = u.id
"""


_LOCK_ROWS = sql.SQL("SELECT {} FROM faculty WHERE id = ANY(%s) ORDER BY id FOR UPDATE").format(
    sql.SQL(", ").join(sql.Identifier(name) for name in LOCKED_COLUMNS)
)

_WRITE_ROWS = """
UPDATE faculty AS f
SET status = u.status,
    status_source = u.status_source,
    desk_online = u.desk_online,
    desk_version = u.desk_version,
    desk_ts = u.desk_ts,
    desk_uptime_ms = u.desk_uptime_ms,
    desk_uptime_at = u.desk_uptime_at,
    last_seen = CASE WHEN u.seen THEN now() ELSE f.last_seen END
FROM json_to_recordset(%s::json)
     AS u(id bigint, status text, status_source text, desk_online boolean,
          desk_version bigint, desk_ts timestamptz, seen boolean,
          desk_uptime_ms bigint, desk_uptime_at timestamptz)
WHERE f.id = u.id
"""

_INSERT_MISMATCH = """
INSERT INTO desk_name_mismatch (faculty_id, payload_name, row_name)
SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[])
ON CONFLICT (faculty_id, payload_name) DO NOTHING
RETURNING faculty_id, payload_name, row_name
"""

_INSERT_CHANGES = """
INSERT INTO status_change (faculty_id, old_status, new_status, old_desk_online,
                           new_desk_online, source, desk_version, device_ts)
SELECT faculty_id, old_status, new_status, old_desk_online, new_desk_online, source,
       desk_version, device_ts
FROM json_to_recordset(%s::json)
     AS c(faculty_id bigint, old_status text, new_status text, old_desk_online boolean,
          new_desk_online boolean, source text, desk_version bigint, device_ts timestamptz)
"""

_INSERT_REJECTION = """
INSERT INTO ingest_rejection (topic, payload, reason, detail) VALUES (%s, %s, %s, %s)
"""

_SWEEP_SILENT = """
WITH silent AS (
    SELECT id FROM faculty
    WHERE desk_online AND active
      AND (last_seen IS NULL OR last_seen < now() - make_interval(secs => %s))
    ORDER BY id
    FOR UPDATE SKIP LOCKED
), gone AS (
    UPDATE faculty AS f SET desk_online = false
    FROM silent WHERE f.id = silent.id
    RETURNING f.id, f.status
)
INSERT INTO status_change (faculty_id, old_status, new_status, old_desk_online,
                           new_desk_online, source)
SELECT id, status, status, true, false, 'sweeper' FROM gone
RETURNING faculty_id
"""


_EXPIRE_DUE = """
WITH due AS (
    SELECT id FROM consultation
    WHERE status = 'pending' AND created_at <= now() - make_interval(secs => %s)
    ORDER BY id
    FOR UPDATE SKIP LOCKED
)
UPDATE consultation AS c SET status = 'expired', closed_by = 'system'
FROM due WHERE c.id = due.id AND c.status = 'pending'
RETURNING c.id
"""


_CONSULTATION_COUNTS = """
SELECT
    (SELECT coalesce(json_object_agg(status, n), '{}')
     FROM (SELECT status, count(*) AS n FROM consultation GROUP BY status) AS s),
    count(*) FILTER (WHERE c.delivered_at IS NULL
                     OR (f.desk_online AND f.status = 'available'
                         AND c.delivered_at < f.status_since)),
    count(*) FILTER (WHERE NOT f.desk_online OR f.status = 'away')
FROM consultation AS c JOIN faculty AS f ON f.id = c.faculty_id
WHERE c.status = 'pending'
"""


@dataclass(frozen=True, kw_only=True, slots=True)
class ConsultationCounts:
    """Consultation requests at one moment: by state, and the pending ones not yet
    sent since their desk last (re)appeared, or waiting for an offline or away desk."""

    by_state: dict[str, int]
    undelivered: int
    waiting_for_desk: int


class Store:
    """Applies desk updates. Holds one connection; not shared between threads."""

    def __init__(
        self,
        database_url: str,
        *,
        max_clock_skew: float,
        retry: RetryPolicy | None = None,
        stop: threading.Event | None = None,
        application_name: str = "consultease-ingest",
        pipeline: bool = True,
    ) -> None:
        self._url = database_url
        self._pipeline = pipeline
        self._max_clock_skew = timedelta(seconds=max_clock_skew)
        self._retry = retry or RetryPolicy()
        self._stop = stop or threading.Event()
        self._application_name = application_name
        self._conn: psycopg.Connection[TupleRow] | None = None
        self._names_checked: set[tuple[int, str]] = set()
        """(faculty id, payload name) pairs compared in a committed batch (SPEC 3.4a)."""
        self._names_pending: set[tuple[int, str]] = set()
        self.answered_after: list[float] = []
        """Seconds from request to desk answer, one per request answered by a committed
        batch; the caller takes them (``take_answer_times``) for its metrics."""
        self._uncommitted_answer_times: list[float] = []

    def take_answer_times(self) -> list[float]:
        """The answer times gathered since the last call (committed batches only)."""
        taken, self.answered_after = self.answered_after, []
        return taken

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- public operations ---------------------------------------------------

    def apply_batch(self, items: Sequence[Inbound]) -> list[Outcome]:
        """Apply ``items`` in one transaction; their outcomes, in order, after commit."""
        if not items:
            return []
        outcomes = self._with_retry(lambda conn: self._apply(conn, items), "apply batch")
        self.answered_after.extend(self._uncommitted_answer_times)
        self._uncommitted_answer_times = []
        self._names_checked |= self._names_pending  # committed: never compared again
        return outcomes

    def mark_silent_desks_offline(self, offline_after: float) -> list[int]:
        """Set ``desk_online = false`` for desks silent longer than ``offline_after``
        seconds, judged by the database clock. Returns the ids taken offline."""

        def sweep(conn: psycopg.Connection[TupleRow]) -> list[int]:
            rows = conn.execute(_SWEEP_SILENT, (offline_after,)).fetchall()
            return sorted(int(r[0]) for r in rows)

        return self._with_retry(sweep, "offline sweep")

    def expire_consultations(self, timeout: float) -> list[int]:
        """Expire the requests pending for ``timeout`` seconds or more (database clock);
        their ids. Rows held by another transaction are judged next time."""

        def sweep(conn: psycopg.Connection[TupleRow]) -> list[int]:
            rows = conn.execute(_EXPIRE_DUE, (timeout,)).fetchall()
            return sorted(int(r[0]) for r in rows)

        return self._with_retry(sweep, "consultation expiry")

    def consultation_counts(self) -> ConsultationCounts:
        def count(conn: psycopg.Connection[TupleRow]) -> ConsultationCounts:
            row = conn.execute(_CONSULTATION_COUNTS).fetchone()
            assert row is not None
            return ConsultationCounts(
                by_state={str(k): int(v) for k, v in row[0].items()},
                undelivered=int(row[1]),
                waiting_for_desk=int(row[2]),
            )

        return self._with_retry(count, "consultation counts")

    # -- the transaction -----------------------------------------------------

    def _apply(self, conn: psycopg.Connection[TupleRow], items: Sequence[Inbound]) -> list[Outcome]:
        ids = sorted({item.faculty_id for item in items if not isinstance(item, Rejection)})
        request_ids = sorted(
            {item.consultation_id for item in items if isinstance(item, DeskResponse)}
        )
        rows: dict[int, _Row] = {}
        requests: dict[int, _Request] = {}
        with (
            conn.cursor() as clock,
            conn.cursor(row_factory=kwargs_row(_Row)) as lock,
            conn.cursor(row_factory=kwargs_row(_Request)) as lock_requests,
        ):
            clock.execute("SELECT now()")
            if ids:
                lock.execute(_LOCK_ROWS, (ids,))
            if request_ids:
                lock_requests.execute(_LOCK_REQUESTS, (request_ids,))
            # In pipeline mode the first fetch sends the clock and the locks together.
            now_row = clock.fetchone()
            assert now_row is not None
            now: datetime = now_row[0]
            if ids:
                rows = {row.id: row for row in lock.fetchall()}
            if request_ids:
                requests = {r.id: r for r in lock_requests.fetchall()}

        writes = _Writes()
        outcomes = [
            _answer(item, rows, requests, now, writes)
            if isinstance(item, DeskResponse)
            else self._decide_one(item, rows, now, writes)
            for item in items
        ]
        self._check_names(items, rows, writes)
        answered = [r for r in requests.values() if r.touched]
        if answered:
            conn.execute(
                _WRITE_REQUESTS,
                (
                    [r.id for r in answered],
                    [r.status.value for r in answered],
                    [r.closed_by for r in answered],
                ),
            )
        self._uncommitted_answer_times = writes.answered_after

        # Each write is one statement whose rows travel as one JSON array: encoded
        # by the json module's C encoder, where array parameters cost a Python call
        # per element (a row-by-row executemany costs more still).
        touched = [row.written() for row in rows.values() if row.touched]
        if touched:
            conn.execute(_WRITE_ROWS, (json.dumps(touched),))
        if writes.changes:
            conn.execute(_INSERT_CHANGES, (json.dumps(writes.changes),))
        with conn.cursor() as cur:
            if writes.rejections:
                cur.executemany(_INSERT_REJECTION, writes.rejections)
        if writes.mismatches:
            columns = [list(column) for column in zip(*writes.mismatches, strict=True)]
            for faculty_id, payload_name, row_name in conn.execute(
                _INSERT_MISMATCH, columns
            ).fetchall():
                log.warning(
                    "desk of faculty %s calls its lecturer %r, the database %r; "
                    "applied anyway (listed by consultease health)",
                    faculty_id,
                    payload_name,
                    row_name,
                )
        return outcomes

    def _check_names(
        self, items: Sequence[Inbound], rows: dict[int, _Row], writes: _Writes
    ) -> None:
        """Queue each new (desk, payload name) pair that differs from the row's name."""
        self._names_pending = set()
        for item in items:
            if not isinstance(item, DeskUpdate) or item.claimed_name is None:
                continue
            row = rows.get(item.faculty_id)
            key = (item.faculty_id, item.claimed_name)
            if row is None or key in self._names_checked or key in self._names_pending:
                continue
            self._names_pending.add(key)
            if _same_name(item.claimed_name, row.name):
                continue
            writes.mismatches.append((row.id, item.claimed_name, row.name))

    def _decide_one(
        self, item: DeskUpdate | Rejection, rows: dict[int, _Row], now: datetime, writes: _Writes
    ) -> Outcome:
        if isinstance(item, Rejection):
            writes.rejections.append(
                _rejection_row(item.topic, item.payload, item.reason.value, item.detail)
            )
            return rejected(item.reason)
        row = rows.get(item.faculty_id)
        outcome = decide(
            row.state() if row else None, item, now, max_clock_skew=self._max_clock_skew
        )
        if outcome.verdict is Verdict.DUPLICATE:
            return outcome
        if not outcome.applied:
            assert outcome.reason is not None
            writes.rejections.append(
                _rejection_row(item.topic, item.payload, outcome.reason.value, _describe(item))
            )
            return outcome
        assert row is not None
        _apply_to_row(row, item, writes, now)
        return outcome

    # -- retry and connection handling ---------------------------------------

    def _connection(self) -> psycopg.Connection[TupleRow]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._url, application_name=self._application_name)
        return self._conn

    def _with_retry(self, work: Callable[[psycopg.Connection[TupleRow]], _T], what: str) -> _T:
        """Run ``work`` in one transaction, retrying the retryable errors.

        Gives up with ``DatabaseUnavailable`` when the policy's attempts are
        spent, or at once when the stop event is set.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                conn = self._connection()
                with self._pipelined(conn), conn.transaction():
                    return work(conn)
            except CONTENT_ERRORS as exc:
                raise MessageRefused(f"{what} refused: {first_line(exc)}") from exc
            except _RETRY_ON as exc:
                self._drop_broken_connection()
                if self._stop.is_set() or self._retry.gives_up_after(attempt):
                    raise DatabaseUnavailable(
                        f"{what} failed after {attempt} attempt(s): {first_line(exc)}"
                    ) from exc
                delay = self._retry.delay(attempt)
                log.warning(
                    "%s failed (attempt %d, %s); retrying in %.2fs",
                    what,
                    attempt,
                    first_line(exc),
                    delay,
                )
                if self._stop.wait(delay):
                    raise DatabaseUnavailable(f"{what} abandoned: stopping") from exc

    def _pipelined(self, conn: psycopg.Connection[TupleRow]) -> AbstractContextManager[object]:
        """Pipeline mode around one transaction: statements whose results are not
        read yet wait to be sent together with the next that is, or the COMMIT."""
        return conn.pipeline() if self._pipeline else contextlib.nullcontext()

    def _drop_broken_connection(self) -> None:
        conn = self._conn
        if conn is not None and (conn.closed or conn.broken):
            conn.close()
            self._conn = None


def _same_name(claimed: str, stored: str) -> bool:
    return " ".join(claimed.split()).casefold() == " ".join(stored.split()).casefold()


def _apply_to_row(row: _Row, update: DeskUpdate, writes: _Writes, now: datetime) -> None:
    """Mutate the working copy for an applied update and queue its audit row.

    A retained status (SPEC 3.4a) sets the status and the ordering facts but proves
    nothing about the desk being alive: ``desk_online`` and ``last_seen`` stay."""
    old_status, old_online = row.status, row.desk_online
    row.touched = True
    if update.kind is UpdateKind.STATUS:
        assert update.status is not None
        after = advance(row.state(), update, now=now)
        row.status = update.status
        row.status_source = Source.DESK
        row.desk_version = after.desk_version
        row.desk_ts = after.desk_ts
        row.desk_uptime_ms = after.desk_uptime_ms
        row.desk_uptime_at = after.desk_uptime_at
        if not update.retained:
            row.desk_online = True
            row.seen = True
    elif update.kind is UpdateKind.HEARTBEAT or update.online:
        row.desk_online = True
        row.seen = True
    else:  # availability "offline": the desk's last will, or a clean goodbye
        row.desk_online = False
    if (row.status, row.desk_online) != (old_status, old_online):
        writes.changes.append(
            {
                "faculty_id": row.id,
                "old_status": old_status.value,
                "new_status": row.status.value,
                "old_desk_online": old_online,
                "new_desk_online": row.desk_online,
                "source": Source.DESK.value,
                "desk_version": update.version,
                "device_ts": _iso(update.ts),
            }
        )


def _answer(
    response: DeskResponse,
    rows: dict[int, _Row],
    requests: dict[int, _Request],
    now: datetime,
    writes: _Writes,
) -> Outcome:
    """Decide one desk answer against the locked request and faculty rows."""
    request = requests.get(response.consultation_id)
    row = rows.get(response.faculty_id)
    reason: RejectReason | None = None
    detail = f"consultation {response.consultation_id}"
    if request is None:
        reason = RejectReason.UNKNOWN_CONSULTATION
    elif request.faculty_id != response.faculty_id or row is None or not row.active:
        reason = RejectReason.WRONG_FACULTY
        detail += f" belongs to faculty {request.faculty_id}"
    else:
        event = _RESPONSE_EVENTS[response.response]
        target = transition(request.status, event)
        if isinstance(target, Refusal):
            reason = target.reason
            detail += f": {target.detail}"
        else:
            request.status = target
            who = closed_by(event, actor=ClosedBy.DESK)
            request.closed_by = who.value if who else None
            request.touched = True
            writes.answered_after.append(max(0.0, (now - request.created_at).total_seconds()))
            _desk_answered(row, response, writes)
            return Outcome(verdict=Verdict.APPLIED)
    writes.rejections.append(_rejection_row(response.topic, response.payload, reason.value, detail))
    if reason is RejectReason.DUPLICATE:
        return DUPLICATE
    return rejected(reason)


def _desk_answered(row: _Row, response: DeskResponse, writes: _Writes) -> None:
    """An applied answer is a live desk message: the desk is alive, and a BUSY makes
    the lecturer busy. The desk's stored version and clock are kept."""
    old_status, old_online = row.status, row.desk_online
    row.touched = True
    row.seen = True
    row.desk_online = True
    if response.response is ResponseType.BUSY:
        row.status = Status.BUSY
        row.status_source = Source.DESK
    if (row.status, row.desk_online) != (old_status, old_online):
        writes.changes.append(
            {
                "faculty_id": row.id,
                "old_status": old_status.value,
                "new_status": row.status.value,
                "old_desk_online": old_online,
                "new_desk_online": row.desk_online,
                "source": Source.DESK.value,
                "desk_version": None,
                "device_ts": None,
            }
        )


def _iso(ts: datetime | None) -> str | None:
    """ISO 8601 with its offset (a naive time is read in the session's UTC, as
    psycopg sends one)."""
    return None if ts is None else ts.isoformat()


def _rejection_row(topic: str, payload: bytes, reason: str, detail: str) -> tuple[object, ...]:
    return (topic, payload[:MAX_PAYLOAD_BYTES], reason, detail or None)


def _describe(update: DeskUpdate) -> str:
    return f"faculty={update.faculty_id} kind={update.kind} version={update.version} ts={update.ts}"
