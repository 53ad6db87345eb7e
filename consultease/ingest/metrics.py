"""Prometheus metrics of the ingest service.

Each service instance owns a ``CollectorRegistry`` of its own (never the
process-global one), so several instances can run in one process, as tests,
``consultease bench`` and ``consultease demo`` do.
"""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from consultease.consultation import ConsultationStatus
from consultease.domain import RejectReason, UpdateKind, Verdict

log = logging.getLogger(__name__)

BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
ANSWER_SECONDS_BUCKETS = (5, 10, 20, 30, 60, 120, 180, 300, 450, 600, 900, 1800)
"""Request -> desk answer: seconds to minutes (the default request timeout is 600 s)."""
COMMIT_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CONSULTATION_STATES = tuple(s.value for s in ConsultationStatus)
UNPARSED = "unparsed"
"""The ``kind`` label of a message the parser refused."""


class IngestMetrics:
    """The service's counters, histograms and gauges, in one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "consultease_ingest_messages_received",
            "Desk messages taken from the broker, by kind (unparsed: refused by the parser)",
            ["kind"],
            registry=r,
        )
        self.applied = Counter(
            "consultease_ingest_messages_applied", "Desk messages applied and committed", registry=r
        )
        self.duplicate = Counter(
            "consultease_ingest_messages_duplicate",
            "Desk messages already applied (same version or timestamp)",
            registry=r,
        )
        self.stale = Counter(
            "consultease_ingest_messages_stale",
            "Desk messages older than the stored state",
            registry=r,
        )
        self.rejected = Counter(
            "consultease_ingest_messages_rejected",
            "Desk messages rejected, by reason",
            ["reason"],
            registry=r,
        )
        self.batch_size = Histogram(
            "consultease_ingest_batch_size",
            "Messages committed per database transaction",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "consultease_ingest_commit_seconds",
            "Time to apply and commit one batch, retries included",
            buckets=COMMIT_SECONDS_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "consultease_ingest_queue_depth",
            "Messages received and waiting for the database",
            registry=r,
        )
        self.mqtt_connected = Gauge(
            "consultease_ingest_mqtt_connected", "1 while connected to the broker", registry=r
        )
        self.desks_swept_offline = Counter(
            "consultease_ingest_desks_swept_offline",
            "Desks set offline by the sweeper after going silent",
            registry=r,
        )
        self.state_published = Counter(
            "consultease_ingest_state_published",
            "Retained state messages published to desks",
            registry=r,
        )
        self.notify_queue_usage = Gauge(
            "consultease_notify_queue_usage",
            "pg_notification_queue_usage() at the last sweep (0 to 1)",
            registry=r,
        )
        self.stalled_sessions_dropped = Counter(
            "consultease_ingest_stalled_sessions_dropped",
            "Database sessions dropped by the NOTIFY queue guard for stalling the queue",
            registry=r,
        )
        self.consultation_requests = Gauge(
            "consultease_consultation_requests",
            "Consultation requests by state, at the last sweep",
            ["state"],
            registry=r,
        )
        self.consultation_undelivered = Gauge(
            "consultease_consultation_undelivered",
            "Pending requests due for sending to their desk and not yet sent (should be 0)",
            registry=r,
        )
        self.consultation_waiting_for_desk = Gauge(
            "consultease_consultation_waiting_for_desk",
            "Pending requests whose desk is offline or whose lecturer is away",
            registry=r,
        )
        self.consultation_answer_seconds = Histogram(
            "consultease_consultation_answer_seconds",
            "Time from a consultation request to the desk's answer (ACKNOWLEDGE or BUSY)",
            buckets=ANSWER_SECONDS_BUCKETS,
            registry=r,
        )
        self.consultation_desk_messages = Counter(
            "consultease_consultation_desk_messages",
            "Requests (…/messages) and cancellations (…/cancellations) the broker took",
            ["kind"],
            registry=r,
        )
        self.consultation_expired = Counter(
            "consultease_consultation_expired",
            "Pending requests expired by the sweeper",
            registry=r,
        )
        for state in CONSULTATION_STATES:
            self.consultation_requests.labels(state=state)
        for kind in ("request", "cancellation"):
            self.consultation_desk_messages.labels(kind=kind)
        # Every label value exists from the start, so a dashboard sees zeros, not gaps.
        for kind in [*UpdateKind, UNPARSED]:
            self.received.labels(kind=str(kind))
        for reason in RejectReason:
            self.rejected.labels(reason=reason.value)

    def count_outcome(self, verdict: Verdict, reason: RejectReason | None) -> None:
        if verdict is Verdict.APPLIED:
            self.applied.inc()
        elif verdict is Verdict.DUPLICATE:
            self.duplicate.inc()
        elif verdict is Verdict.STALE:
            self.stale.inc()
        else:
            self.rejected.labels(reason=reason.value if reason else "unknown").inc()


class MetricsServer:
    """An HTTP endpoint serving one registry at ``/metrics`` (any path, in fact)."""

    def __init__(self, registry: CollectorRegistry, *, port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from outside on purpose
        server, thread = start_http_server(port, addr=addr, registry=registry)
        self._server: WSGIServer = server
        self._thread: threading.Thread = thread
        self.port = int(server.server_address[1])
        log.info("serving Prometheus metrics on %s:%d", addr, self.port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
