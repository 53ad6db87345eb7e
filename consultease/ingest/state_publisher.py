"""Closing the loop (SPEC 3.4): committed faculty state -> retained ``…/state`` messages.

A ``FacultyListener`` sees every committed change of a faculty row, whatever
made it (a desk through the ingest service, an admin, a psql session), and
the ``StatePublisher`` turns those events into retained QoS 1 messages on
``consultease/faculty/{id}/state``, so a desk shows what students see:

- ``FacultyChanged``: publish that faculty's state;
- ``Resynced`` (after every listener (re)connect, and periodically): publish
  every faculty whose state was not published yet, and clear the ones
  published before that are gone;
- ``FacultyRemoved``: publish an empty retained payload, which clears it;
- the broker connection coming (back) up: publish every faculty's state
  again, since what was in flight when it dropped may be lost.

Coalescing: events only mark a faculty as due (newest view wins); a worker
thread of the publisher's own drains everything due and publishes each row
once. One committed batch of the ingest service (one notification per row)
costs at most one message per row, and a backlog costs less.

``StateService`` is the publisher with a listener and an MQTT connection of
its own (never the ingest service's: acknowledgements and state messages do
not share a socket, a lock or a reconnect). ``consultease.ingest.state_process``
runs it in a child process, off the ingest service's interpreter lock.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Final
from urllib.parse import quote

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from consultease.broker.credentials import state_username
from consultease.config import MqttEndpoint
from consultease.domain import FacultyView, Status
from consultease.ingest.transport import BufferedClient
from consultease.live.listener import (
    FacultyChanged,
    FacultyListener,
    FacultyRemoved,
    ListenerEvent,
    Resynced,
)
from consultease.payloads import STATE_SUFFIX, faculty_topic

log = logging.getLogger(__name__)

STATE_QOS: Final = 1
MAX_INFLIGHT: Final = 0
"""QoS 1 state messages in flight on the publisher's connection: no limit.

What is due is already bounded (at most one message per faculty), and once a
window is set paho scans every message in flight at each PUBACK
(``Client._update_inflight``): a quarter of this process's samples, with a
window of 1,000, when it had fallen behind. With the default of 20, a batch of
hundreds of rows would wait one broker round trip per twenty messages."""
RECONNECT_MIN_DELAY: Final = 1
RECONNECT_MAX_DELAY: Final = 30
KEEPALIVE: Final = 30

Publish = Callable[[str, bytes], object]
"""Publish ``payload`` retained (QoS 1) on ``topic``."""


class StateMode(enum.StrEnum):
    """Where the ingest service runs its state publisher."""

    PROCESS = "process"
    """A child process with its own interpreter and broker connection (the default)."""
    THREAD = "thread"
    """Threads of the ingest process, with their own broker connection."""
    OFF = "off"
    """Not at all (another process publishes the state, or nobody needs it)."""


def state_topic(faculty_id: int) -> str:
    return faculty_topic(faculty_id, STATE_SUFFIX)


def state_payload(view: FacultyView) -> bytes:
    """``{"status", "desk_online", "version", "updated_at", "always_available"}`` as
    compact JSON: what the kiosks show.

    ``status`` is the stored status, except for an always-available lecturer (no
    working desk), whom the board shows as ``available`` whatever was stored; the
    extra ``always_available`` field says so. ``desk_online`` is the desk unit's
    own state either way (a desk that reads this is online). ``version`` is the
    row version (SPEC 5.1), ``updated_at`` ISO 8601 with its UTC offset.
    """
    status = Status.AVAILABLE if view.always_available else view.status
    return json.dumps(
        {
            "status": status.value,
            "desk_online": view.desk_online,
            "version": view.version,
            "updated_at": view.updated_at.isoformat(),
            "always_available": view.always_available,
        },
        separators=(",", ":"),
    ).encode()


def paho_publisher(client: mqtt.Client) -> Publish:
    """A ``Publish`` through ``client``: retained, QoS 1."""

    def publish(topic: str, payload: bytes) -> object:
        return client.publish(topic, payload, qos=STATE_QOS, retain=True)

    return publish


_CLEAR: Final = None
"""A due entry meaning "clear this faculty's retained state"."""


class StatePublisher:
    """Listener events in, retained state messages out, coalesced per faculty.

    ``handle`` may be called from any thread and never blocks for long; the
    publishing happens on the publisher's own thread, started by ``start`` (or
    ``attach``). ``link_down``/``link_up`` say whether the broker connection is
    usable: while it is down nothing is sent (the due rows wait, one entry per
    faculty), and ``link_up`` republishes everything.
    """

    def __init__(
        self,
        publish: Publish,
        *,
        on_published: Callable[[int], None] | None = None,
        link_up: bool = True,
        thread_name: str = "consultease-state-publisher",
    ) -> None:
        self._publish = publish
        self._on_published = on_published
        self._thread_name = thread_name
        self._lock = threading.Condition()
        # Guarded by _lock: what the listener says now, and what is due.
        self._current: dict[int, FacultyView] = {}
        self._due: dict[int, FacultyView | None] = {}
        self._republish = False
        self._link_up = link_up
        self._closing = False
        # The worker's own: faculty id -> row version published on this link.
        self._shown: dict[int, int] = {}
        self._thread: threading.Thread | None = None
        self._listener: FacultyListener | None = None
        self._unsubscribe: Callable[[], None] | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("StatePublisher.start called twice")
        self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
        self._thread.start()

    def attach(self, listener: FacultyListener) -> None:
        """Follow ``listener`` (subscribe before it starts); ``close`` then also closes it."""
        self._listener = listener
        self._unsubscribe = listener.subscribe(self.handle)
        if self._thread is None:
            self.start()

    def close(self, timeout: float = 1.0) -> None:
        """Stop following the listener, send what is due if the link is up, and stop."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._listener is not None:
            self._listener.close(timeout)
            self._listener = None
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("state publisher thread did not stop within %.1f s", timeout)

    # -- input (any thread) -----------------------------------------------------------

    def handle(self, event: ListenerEvent) -> None:
        with self._lock:
            if isinstance(event, FacultyChanged):
                self._changed(event.view)
            elif isinstance(event, FacultyRemoved):
                self._current.pop(event.faculty_id, None)
                self._due[event.faculty_id] = _CLEAR
            elif isinstance(event, Resynced):
                present = {view.id: view for view in event.views if view.active}
                for faculty_id in self._current.keys() - present.keys():
                    self._due[faculty_id] = _CLEAR
                for view in event.views:
                    self._changed(view)
                log.info("state publisher resynced: %d faculty", len(present))
            else:
                return
            self._lock.notify_all()

    def link_up(self) -> None:
        """The broker connection is (again) usable: republish every faculty's state."""
        with self._lock:
            self._link_up = True
            self._republish = True
            self._lock.notify_all()

    def link_down(self) -> None:
        """The broker connection is gone: hold messages until ``link_up``."""
        with self._lock:
            self._link_up = False

    def _changed(self, view: FacultyView) -> None:
        if not view.active:
            self._current.pop(view.id, None)
            self._due[view.id] = _CLEAR
            return
        known = self._current.get(view.id)
        if known is not None and known.version > view.version:
            return  # an older row than the one already held
        self._current[view.id] = view
        self._due[view.id] = view

    # -- the worker --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closing and not (self._link_up and (self._due or self._republish)):
                    self._lock.wait()
                if not self._link_up:
                    return  # closing with the link down: nothing can be sent
                if self._republish:
                    self._republish = False
                    self._shown.clear()
                    due: dict[int, FacultyView | None] = {
                        **{i: v for i, v in self._due.items() if v is _CLEAR},
                        **self._current,
                    }
                else:
                    due = self._due
                self._due = {}
                closing = self._closing
            try:
                self._send(self._messages(due.items()))
            except Exception:
                log.exception("publishing faculty state failed; it is republished on reconnect")
            if closing:
                return

    def _messages(self, due: Iterable[tuple[int, FacultyView | None]]) -> list[tuple[str, bytes]]:
        messages = []
        for faculty_id, view in due:
            if view is None:
                self._shown.pop(faculty_id, None)
                messages.append((state_topic(faculty_id), b""))
            elif self._shown.get(faculty_id) != view.version:
                self._shown[faculty_id] = view.version
                messages.append((state_topic(faculty_id), state_payload(view)))
        return messages

    def _send(self, messages: list[tuple[str, bytes]]) -> None:
        for topic, payload in messages:
            self._publish(topic, payload)
        if messages:
            log.debug("published %d state messages", len(messages))
            if self._on_published is not None:
                self._on_published(len(messages))


class StateService:
    """A ``StatePublisher`` with a listener and a broker connection of its own.

    ``start`` returns at once; the connections are made (and remade) in the
    background. Every (re)connect to the broker republishes every faculty's
    state; every reconnect to the database resyncs (the listener's rule).
    """

    def __init__(
        self,
        database_url: str,
        endpoint: MqttEndpoint,
        *,
        client_id: str | None = None,
        ca_file: str | None = None,
        on_published: Callable[[int], None] | None = None,
        application_name: str = "consultease-state",
    ) -> None:
        self.endpoint = endpoint
        self.client_id = client_id or f"consultease-state-{uuid.uuid4().hex[:12]}"
        self.publisher = StatePublisher(self._publish, on_published=on_published, link_up=False)
        self.listener = FacultyListener(database_url, application_name=application_name)
        self._client = self._make_client(ca_file)
        self._connected = threading.Event()
        self._started = False
        self._closing = False

    def _make_client(self, ca_file: str | None) -> BufferedClient:
        # MQTT 3.1.1, clean session: every broker speaks it, and after a reconnect
        # everything is republished anyway, so a kept session would only replay.
        # The ingest service's client: a burst of PUBACKs is read in one recv, not
        # three per acknowledgement.
        client = BufferedClient(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
            reconnect_on_failure=True,
        )
        client.max_inflight_messages_set(MAX_INFLIGHT)
        self.endpoint.log_in(client, ca_file)
        client.reconnect_delay_set(RECONNECT_MIN_DELAY, RECONNECT_MAX_DELAY)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        return client

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def start(self) -> None:
        if self._started:
            raise RuntimeError("StateService.start called twice")
        self._started = True
        log.info(
            "state publisher starting: broker %s (client id %s)",
            self.endpoint.url(),
            self.client_id,
        )
        self.publisher.attach(self.listener)
        self.listener.start()
        self._client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=KEEPALIVE)
        self._client.loop_start()

    def close(self, timeout: float = 2.0) -> None:
        """Stop the listener, send what is due, disconnect cleanly, join every thread."""
        self.publisher.close(timeout)
        self._closing = True
        if self._started:
            self._client.disconnect()
            self._client.loop_stop()
        self._connected.clear()
        log.info("state publisher stopped")

    def __enter__(self) -> StateService:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _publish(self, topic: str, payload: bytes) -> object:
        return self._client.publish(topic, payload, qos=STATE_QOS, retain=True)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error("broker %s refused the state publisher: %s", self.endpoint.url(), reason_code)
            return
        log.info("state publisher connected to %s; publishing every state", self.endpoint.url())
        self._connected.set()
        self.publisher.link_up()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.publisher.link_down()
        if self._connected.is_set() and not self._closing:
            log.warning("state publisher lost the broker (%s); reconnecting", reason_code)
        self._connected.clear()


def state_endpoint(endpoint: MqttEndpoint) -> MqttEndpoint:
    """Where an ingest service's own state publisher connects: the same broker,
    as the login's ``-state`` companion (same password), because a broker that
    ties client ids to logins (ours) lets one login hold one connection only.
    ``consultease desk credentials --service ingest`` creates both logins."""
    if endpoint.username is None:
        return endpoint
    return dataclasses.replace(endpoint, username=state_username(endpoint.username))


def endpoint_url(endpoint: MqttEndpoint) -> str:
    """``endpoint`` as a URL with its password, quoted (for a child process)."""
    auth = ""
    if endpoint.username is not None:
        auth = quote(endpoint.username, safe="")
        if endpoint.password is not None:
            auth += ":" + quote(endpoint.password, safe="")
        auth += "@"
    return f"{'mqtts' if endpoint.tls else 'mqtt'}://{auth}{endpoint.host}:{endpoint.port}"
