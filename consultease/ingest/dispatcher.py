"""Consultation requests to the desks (SPEC 9.2): ``…/messages`` and ``…/cancellations``.

The dispatcher runs beside the ingest service's worker, with a LISTEN connection,
a work connection and a broker connection of its own (never the ingest service's:
its acknowledgements and these publishes do not share a socket or a reconnect).

- ``consultation_changed`` and ``consultation_due`` notifications are hints: they
  name a lecturer whose requests may need sending, and the dispatcher reads the
  rows. ``consultation_due`` comes from a trigger on ``faculty``
  (``sql/007_consultation.sql``) when a row becomes online and available while
  requests wait for it; the dispatcher never follows ``faculty_changed``, which
  carries every desk's traffic. After every (re)connect to the database (LISTEN
  first, then a full scan), after every reconnect to the broker, and every
  ``rescan_interval`` seconds, it scans everything, so a lost notification delays
  a message but never loses it.
- A pending request is **due** when it was never delivered, or when its desk came
  back since it was last delivered: the lecturer is online and available and the
  row's ``status_since`` (when what the board shows last changed: offline -> away
  -> available) is newer than ``delivered_at``. The installed firmware keeps no
  session and drops requests while its lecturer is away (FIRMWARE.md), so that is
  when it needs them again.
- A cancelled or expired request is due for a cancellation until ``cancel_sent_at``
  is set.

Exactly once in the normal case, across several ingest services: due rows are
claimed with ``SELECT … FOR UPDATE SKIP LOCKED``, published at QoS 1 (not
retained), and marked (``delivered_at``/``cancel_sent_at``) in the same
transaction once the broker acknowledged every one of them (PUBACK); then the
transaction commits. Another dispatcher skips rows held, and re-reads rows
committed, so it finds them no longer due. A crash between the PUBACK and the
commit sends that message again: at least once, never lost.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from psycopg import sql
from psycopg.rows import TupleRow

from consultease.config import MqttEndpoint
from consultease.consultation import cancellation_payload, desk_message
from consultease.db.connection import connect, first_line
from consultease.errors import ConfigError, ConsultEaseError
from consultease.payloads import CANCELLATIONS_SUFFIX, MESSAGES_SUFFIX, faculty_topic
from consultease.retry import RetryPolicy

log = logging.getLogger(__name__)

DESK_QOS: Final = 1
CHANNELS: Final = ("consultation_changed", "consultation_due")
DEFAULT_RESCAN_INTERVAL: Final = 10.0
PUBACK_TIMEOUT: Final = 5.0
CLAIM_LIMIT: Final = 200
"""Rows claimed per transaction: a backlog goes out in several short transactions."""
MAX_INFLIGHT: Final = 1000
_POLL: Final = 0.25
_KEEPALIVE: Final = 30

# Pending requests due for (re)delivery, optionally only some lecturers', claimed.
_CLAIM_DELIVERIES = """
SELECT c.id, c.faculty_id, c.student_name, c.student_id, c.message
FROM consultation AS c
JOIN faculty AS f ON f.id = c.faculty_id
WHERE c.status = 'pending'
  AND (%(ids)s::bigint[] IS NULL OR c.faculty_id = ANY(%(ids)s::bigint[]))
  AND (c.delivered_at IS NULL
       OR (f.desk_online AND f.status = 'available' AND c.delivered_at < f.status_since))
ORDER BY c.id
LIMIT %(limit)s
FOR UPDATE OF c SKIP LOCKED
"""

_MARK_DELIVERED = """
UPDATE consultation
SET delivered_at = now(), delivery_attempts = delivery_attempts + 1
WHERE id = ANY(%s::bigint[])
"""

_CLAIM_CANCELLATIONS = """
SELECT c.id, c.faculty_id, c.student_name, c.course_code, c.closed_at
FROM consultation AS c
WHERE c.status IN ('cancelled', 'expired') AND c.cancel_sent_at IS NULL
  AND (%(ids)s::bigint[] IS NULL OR c.faculty_id = ANY(%(ids)s::bigint[]))
ORDER BY c.id
LIMIT %(limit)s
FOR UPDATE OF c SKIP LOCKED
"""

_MARK_CANCEL_SENT = """
UPDATE consultation SET cancel_sent_at = now() WHERE id = ANY(%s::bigint[])
"""


@dataclass(frozen=True, slots=True)
class Sent:
    """What one dispatch pass published."""

    messages: int = 0
    cancellations: int = 0


Publish = Callable[[str, bytes], "mqtt.MQTTMessageInfo"]


class Dispatcher:
    """Sends requests and cancellations to the desks. ``start`` returns at once;
    ``close`` stops the thread and both connections."""

    def __init__(
        self,
        database_url: str,
        endpoint: MqttEndpoint,
        *,
        client_id: str | None = None,
        ca_file: str | None = None,
        rescan_interval: float = DEFAULT_RESCAN_INTERVAL,
        on_sent: Callable[[Sent], object] | None = None,
    ) -> None:
        self._url = database_url
        self.endpoint = endpoint
        self.client_id = client_id or f"consultease-dispatch-{uuid.uuid4().hex[:12]}"
        self._rescan_interval = rescan_interval
        self._on_sent = on_sent
        self._stop = threading.Event()
        self._link = threading.Event()
        self._link_changed = threading.Event()
        self._retry = RetryPolicy(max_attempts=None, base_delay=0.2, max_delay=10.0)
        self._client = self._make_client(ca_file)
        self._thread = threading.Thread(target=self._run, name="consultation-dispatch", daemon=True)
        self._work: psycopg.Connection[TupleRow] | None = None
        self._started = False
        self.sent_messages = 0
        self.sent_cancellations = 0

    # -- lifecycle -------------------------------------------------------------

    def _make_client(self, ca_file: str | None) -> mqtt.Client:
        # MQTT 3.1.1, clean session: nothing of this connection's survives it, and
        # what was in flight when it dropped is still unmarked in the database.
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
            reconnect_on_failure=True,
        )
        if self.endpoint.username is not None:
            client.username_pw_set(self.endpoint.username, self.endpoint.password)
        if self.endpoint.tls:
            try:
                client.tls_set(ca_certs=ca_file)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot set up TLS for the broker: {exc}") from exc
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        return client

    def start(self) -> None:
        if self._started:
            raise RuntimeError("Dispatcher.start called twice")
        self._started = True
        log.info("consultation dispatcher starting (client id %s)", self.client_id)
        self._client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=_KEEPALIVE)
        self._client.loop_start()
        self._thread.start()

    def wait_connected(self, timeout: float) -> bool:
        return self._link.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._link_changed.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._started:
            self._client.disconnect()
            self._client.loop_stop()
        if self._work is not None:
            self._work.close()
            self._work = None

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error("broker refused the dispatcher's connection: %s", reason_code)
            return
        self._link.set()
        self._link_changed.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._link.clear()
        if not self._stop.is_set():
            log.warning("dispatcher lost the broker (%s); reconnecting", reason_code)

    # -- the loop --------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                self._session()
                attempt = 0
            except (psycopg.Error, ConsultEaseError) as exc:
                attempt += 1
                delay = self._retry.delay(attempt)
                log.warning(
                    "consultation dispatcher: %s; retrying in %.1fs", first_line(exc), delay
                )
                self._drop_work()
                if self._stop.wait(delay):
                    break
            except Exception:
                log.exception("consultation dispatcher failed; restarting it")
                self._drop_work()
                if self._stop.wait(1.0):
                    break

    def _session(self) -> None:
        """One LISTEN connection: LISTEN, scan everything, then follow the hints."""
        with connect(
            self._url, autocommit=True, application_name="consultease-dispatch-listen"
        ) as listen:
            for channel in CHANNELS:
                listen.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self._pass(None)
            next_scan = time.monotonic() + self._rescan_interval
            while not self._stop.is_set():
                hinted: set[int] | None = self._hints(listen)
                if self._link_changed.is_set():
                    self._link_changed.clear()
                    hinted = None  # the broker is back: everything, in case a PUBACK was lost
                if time.monotonic() >= next_scan:
                    hinted = None
                    listen.execute("SELECT 1")  # liveness of the LISTEN connection
                if hinted is None or hinted:
                    self._pass(hinted)
                    if hinted is None:
                        next_scan = time.monotonic() + self._rescan_interval

    def _hints(self, listen: psycopg.Connection[TupleRow]) -> set[int]:
        """The lecturers named by the first notification within the poll interval and by
        whatever else has arrived by then."""
        ids: set[int] = set()
        for note in listen.notifies(timeout=_POLL, stop_after=1):
            ids.update(_hinted_faculty(note.payload))
        # Whatever else arrived meanwhile, without waiting.
        for note in listen.notifies(timeout=0):
            ids.update(_hinted_faculty(note.payload))
        return ids

    def _pass(self, faculty_ids: Iterable[int] | None) -> Sent:
        """Send everything due (for ``faculty_ids``, or everyone with ``None``)."""
        if not self._link.is_set():
            return Sent()
        ids = None if faculty_ids is None else sorted(faculty_ids)
        total = Sent()
        while not self._stop.is_set() and self._link.is_set():
            sent = self.dispatch_once(ids)
            total = Sent(
                messages=total.messages + sent.messages,
                cancellations=total.cancellations + sent.cancellations,
            )
            if sent.messages < CLAIM_LIMIT and sent.cancellations < CLAIM_LIMIT:
                break
        return total

    def dispatch_once(self, faculty_ids: Sequence[int] | None = None) -> Sent:
        """One claim-publish-mark transaction for deliveries and one for cancellations."""
        if faculty_ids is not None and not faculty_ids:
            return Sent()
        conn = self._connection()
        params: dict[str, Any] = {
            "ids": None if faculty_ids is None else list(faculty_ids),
            "limit": CLAIM_LIMIT,
        }
        with conn.transaction():
            rows = conn.execute(_CLAIM_DELIVERIES, params).fetchall()
            messages = [
                (
                    int(r[0]),
                    faculty_topic(int(r[1]), MESSAGES_SUFFIX),
                    r[2],
                    r[3],
                    r[4],
                )
                for r in rows
            ]
            done = self._publish_all(
                (
                    cid,
                    topic,
                    desk_message(
                        consultation_id=cid,
                        student_name=name,
                        student_id=sid,
                        message=text,
                        topic_length=len(topic.encode()),
                    ).encode(),
                )
                for cid, topic, name, sid, text in messages
            )
            if done:
                conn.execute(_MARK_DELIVERED, (done,))
        with conn.transaction():
            rows = conn.execute(_CLAIM_CANCELLATIONS, params).fetchall()
            cancelled = self._publish_all(
                (
                    int(r[0]),
                    faculty_topic(int(r[1]), CANCELLATIONS_SUFFIX),
                    cancellation_payload(
                        consultation_id=int(r[0]),
                        student_name=r[2],
                        course_code=r[3],
                        cancelled_at=r[4],
                    ),
                )
                for r in rows
            )
            if cancelled:
                conn.execute(_MARK_CANCEL_SENT, (cancelled,))
        sent = Sent(messages=len(done), cancellations=len(cancelled))
        self.sent_messages += sent.messages
        self.sent_cancellations += sent.cancellations
        if sent.messages or sent.cancellations:
            log.debug("dispatched %d requests, %d cancellations", sent.messages, sent.cancellations)
            if self._on_sent is not None:
                self._on_sent(sent)
        return sent

    def _publish_all(self, messages: Iterable[tuple[int, str, bytes]]) -> list[int]:
        """Publish at QoS 1 and wait for every PUBACK; the ids the broker took.

        If the broker does not acknowledge them all in time, none is marked (the
        transaction marks what returned here): they are sent again next pass.
        """
        pending: list[tuple[int, mqtt.MQTTMessageInfo]] = []
        for cid, topic, payload in messages:
            info = self._client.publish(topic, payload, qos=DESK_QOS, retain=False)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                log.warning("cannot publish to %s now (%s); kept for the next pass", topic, info.rc)
                continue
            pending.append((cid, info))
        deadline = time.monotonic() + PUBACK_TIMEOUT
        done: list[int] = []
        for cid, info in pending:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                continue
            if info.is_published():
                done.append(cid)
        if len(done) < len(pending):
            log.warning(
                "broker acknowledged %d of %d desk messages; the rest are sent again",
                len(done),
                len(pending),
            )
        return done

    def _connection(self) -> psycopg.Connection[TupleRow]:
        if self._work is None or self._work.closed:
            self._work = connect(self._url, application_name="consultease-dispatch")
        return self._work

    def _drop_work(self) -> None:
        if self._work is not None:
            self._work.close()
            self._work = None


def _hinted_faculty(payload: str) -> list[int]:
    """The lecturer a notification names (``faculty_id`` on both channels). A payload
    that does not parse names nobody (the periodic scan finds what it was about)."""
    try:
        value = json.loads(payload)["faculty_id"]
    except (ValueError, KeyError, TypeError):
        return []
    return [value] if isinstance(value, int) and not isinstance(value, bool) else []
