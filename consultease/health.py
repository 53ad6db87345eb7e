"""``consultease health``: can the system work right now, and how is it doing?

Checks the database (reachable, schema present, NOTIFY queue usage against
its threshold and the sessions stalling it, desks online and offline,
rejections in the last hour by reason, open consultation requests and the ones
stuck: not sent to a desk that could show them, or pending past the request
timeout) and the broker (an MQTT connect and a clean disconnect). Healthy means
both are reachable and the NOTIFY queue is below its threshold (stuck requests are
listed, not counted against it); ``fix`` drops the stalled sessions
(``consultease.db.notify_guard``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from consultease.config import MqttEndpoint, Settings
from consultease.db.connection import connect, first_line
from consultease.db.notify_guard import (
    StalledSession,
    drop_stalled,
    guard_privileged,
    queue_usage,
    stalled_sessions,
)
from consultease.errors import ConsultEaseError

DEFAULT_TIMEOUT = 5.0

_DESKS = """
SELECT count(*) FILTER (WHERE desk_online), count(*) FILTER (WHERE NOT desk_online)
FROM faculty WHERE active
"""
_REJECTIONS = """
SELECT reason, count(*) FROM ingest_rejection
WHERE received_at > now() - interval '1 hour'
GROUP BY reason ORDER BY count(*) DESC, reason
"""

STUCK_AFTER = 30.0
"""Seconds a request may wait for the dispatcher before health names it undelivered,
and past the request timeout before it is named overdue (the sweeper expires it)."""
_STUCK_LISTED = 20

_OPEN_REQUESTS = """
SELECT status, count(*) FROM consultation WHERE status IN ('pending', 'accepted') GROUP BY status
"""
# Pending requests a desk could show but was not sent (the dispatcher is not running
# or cannot reach the broker), and pending requests the sweeper should have expired.
_STUCK_REQUESTS = """
SELECT c.id, c.faculty_id, extract(epoch FROM now() - c.created_at)::float8,
       CASE WHEN c.created_at <= now() - make_interval(secs => %(timeout)s + %(grace)s)
            THEN 'overdue' ELSE 'undelivered' END
FROM consultation AS c JOIN faculty AS f ON f.id = c.faculty_id
WHERE c.status = 'pending'
  AND (c.created_at <= now() - make_interval(secs => %(timeout)s + %(grace)s)
       OR (c.delivered_at IS NULL AND c.created_at <= now() - make_interval(secs => %(grace)s))
       OR (f.desk_online AND f.status = 'available' AND c.delivered_at < f.status_since
           AND f.status_since <= now() - make_interval(secs => %(grace)s)))
ORDER BY c.id
"""


@dataclass(frozen=True, kw_only=True, slots=True)
class StuckRequest:
    """A pending consultation request that something should have moved on."""

    id: int
    faculty_id: int
    age_seconds: float
    problem: str
    """``undelivered`` (due for its desk, not sent) or ``overdue`` (past the timeout)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "faculty_id": self.faculty_id,
            "age_seconds": round(self.age_seconds, 1),
            "problem": self.problem,
        }

    def describe(self) -> str:
        return f"#{self.id} (faculty {self.faculty_id}, {self.age_seconds:.0f}s) {self.problem}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Check:
    ok: bool
    detail: str


@dataclass(frozen=True, kw_only=True, slots=True)
class HealthReport:
    database: Check
    broker: Check
    notification_queue_usage: float | None = None
    """``pg_notification_queue_usage()``: 0.0 to 1.0; growing means a listener is stuck."""
    notification_queue_threshold: float = 1.0
    stalled_sessions: tuple[StalledSession, ...] | None = None
    """Sessions of this database stalling the NOTIFY queue; ``None`` when not readable."""
    stalled_detail: str = ""
    """Why the stalled sessions could not be read, or a note on what the guard may see."""
    dropped: tuple[StalledSession, ...] = ()
    """Sessions ended by ``fix``."""
    desks_online: int | None = None
    desks_offline: int | None = None
    rejections_last_hour: Mapping[str, int] = field(default_factory=dict)
    open_requests: Mapping[str, int] | None = None
    """Pending and accepted consultation requests; ``None`` before migration 007."""
    stuck_requests: tuple[StuckRequest, ...] = ()

    @property
    def queue_over_threshold(self) -> bool:
        usage = self.notification_queue_usage
        return usage is not None and usage > self.notification_queue_threshold

    @property
    def healthy(self) -> bool:
        return self.database.ok and self.broker.ok and not self.queue_over_threshold

    def as_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "database": {"ok": self.database.ok, "detail": self.database.detail},
            "broker": {"ok": self.broker.ok, "detail": self.broker.detail},
            "notification_queue_usage": self.notification_queue_usage,
            "notification_queue_threshold": self.notification_queue_threshold,
            "notification_queue_ok": not self.queue_over_threshold,
            "stalled_sessions": (
                None
                if self.stalled_sessions is None
                else [s.as_dict() for s in self.stalled_sessions]
            ),
            "stalled_detail": self.stalled_detail or None,
            "dropped_sessions": [s.as_dict() for s in self.dropped],
            "desks": {"online": self.desks_online, "offline": self.desks_offline},
            "rejections_last_hour": dict(self.rejections_last_hour),
            "consultations": None
            if self.open_requests is None
            else {
                "open": dict(self.open_requests),
                "undelivered": [
                    r.as_dict() for r in self.stuck_requests if r.problem == "undelivered"
                ],
                "overdue": [r.as_dict() for r in self.stuck_requests if r.problem == "overdue"],
            },
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class _DatabaseFacts:
    check: Check
    queue_usage: float | None = None
    stalled: tuple[StalledSession, ...] | None = None
    stalled_detail: str = ""
    dropped: tuple[StalledSession, ...] = ()
    online: int | None = None
    offline: int | None = None
    rejections: Mapping[str, int] = field(default_factory=dict)
    open_requests: Mapping[str, int] | None = None
    stuck_requests: tuple[StuckRequest, ...] = ()


def check_health(
    settings: Settings,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    ca_file: str | None = None,
    fix: bool = False,
) -> HealthReport:
    db = _check_database(
        settings.database_url,
        stalled_after=settings.stalled_after,
        fix=fix,
        request_timeout=settings.request_timeout,
    )
    broker = _check_broker(settings.mqtt_url, timeout=timeout, ca_file=ca_file)
    return HealthReport(
        database=db.check,
        broker=broker,
        notification_queue_usage=db.queue_usage,
        notification_queue_threshold=settings.notify_queue_threshold,
        stalled_sessions=db.stalled,
        stalled_detail=db.stalled_detail,
        dropped=db.dropped,
        desks_online=db.online,
        desks_offline=db.offline,
        rejections_last_hour=db.rejections,
        open_requests=db.open_requests,
        stuck_requests=db.stuck_requests,
    )


def _check_database(
    url: str | None, *, stalled_after: float, fix: bool, request_timeout: float
) -> _DatabaseFacts:
    if not url:
        return _DatabaseFacts(check=Check(ok=False, detail="not configured"))
    started = time.perf_counter()
    try:
        with connect(url, autocommit=True, application_name="consultease-health") as conn:
            usage = queue_usage(conn)
            try:
                desks = conn.execute(_DESKS).fetchone()
                rejections = {str(r[0]): int(r[1]) for r in conn.execute(_REJECTIONS)}
            except psycopg.errors.UndefinedTable:
                return _DatabaseFacts(
                    check=Check(
                        ok=False,
                        detail="reachable, but the schema is missing: run `consultease db upgrade`",
                    ),
                    queue_usage=usage,
                )
            open_requests, stuck = _consultations(conn, request_timeout=request_timeout)
            stalled, detail, dropped = _stalled(conn, stalled_after=stalled_after, fix=fix)
            version = conn.info.server_version
    except ConsultEaseError as exc:
        return _DatabaseFacts(check=Check(ok=False, detail=str(exc)))
    except psycopg.Error as exc:
        return _DatabaseFacts(check=Check(ok=False, detail=first_line(exc)))
    elapsed_ms = (time.perf_counter() - started) * 1000
    server = f"PostgreSQL {version // 10000}.{version % 10000}"
    return _DatabaseFacts(
        check=Check(ok=True, detail=f"{server} answered in {elapsed_ms:.0f} ms"),
        queue_usage=usage,
        stalled=stalled,
        stalled_detail=detail,
        dropped=dropped,
        online=int(desks[0]) if desks else 0,
        offline=int(desks[1]) if desks else 0,
        rejections=rejections,
        open_requests=open_requests,
        stuck_requests=stuck,
    )


def _consultations(
    conn: psycopg.Connection[Any], *, request_timeout: float
) -> tuple[dict[str, int] | None, tuple[StuckRequest, ...]]:
    """Open requests by state and the stuck ones; ``None`` when the schema predates them."""
    try:
        with conn.transaction():
            counts = {str(r[0]): int(r[1]) for r in conn.execute(_OPEN_REQUESTS)}
            rows = conn.execute(
                _STUCK_REQUESTS, {"timeout": request_timeout, "grace": STUCK_AFTER}
            ).fetchmany(_STUCK_LISTED)
    except (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege):
        return None, ()  # before migration 007, or a login that may not read requests
    stuck = tuple(
        StuckRequest(id=int(r[0]), faculty_id=int(r[1]), age_seconds=float(r[2]), problem=r[3])
        for r in rows
    )
    return {"pending": 0, "accepted": 0, **counts}, stuck


def _stalled(
    conn: psycopg.Connection[Any], *, stalled_after: float, fix: bool
) -> tuple[tuple[StalledSession, ...] | None, str, tuple[StalledSession, ...]]:
    """The stalled sessions, a note on what could be seen, and those ``fix`` ended."""
    try:
        found = stalled_sessions(conn, stalled_after=stalled_after)
        dropped = drop_stalled(conn, found, stalled_after=stalled_after) if fix else []
    except psycopg.errors.UndefinedFunction:
        return None, "the schema is older than this release: run `consultease db upgrade`", ()
    except psycopg.errors.InsufficientPrivilege as exc:
        return None, f"{first_line(exc)} (it needs an ingest or admin login)", ()
    note = ""
    owner = guard_privileged(conn)
    if owner is not None and not owner[1]:
        note = (
            f"the guard runs as {owner[0]}, which is neither a superuser nor in "
            "pg_read_all_stats and pg_signal_backend: it sees and ends only its own sessions"
        )
    return tuple(found), note, tuple(dropped)


def _check_broker(url: str | None, *, timeout: float, ca_file: str | None) -> Check:
    if not url:
        return Check(ok=False, detail="not configured")
    try:
        endpoint = MqttEndpoint.parse(url)
    except ConsultEaseError as exc:
        return Check(ok=False, detail=str(exc))
    return broker_reachable(endpoint, timeout=timeout, ca_file=ca_file)


def broker_reachable(
    endpoint: MqttEndpoint, *, timeout: float = DEFAULT_TIMEOUT, ca_file: str | None = None
) -> Check:
    """Connect (MQTT 3.1.1, which every broker speaks), then disconnect cleanly."""
    connected = threading.Event()
    refused: list[str] = []
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"consultease-health-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv311,
        clean_session=True,
        reconnect_on_failure=False,
    )

    def on_connect(
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            refused.append(str(reason_code))
        connected.set()

    client.on_connect = on_connect
    client.connect_timeout = timeout
    if endpoint.username is not None:
        client.username_pw_set(endpoint.username, endpoint.password)
    started = time.perf_counter()
    try:
        if endpoint.tls:
            client.tls_set(ca_certs=ca_file)
        client.connect(endpoint.host, endpoint.port, keepalive=10)
        client.loop_start()
        try:
            if not connected.wait(timeout):
                return Check(ok=False, detail=f"{endpoint.url()}: no answer within {timeout:g}s")
            if refused:
                return Check(ok=False, detail=f"{endpoint.url()}: refused ({refused[0]})")
            elapsed_ms = (time.perf_counter() - started) * 1000
            client.disconnect()
        finally:
            client.loop_stop()
    except (OSError, ValueError) as exc:
        return Check(ok=False, detail=f"{endpoint.url()}: {exc}")
    return Check(ok=True, detail=f"{endpoint.url()} accepted a connection in {elapsed_ms:.0f} ms")
