"""The paho client the ingest service uses, and the MQTT protocol choice.

``BufferedClient`` is a plain paho 2.x client that spends fewer system calls
(and fewer hand-overs of the interpreter lock) per message:

- its TCP reads are served from one 64 KiB ``recv`` (see ``_BufferedSocket``);
  TLS and websocket connections are left exactly as paho makes them;
- ``ack_many`` acknowledges a committed batch as one queued write, where
  ``ack`` per message costs a wake-up of paho's network thread and a ``send``
  each. What reaches the broker is byte for byte what ``ack`` would send, in
  the same order.
"""

from __future__ import annotations

import enum
import socket
import ssl
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion

if TYPE_CHECKING:
    from paho.mqtt.client import SocketLike

_READ_SIZE: Final = 65_536
_DRAIN_PACKETS: Final = 64
_PUBACK: Final = 0x40
_PUBACK_PACKET: Final = struct.Struct("!BBH")
"""PUBACK with the packet id only: MQTT 3.1.1, and MQTT 5's "success" short form."""


class MqttProtocol(enum.StrEnum):
    V5 = "5"
    V311 = "3.1.1"

    @property
    def paho(self) -> MQTTProtocolVersion:
        return mqtt.MQTTv5 if self is MqttProtocol.V5 else mqtt.MQTTv311


class _BufferedSocket:
    """A plain TCP socket whose ``recv`` is served from one large read.

    paho reads each packet with at least three ``recv`` calls (command byte,
    length bytes, body), and waits in ``select`` before each packet. Every one
    of those system calls releases the interpreter lock, and under load the
    worker thread takes it each time, so the network thread queues for it
    several times per message. Reading 64 KiB at once and serving paho from
    memory removes nearly all of those hand-overs; ``pending()`` tells paho's
    loop that buffered bytes are waiting (it asks TLS sockets the same).
    """

    __slots__ = ("_buffer", "_position", "_sock")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""
        self._position = 0

    def recv(self, buffer_size: int) -> bytes:
        if self._position >= len(self._buffer):
            data = self._sock.recv(_READ_SIZE)  # BlockingIOError reaches paho as usual
            if not data:
                return data
            self._buffer, self._position = data, 0
        chunk = self._buffer[self._position : self._position + buffer_size]
        self._position += len(chunk)
        return chunk

    def pending(self) -> int:
        return len(self._buffer) - self._position

    def send(self, buffer: bytes | bytearray) -> int:
        return self._sock.send(buffer)

    def close(self) -> None:
        self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class BufferedClient(mqtt.Client):
    """A paho client that reads plain TCP through ``_BufferedSocket`` and can
    acknowledge a batch in one write.

    ``_create_socket`` and ``_packet_queue`` are paho's own internals for making
    the connection's socket and queueing a packet for its network thread
    (present throughout paho 2.x, which pyproject pins); TLS and websocket
    connections are left exactly as paho makes them.
    """

    def ack_many(self, mids: Iterable[int]) -> None:
        """PUBACK every one of ``mids`` (QoS 1, ``manual_ack``) in one queued write.

        The same bytes as ``ack(mid, 1)`` for each, in order.
        """
        packet = b"".join(_PUBACK_PACKET.pack(_PUBACK, 2, mid) for mid in mids)
        if packet:
            self._packet_queue(_PUBACK, packet, 0, 1)

    def _create_socket(self) -> SocketLike:
        sock = super()._create_socket()
        if type(sock) is socket.socket and not isinstance(sock, ssl.SSLSocket):
            return _BufferedSocket(sock)
        return sock

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Also handle the packets already buffered (a bounded number, so acks
        and pings still go out in between)."""
        rc = super().loop_read(max_packets)
        for _ in range(_DRAIN_PACKETS):
            sock = self._sock
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or not isinstance(sock, _BufferedSocket):
                break
            if not sock.pending():
                break
            rc = super().loop_read(max_packets)
        return rc
