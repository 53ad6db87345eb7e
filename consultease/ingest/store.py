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

Retryable failures (serialization, deadlock, a dropped connection, a server
restart) roll the whole batch back and try it again with backoff.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
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
from consultease.ordering import decide
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
    touched: bool = False
    seen: bool = False

    def __post_init__(self) -> None:
        # Built from a row mapped by column name: the text columns become enums.
        self.status = Status(self.status)
        self.status_source = Source(self.status_source)

    def state(self) -> DeskState:
        return DeskState(active=self.active, desk_version=self.desk_version, desk_ts=self.desk_ts)


LOCKED_COLUMNS: Final = (
    "id",
    "status",
    "desk_online",
    "desk_version",
    "desk_ts",
    "active",
    "status_source",
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
    changes: list[tuple[object, ...]] = field(default_factory=list)
    rejections: list[tuple[object, ...]] = field(default_factory=list)
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
    last_seen = CASE WHEN u.seen THEN now() ELSE f.last_seen END
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::boolean[], %s::bigint[],
            %s::timestamptz[], %s::boolean[])
     AS u(id, status, status_source, desk_online, desk_version, desk_ts, seen)
WHERE f.id = u.id
"""

_INSERT_CHANGES = """
INSERT INTO status_change (faculty_id, old_status, new_status, old_desk_online,
                           new_desk_online, source, desk_version, device_ts)
SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::boolean[], %s::boolean[],
                     %s::text[], %s::bigint[], %s::timestamptz[])
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
    ) -> None:
        self._url = database_url
        self._max_clock_skew = timedelta(seconds=max_clock_skew)
        self._retry = retry or RetryPolicy()
        self._stop = stop or threading.Event()
        self._application_name = application_name
        self._conn: psycopg.Connection[TupleRow] | None = None
        self.answered_after: list[float] = []
        self._uncommitted_answer_times: list[float] = []
        """Seconds from request to desk answer, one per request answered by a committed
        batch; the caller takes them (``take_answer_times``) for its metrics."""

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
        now_row = conn.execute("SELECT now()").fetchone()
        assert now_row is not None
        now: datetime = now_row[0]
        ids = sorted({item.faculty_id for item in items if not isinstance(item, Rejection)})
        rows: dict[int, _Row] = {}
        if ids:
            with conn.cursor(row_factory=kwargs_row(_Row)) as cur:
                rows = {row.id: row for row in cur.execute(_LOCK_ROWS, (ids,)).fetchall()}
        request_ids = sorted(
            {item.consultation_id for item in items if isinstance(item, DeskResponse)}
        )
        requests: dict[int, _Request] = {}
        if request_ids:
            with conn.cursor(row_factory=kwargs_row(_Request)) as cur:
                requests = {r.id: r for r in cur.execute(_LOCK_REQUESTS, (request_ids,)).fetchall()}

        writes = _Writes()
        outcomes = [
            _answer(item, rows, requests, now, writes)
            if isinstance(item, DeskResponse)
            else self._decide_one(item, rows, now, writes)
            for item in items
        ]
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

        touched = [row for row in rows.values() if row.touched]
        if touched:
            conn.execute(
                _WRITE_ROWS,
                (
                    [r.id for r in touched],
                    [r.status.value for r in touched],
                    [r.status_source.value for r in touched],
                    [r.desk_online for r in touched],
                    [r.desk_version for r in touched],
                    [r.desk_ts for r in touched],
                    [r.seen for r in touched],
                ),
            )
        if writes.changes:
            # One statement with array parameters: a row-by-row executemany costs
            # more client CPU than everything else in a large batch.
            columns = [list(column) for column in zip(*writes.changes, strict=True)]
            conn.execute(_INSERT_CHANGES, columns)
        with conn.cursor() as cur:
            if writes.rejections:
                cur.executemany(_INSERT_REJECTION, writes.rejections)
        return outcomes

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
        _apply_to_row(row, item, writes)
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
                with conn.transaction():
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

    def _drop_broken_connection(self) -> None:
        conn = self._conn
        if conn is not None and (conn.closed or conn.broken):
            conn.close()
            self._conn = None


def _apply_to_row(row: _Row, update: DeskUpdate, writes: _Writes) -> None:
    """Mutate the working copy for an applied update and queue its audit row."""
    old_status, old_online = row.status, row.desk_online
    row.touched = True
    if update.kind is UpdateKind.STATUS:
        assert update.status is not None
        row.status = update.status
        row.status_source = Source.DESK
        row.desk_online = True
        row.desk_version = update.version
        row.desk_ts = update.ts
        row.seen = True
    elif update.kind is UpdateKind.HEARTBEAT or update.online:
        row.desk_online = True
        row.seen = True
    else:  # availability "offline": the desk's last will, or a clean goodbye
        row.desk_online = False
    if (row.status, row.desk_online) != (old_status, old_online):
        writes.changes.append(
            (
                row.id,
                old_status.value,
                row.status.value,
                old_online,
                row.desk_online,
                Source.DESK.value,
                update.version,
                update.ts,
            )
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
            (
                row.id,
                old_status.value,
                row.status.value,
                old_online,
                row.desk_online,
                Source.DESK.value,
                None,
                None,
            )
        )


def _rejection_row(topic: str, payload: bytes, reason: str, detail: str) -> tuple[object, ...]:
    return (topic, payload[:MAX_PAYLOAD_BYTES], reason, detail or None)


def _describe(update: DeskUpdate) -> str:
    return f"faculty={update.faculty_id} kind={update.kind} version={update.version} ts={update.ts}"
