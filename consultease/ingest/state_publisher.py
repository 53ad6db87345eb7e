"""Closing the loop (SPEC 3.4): committed faculty state -> retained ``…/state`` messages.

A ``FacultyListener`` sees every committed change of a faculty row, whatever
made it (a desk through the ingest service, an admin, a psql session), and
the ``StatePublisher`` turns each event into a retained QoS 1 message on
``consultease/faculty/{id}/state``, so a desk shows what students see:

- ``FacultyChanged``: publish that faculty's state;
- ``Resynced`` (after every listener (re)connect, and periodically): publish
  every faculty's state, and clear the ones published before that are gone;
- ``FacultyRemoved``: publish an empty retained payload, which clears it.

Everything runs on the listener's thread; paho's ``publish`` is thread-safe
and queues QoS 1 messages while the broker is away.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Final

import paho.mqtt.client as mqtt

from consultease.domain import FacultyView, Status
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

Publish = Callable[[str, bytes], object]
"""Publish ``payload`` retained (QoS 1) on ``topic``."""


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


class StatePublisher:
    """Listener events in, retained state messages out. Call ``handle`` from one thread."""

    def __init__(
        self,
        publish: Publish,
        *,
        on_published: Callable[[int], None] | None = None,
    ) -> None:
        self._publish = publish
        self._on_published = on_published
        self._shown: dict[int, int] = {}
        """Faculty id -> row version last published (for clearing and skipping repeats)."""
        self._listener: FacultyListener | None = None
        self._unsubscribe: Callable[[], None] | None = None

    @classmethod
    def start_for(
        cls,
        database_url: str,
        *,
        client: mqtt.Client,
        on_published: Callable[[int], None] | None = None,
        application_name: str = "consultease-state",
    ) -> StatePublisher:
        """A publisher fed by a listener of its own on ``database_url``, started."""
        publisher = cls(paho_publisher(client), on_published=on_published)
        listener = FacultyListener(database_url, application_name=application_name)
        publisher.attach(listener)
        listener.start()
        return publisher

    def attach(self, listener: FacultyListener) -> None:
        """Follow ``listener``; ``close`` then also closes it."""
        self._listener = listener
        self._unsubscribe = listener.subscribe(self.handle)

    def close(self, timeout: float = 1.0) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._listener is not None:
            self._listener.close(timeout)
            self._listener = None

    def handle(self, event: ListenerEvent) -> None:
        if isinstance(event, FacultyChanged):
            if self._shown.get(event.view.id) != event.view.version:
                self._send(self._state_of([event.view]))
        elif isinstance(event, FacultyRemoved):
            self._send(self._cleared([event.faculty_id]))
        elif isinstance(event, Resynced):
            present = {view.id for view in event.views}
            gone = [faculty_id for faculty_id in self._shown if faculty_id not in present]
            self._send([*self._state_of(event.views), *self._cleared(gone)])
            log.info("published the state of %d faculty (%d cleared)", len(present), len(gone))

    def _state_of(self, views: Iterable[FacultyView]) -> list[tuple[str, bytes]]:
        messages = []
        for view in views:
            if not view.active:
                messages.extend(self._cleared([view.id]))
                continue
            self._shown[view.id] = view.version
            messages.append((state_topic(view.id), state_payload(view)))
        return messages

    def _cleared(self, faculty_ids: Iterable[int]) -> list[tuple[str, bytes]]:
        messages = []
        for faculty_id in faculty_ids:
            self._shown.pop(faculty_id, None)
            messages.append((state_topic(faculty_id), b""))
        return messages

    def _send(self, messages: list[tuple[str, bytes]]) -> None:
        for topic, payload in messages:
            self._publish(topic, payload)
            log.debug("published %s %r", topic, payload[:80])
        if messages and self._on_published is not None:
            self._on_published(len(messages))
