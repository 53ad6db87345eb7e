"""The ingest service: broker -> bounded queue -> batched store -> acks (SPEC 3 and 4).

Threads, and what each may touch:

- **paho's network thread** runs the callbacks. They only parse (pure) and
  enqueue ``(delivery, parsed)``; ``on_message`` blocks while the queue is
  full, which stalls paho's reading of the socket: back-pressure instead of
  loss. A stop request interrupts the wait.
- **the worker** drains whatever is queued (up to ``batch_size``, never
  waiting for a batch to fill), applies it in one transaction through
  ``Store.apply_batch`` (retrying without limit while the database is away),
  and only after the commit acknowledges each message to the broker
  (``manual_ack``). A crash before the commit therefore means redelivery,
  never loss; a redelivered message is a duplicate by the ordering rules.
- **the sweeper** sets desks offline after ``offline_after`` seconds of
  silence, on its own connection, and guards the NOTIFY queue: above the
  usage threshold it drops sessions that stall it
  (``consultease.db.notify_guard``).
- **the state publisher** (``consultease.ingest.state_publisher``) publishes
  retained ``…/state`` messages on a broker connection of its own: by default
  in a supervised child process (``consultease.ingest.state_process``), so
  neither its interpreter time nor its packets compete with this service's;
  ``state_mode="thread"`` keeps it in this process.

Acknowledgements never cross connections: a message is acked only on the
connection it arrived on. After a reconnect the broker redelivers what was not
acked, and a late ack could otherwise hit a new message that reuses the
packet id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from consultease.config import MqttEndpoint, Settings
from consultease.db.connection import describe_database
from consultease.db.notify_guard import NotifyQueueGuard
from consultease.domain import (
    DeskUpdate,
    Inbound,
    Outcome,
    Rejection,
    RejectReason,
    UpdateKind,
    Verdict,
    rejected,
)
from consultease.errors import ConfigError, ConsultEaseError, DatabaseUnavailable, MessageRefused
from consultease.ingest import buffer
from consultease.ingest.buffer import DEFAULT_QUEUE_BYTES, ByteBoundedQueue
from consultease.ingest.dispatcher import Dispatcher, Sent, dispatch_client
from consultease.ingest.metrics import CONSULTATION_STATES, UNPARSED, IngestMetrics, MetricsServer
from consultease.ingest.state_process import StateProcess
from consultease.ingest.state_publisher import (
    StateMode,
    StateService,
    endpoint_url,
    state_endpoint,
)
from consultease.ingest.stats import Counters, IngestStats
from consultease.ingest.store import Store
from consultease.ingest.transport import BufferedClient, MqttProtocol
from consultease.payloads import (
    FACULTY_TOPIC_PREFIX,
    INBOUND_SUFFIXES,
    MAC_STATUS_SUFFIX,
    STATUS_SUFFIX,
    parse,
)
from consultease.retry import RetryPolicy

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE: Final = 500
DEFAULT_QUEUE_SIZE: Final = 10_000
DEFAULT_SESSION_EXPIRY: Final = 7 * 24 * 3600
"""Seconds the broker keeps our session (and queues our messages) while we are away."""
DEFAULT_KEEPALIVE: Final = 30
RECEIVE_MAXIMUM: Final = 65_535
"""MQTT 5 in-flight window we offer the broker: as wide as the protocol allows, so
unacknowledged messages wait in flight rather than in the broker's (bounded) queue."""
RECONNECT_MIN_DELAY: Final = 1
RECONNECT_MAX_DELAY: Final = 30
MAX_SWEEP_INTERVAL: Final = 5.0
_POLL: Final = 0.1
_PAYLOAD_LOG_LIMIT: Final = 64
STATUS_FILTER_SUFFIXES: Final = (f"/{STATUS_SUFFIX}", f"/{MAC_STATUS_SUFFIX}")
"""The filters whose retained messages are read again after every (re)subscribe."""


class IngestFailed(ConsultEaseError):
    """The service stopped because of an unexpected internal error."""


def subscriptions(shared_group: str | None = None) -> tuple[str, ...]:
    """The topic filters the service subscribes to (QoS 1), optionally shared."""
    filters = tuple(f"{FACULTY_TOPIC_PREFIX}+/{suffix}" for suffix in INBOUND_SUFFIXES)
    if shared_group is None:
        return filters
    return tuple(f"$share/{shared_group}/{f}" for f in filters)


def validate_shared_group(group: str) -> None:
    """A ``$share/GROUP/…`` group name. Shared subscriptions are MQTT 5's, and
    mosquitto (2.0 and later) gives them to MQTT 3.1.1 clients too, with the same
    filter: so either protocol may use one."""
    if not group or any(c in group for c in "/+#") or group.startswith("$"):
        raise ConfigError(f"--shared group must be a plain name without / + # or $: {group!r}")


def _cut(payload: bytes) -> bytes:
    return payload[:_PAYLOAD_LOG_LIMIT]


def _size(item: Inbound) -> int:
    """What a queued message costs beyond ``buffer.ITEM_OVERHEAD``: its payload
    (at most ``MAX_PAYLOAD_BYTES``, since ``parse`` cuts a rejected one) and topic."""
    return len(item.payload) + len(item.topic)


@dataclass(frozen=True, slots=True)
class _Delivery:
    """One message taken from the broker: what to ack, on which connection, and its content."""

    mid: int
    qos: int
    generation: int
    item: Inbound


class IngestService:
    """The ingest service, usable in-process (tests, bench, demo) or from the CLI.

    ``start`` returns at once; the broker connection is made (and remade) in the
    background. ``stop`` finishes the batch in hand, acknowledges what committed,
    disconnects cleanly and joins every thread.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        protocol: MqttProtocol | str = MqttProtocol.V5,
        shared_group: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        queue_bytes: int = DEFAULT_QUEUE_BYTES,
        publish_state: bool = True,
        state_mode: StateMode | str = StateMode.PROCESS,
        metrics_registry: CollectorRegistry | None = None,
        metrics_port: int | None = None,
        ca_file: str | None = None,
        session_expiry: int = DEFAULT_SESSION_EXPIRY,
        keepalive: int = DEFAULT_KEEPALIVE,
        store_pipeline: bool = True,
        dispatch_consultations: bool = True,
    ) -> None:
        self.protocol = MqttProtocol(protocol)
        if shared_group is not None:
            validate_shared_group(shared_group)
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}")
        if queue_size < 1:
            raise ConfigError(f"queue size must be at least 1, got {queue_size}")
        if queue_bytes < 1:
            raise ConfigError(f"queue bytes must be at least 1, got {queue_bytes}")
        self.settings = settings
        self.database_url = settings.require_database_url()
        self.endpoint: MqttEndpoint = settings.mqtt_endpoint()
        self.client_id = settings.mqtt_client_id
        self.shared_group = shared_group
        self.batch_size = batch_size
        self.queue_size = queue_size
        self.queue_bytes = queue_bytes
        self.state_mode = StateMode(state_mode) if publish_state else StateMode.OFF
        self.publish_state = self.state_mode is not StateMode.OFF
        self.subscriptions = subscriptions(shared_group)
        self.sweep_interval = min(
            settings.offline_after / 3, settings.request_timeout / 4, MAX_SWEEP_INTERVAL
        )
        self._ca_file = ca_file
        self._session_expiry = session_expiry
        self._keepalive = keepalive
        self._metrics_port = metrics_port
        self.metrics = IngestMetrics(metrics_registry)

        self._queue: ByteBoundedQueue[_Delivery] = ByteBoundedQueue(
            max_items=queue_size, max_bytes=queue_bytes
        )
        self.metrics.queue_depth.set_function(self._queue.qsize)
        self._counters = Counters()
        self._received_by_kind = {
            kind: self.metrics.received.labels(kind=kind)
            for kind in [*(k.value for k in UpdateKind), UNPARSED]
        }
        self._stopping = threading.Event()
        self._failed = threading.Event()
        self._failure: BaseException | None = None
        self._ready = threading.Event()
        self._drain_deadline = float("inf")
        # The ack lock makes "is this still the connection the message came on?"
        # and the ack itself one step, against on_connect/on_disconnect.
        self._ack_lock = threading.Lock()
        self._generation = 0
        self._started = False
        self._stopped = False

        self._client = self._make_client()
        self._store = Store(
            self.database_url,
            max_clock_skew=settings.max_clock_skew,
            retry=RetryPolicy(max_attempts=None),
            stop=self._stopping,
            application_name="consultease-ingest",
            pipeline=store_pipeline,
        )
        self._worker = threading.Thread(target=self._work, name="ingest-worker", daemon=True)
        self._sweeper = threading.Thread(target=self._sweep, name="ingest-sweeper", daemon=True)
        self._state: StateProcess | StateService | None = None
        self._metrics_server: MetricsServer | None = None
        self.dispatch_consultations = dispatch_consultations
        self._dispatcher: Dispatcher | None = None

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            raise RuntimeError("IngestService.start called twice")
        self._started = True
        log.info(
            "ingest starting: broker %s (MQTT %s, client id %s%s), database %s, "
            "subscriptions %s, batch %d, queue %d, offline after %.0fs, state %s",
            self.endpoint.url(),
            self.protocol.value,
            self.client_id,
            f", shared group {self.shared_group}" if self.shared_group else "",
            describe_database(self.database_url),
            ", ".join(self.subscriptions),
            self.batch_size,
            self.queue_size,
            self.settings.offline_after,
            self.state_mode.value,
        )
        if self._metrics_port is not None:
            try:
                self._metrics_server = MetricsServer(self.metrics.registry, port=self._metrics_port)
            except OSError as exc:
                raise ConfigError(
                    f"cannot serve metrics on port {self._metrics_port}: {exc.strerror or exc}"
                ) from exc
        self._worker.start()
        self._sweeper.start()
        if self.publish_state:
            self._start_state_publisher()
        if self.dispatch_consultations:
            self._start_dispatcher()
        self._client.connect_async(
            self.endpoint.host,
            self.endpoint.port,
            keepalive=self._keepalive,
            **self._connect_options(),
        )
        self._client.loop_start()

    def wait_ready(self, timeout: float) -> bool:
        """Whether the service connected and holds its subscriptions within ``timeout``."""
        return self._ready.wait(timeout)

    @property
    def metrics_port(self) -> int | None:
        return self._metrics_server.port if self._metrics_server else None

    @property
    def stats(self) -> IngestStats:
        return self._counters.snapshot()

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    @property
    def failed(self) -> bool:
        return self._failed.is_set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking messages, commit and ack what is queued (within ``timeout``),
        disconnect cleanly and join the threads. Safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        deadline = time.monotonic() + timeout
        log.info("ingest stopping (%d queued)", self._queue.qsize())
        # Past this point on_message refuses new work (unacked: the broker keeps
        # it), the store gives up retrying, and the worker drains what it holds.
        self._drain_deadline = deadline - min(1.0, timeout / 4)
        self._stopping.set()
        if self._worker.is_alive():
            self._worker.join(max(0.0, self._drain_deadline - time.monotonic()))
        if self._worker.is_alive():
            log.warning("ingest worker still busy at the stop deadline")
        if self._state is not None:
            self._state.close(timeout=max(0.5, min(3.0, deadline - time.monotonic())))
        if self._dispatcher is not None:
            self._dispatcher.close(timeout=max(0.5, min(3.0, deadline - time.monotonic())))
        if self._started:
            # Queued acks leave before the DISCONNECT packet: paho writes in order.
            self._client.disconnect()
            self._client.loop_stop()
        self.metrics.mqtt_connected.set(0)
        if self._sweeper.is_alive():
            self._sweeper.join(max(0.1, deadline - time.monotonic()))
        self._store.close()
        if self._metrics_server is not None:
            self._metrics_server.close()
        left = self._queue.qsize()
        stats = self.stats
        log.info(
            "ingest stopped: %d received, %d applied, %d duplicate, %d stale, %d rejected "
            "in %d batches; %d acked%s",
            stats.received,
            stats.applied,
            stats.duplicate,
            stats.stale,
            stats.rejected,
            stats.batches,
            stats.acked,
            f"; {left} left unacknowledged for redelivery" if left else "",
        )

    def run_until(self, stop_event: threading.Event) -> None:
        """Run until ``stop_event`` is set, then stop gracefully.

        Raises ``IngestFailed`` if an internal error stopped the service first.
        """
        try:
            self.start()
            while not stop_event.wait(0.2):
                if self._failed.is_set():
                    break
        finally:
            self.stop()
        if self._failure is not None:
            raise IngestFailed(f"ingest service failed: {self._failure!r}") from self._failure

    def __enter__(self) -> IngestService:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- MQTT ------------------------------------------------------------------

    def _make_client(self) -> BufferedClient:
        client = BufferedClient(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=self.protocol.paho,
            clean_session=False if self.protocol is MqttProtocol.V311 else None,
            manual_ack=True,
            reconnect_on_failure=True,
        )
        self.endpoint.log_in(client, self._ca_file)
        client.reconnect_delay_set(RECONNECT_MIN_DELAY, RECONNECT_MAX_DELAY)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _connect_options(self) -> dict[str, Any]:
        if self.protocol is not MqttProtocol.V5:
            return {}
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self._session_expiry
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        return {"clean_start": False, "properties": properties}

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error("broker %s refused the connection: %s", self.endpoint.url(), reason_code)
            return
        with self._ack_lock:
            self._generation += 1
        self.metrics.mqtt_connected.set(1)
        log.info(
            "connected to %s (session %s)",
            self.endpoint.url(),
            "resumed" if flags.session_present else "new",
        )
        # Subscribe after every connect, even to a resumed session: the status filters
        # ask for the retained statuses every time (SPEC 3.4a), so a QoS 0 status the
        # broker did not queue while we were away is read from its retained store and
        # applied under the ordering rules; the rest only for a new subscription.
        if self.protocol is not MqttProtocol.V5:
            # MQTT 3.1.1 sends the retained messages on every subscribe.
            client.subscribe([(topic, 1) for topic in self.subscriptions])
            return
        client.subscribe([(topic, self._subscribe_options(topic)) for topic in self.subscriptions])

    @staticmethod
    def _subscribe_options(topic: str) -> SubscribeOptions:
        handling = (
            SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE
            if topic.endswith(STATUS_FILTER_SUFFIXES)
            else SubscribeOptions.RETAIN_SEND_IF_NEW_SUB
        )
        return SubscribeOptions(qos=1, retainHandling=handling)

    def _mark_ready(self) -> None:
        log.info("ingest ready: subscribed to %s", ", ".join(self.subscriptions))
        self._ready.set()
        if self._dispatcher is not None and self._dispatcher.shares_connection:
            self._dispatcher.link_up()

    def _on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        log.warning("cannot reach broker %s; retrying", self.endpoint.url())

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._ack_lock:
            self._generation += 1
        self.metrics.mqtt_connected.set(0)
        if self._dispatcher is not None and self._dispatcher.shares_connection:
            self._dispatcher.link_down()
        if not self._stopping.is_set():
            log.warning("lost the broker connection (%s); reconnecting", reason_code)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        failed = [
            topic
            for topic, code in zip(self.subscriptions, reason_codes, strict=False)
            if code.is_failure
        ]
        if failed:
            log.error("broker refused the subscriptions %s", ", ".join(failed))
            return
        self._mark_ready()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        """Parse and enqueue; block while the queue is full (back-pressure)."""
        item = parse(message.topic, bytes(message.payload))
        if message.retain and isinstance(item, DeskUpdate):
            # From the broker's retained store: a snapshot of unknown age (SPEC 3.4a).
            item = replace(item, retained=True)
        delivery = _Delivery(message.mid, message.qos, self._generation, item)
        while True:
            if self._stopping.is_set():
                return  # not acked: the broker keeps it for the next session
            try:
                self._queue.put(delivery, _size(item), timeout=_POLL)
                break
            except buffer.Full:
                continue
        kind = UNPARSED if isinstance(item, Rejection) else item.kind.value
        self._received_by_kind[kind].inc()
        self._counters.received += 1  # written by this thread only: no lock needed
        if isinstance(item, Rejection):
            log.debug(
                "refused %s (%s: %s): %r",
                item.topic,
                item.reason.value,
                item.detail,
                _cut(item.payload),
            )

    # -- the worker ------------------------------------------------------------

    def _work(self) -> None:
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                if batch and not self._commit_and_ack(batch):
                    return
        except BaseException as exc:
            log.exception("ingest worker failed; stopping the service")
            self._failure = exc
            self._failed.set()

    def _next_batch(self) -> list[_Delivery] | None:
        """What is queued now, up to ``batch_size``; ``[]`` after an idle wait;
        ``None`` once stopping and drained (or out of time)."""
        if self._stopping.is_set() and time.monotonic() > self._drain_deadline:
            return None
        try:
            first = self._queue.get(timeout=_POLL)
        except buffer.Empty:
            return None if self._stopping.is_set() else []
        batch = [first]
        while len(batch) < self.batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except buffer.Empty:
                break
        return batch

    def _commit_and_ack(self, batch: Sequence[_Delivery]) -> bool:
        """Commit ``batch``, then ack it. False when the store gave up (stopping)."""
        started = time.perf_counter()
        try:
            outcomes = self._store.apply_batch([d.item for d in batch])
        except DatabaseUnavailable:
            log.warning(
                "stopping with %d messages uncommitted; the broker will redeliver them",
                len(batch),
            )
            return False
        except MessageRefused as exc:  # a message the database refuses: isolate it
            log.error("batch of %d failed (%s); applying one by one", len(batch), exc)
            maybe = self._apply_singly(batch)
            if maybe is None:
                return False
            outcomes = maybe
        elapsed = time.perf_counter() - started
        self._ack(batch)
        self._record(batch, outcomes, elapsed)
        return True

    def _apply_singly(self, batch: Sequence[_Delivery]) -> list[Outcome] | None:
        """Apply each message alone; one the database refuses for its content is
        recorded as rejected (``invalid_field``), or dropped with an error if even
        that fails. Any other error stops the service with nothing acked."""
        outcomes: list[Outcome] = []
        for delivery in batch:
            item = delivery.item
            try:
                outcomes.extend(self._store.apply_batch([item]))
                continue
            except DatabaseUnavailable:
                return None
            except MessageRefused as exc:
                detail = f"database refused it: {type(exc).__name__}"
                log.error("the database refused a message on %s: %s", item.topic, exc)
            try:
                outcomes.extend(
                    self._store.apply_batch(
                        [
                            Rejection(
                                topic=item.topic.replace("\x00", "\ufffd"),
                                payload=item.payload,
                                reason=RejectReason.INVALID_FIELD,
                                detail=detail,
                            )
                        ]
                    )
                )
            except DatabaseUnavailable:
                return None
            except MessageRefused:
                log.exception(
                    "cannot even record the refused message on %s; dropping it", item.topic
                )
                outcomes.append(rejected(RejectReason.INVALID_FIELD))
        return outcomes

    def _ack(self, batch: Sequence[_Delivery]) -> None:
        """Acknowledge the committed ``batch`` on the connection it arrived on, as
        one write (``BufferedClient.ack_many``); QoS 0 needs no acknowledgement."""
        skipped = 0
        with self._ack_lock:
            mids = []
            for delivery in batch:
                if delivery.qos == 0:
                    continue
                if delivery.generation != self._generation:
                    skipped += 1
                    continue
                mids.append(delivery.mid)  # QoS 1: the subscriptions ask for no more
            self._client.ack_many(mids)
        acked = len(mids)
        with self._counters.lock:
            self._counters.acked += acked
            self._counters.ack_skipped += skipped
        if skipped:
            log.info(
                "%d committed messages arrived on an earlier connection; "
                "the broker redelivers them as duplicates",
                skipped,
            )

    def _record(
        self, batch: Sequence[_Delivery], outcomes: Sequence[Outcome], elapsed: float
    ) -> None:
        self.metrics.batch_size.observe(len(batch))
        self.metrics.commit_seconds.observe(elapsed)
        for seconds in self._store.take_answer_times():
            self.metrics.consultation_answer_seconds.observe(seconds)
        for outcome in outcomes:
            self.metrics.count_outcome(outcome.verdict, outcome.reason)
        with self._counters.lock:
            self._counters.batch_sizes[len(batch)] += 1
            for outcome in outcomes:
                self._counters.verdicts[outcome.verdict] += 1
                if outcome.verdict is Verdict.REJECTED and outcome.reason is not None:
                    self._counters.reasons[outcome.reason.value] += 1
        log.debug("committed %d messages in %.1f ms", len(batch), elapsed * 1000)

    # -- the sweeper -----------------------------------------------------------

    def _sweep(self) -> None:
        guard = NotifyQueueGuard(
            self.database_url,
            threshold=self.settings.notify_queue_threshold,
            stalled_after=self.settings.stalled_after,
        )
        try:
            with Store(
                self.database_url,
                max_clock_skew=self.settings.max_clock_skew,
                retry=RetryPolicy(max_attempts=None),
                stop=self._stopping,
                application_name="consultease-sweeper",
            ) as store:
                while not self._stopping.wait(self.sweep_interval):
                    self._sweep_once(store)
                    self._sweep_consultations(store)
                    self._guard_once(guard)
        finally:
            guard.close()

    def _sweep_once(self, store: Store) -> None:
        try:
            gone = store.mark_silent_desks_offline(self.settings.offline_after)
        except DatabaseUnavailable:
            return  # only when stopping: the loop condition ends it
        except Exception:
            log.exception("offline sweep failed; trying again later")
            return
        if gone:
            log.info("desks silent for %.0fs set offline: %s", self.settings.offline_after, gone)
            self.metrics.desks_swept_offline.inc(len(gone))
            with self._counters.lock:
                self._counters.swept_offline += len(gone)

    def _sweep_consultations(self, store: Store) -> None:
        """Expire requests pending past the request timeout (the dispatcher then sends
        their cancellations), and refresh the consultation gauges."""
        try:
            expired = store.expire_consultations(self.settings.request_timeout)
            counts = store.consultation_counts()
        except DatabaseUnavailable:
            return
        except Exception:
            log.exception("consultation sweep failed; trying again later")
            return
        if expired:
            log.info(
                "consultation requests unanswered for %.0fs expired: %s",
                self.settings.request_timeout,
                expired,
            )
            self.metrics.consultation_expired.inc(len(expired))
        for state in CONSULTATION_STATES:
            self.metrics.consultation_requests.labels(state=state).set(
                counts.by_state.get(state, 0)
            )
        self.metrics.consultation_undelivered.set(counts.undelivered)
        self.metrics.consultation_waiting_for_desk.set(counts.waiting_for_desk)

    def _guard_once(self, guard: NotifyQueueGuard) -> None:
        """The NOTIFY queue guard (``consultease.db.notify_guard``): it never raises
        for a database problem, so the sweeper keeps sweeping."""
        dropped = guard.check()
        if guard.last_usage is not None:
            self.metrics.notify_queue_usage.set(guard.last_usage)
        if dropped:
            self.metrics.stalled_sessions_dropped.inc(len(dropped))

    # -- closing the loop ------------------------------------------------------

    def _start_state_publisher(self) -> None:
        client_id = f"{self.client_id}-state"
        endpoint = state_endpoint(self.endpoint)
        if self.state_mode is StateMode.PROCESS:
            self._state = StateProcess(
                database_url=self.database_url,
                mqtt_url=endpoint_url(endpoint),
                client_id=client_id,
                ca_file=self._ca_file,
                on_published=self._count_state_published,
                verbose=log.isEnabledFor(logging.DEBUG),
            )
        else:
            self._state = StateService(
                self.database_url,
                endpoint,
                client_id=client_id,
                ca_file=self._ca_file,
                on_published=self._count_state_published,
            )
        self._state.start()

    def _start_dispatcher(self) -> None:
        # A connection of its own when it can have one: a login of its own, or an
        # anonymous broker (its own client id). Otherwise this service's connection,
        # since the shipped broker lets one login hold one connection.
        endpoint = self.settings.dispatch_mqtt_endpoint()
        if endpoint is None and self.endpoint.username is None:
            endpoint = self.endpoint
        if endpoint is None:
            self._dispatcher = Dispatcher(
                self.database_url, self._client, on_sent=self._count_dispatched
            )
        else:
            client = dispatch_client(
                endpoint, client_id=f"{self.client_id}-dispatch", ca_file=self._ca_file
            )
            self._dispatcher = Dispatcher(
                self.database_url,
                client,
                own_endpoint=endpoint,
                on_sent=self._count_dispatched,
            )
        self._dispatcher.start()

    def _count_dispatched(self, sent: Sent) -> None:
        self.metrics.consultation_desk_messages.labels(kind="request").inc(sent.messages)
        self.metrics.consultation_desk_messages.labels(kind="cancellation").inc(sent.cancellations)

    def _count_state_published(self, count: int) -> None:
        self.metrics.state_published.inc(count)
        with self._counters.lock:
            self._counters.state_published += count
