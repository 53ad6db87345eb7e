"""The paho client the ingest service uses, and the MQTT protocol choice.

``BufferedClient`` is a plain paho 2.x client that spends fewer system calls
(and fewer hand-overs of the interpreter lock) per message:

- its TCP reads are served from one 64 KiB ``recv`` (see ``_BufferedSocket``);
  TLS and websocket connections are left exactly as paho makes them;
- ``ack_many`` acknowledges a committed batch as one queued write, where
  ``ack`` per message costs a wake-up of paho's network thread and a ``send``
  each;
- ``corked()`` queues the packets a thread sends in a block (the state
  publisher's batch of retained messages) with one wake-up;
- the network thread writes the packets queued so far in one ``send`` (up to
  64 KiB), not one ``send`` per packet.

What reaches the broker is byte for byte what paho would send, in the same
order; only the number of writes changes.
"""

from __future__ import annotations

import contextlib
import enum
import socket
import ssl
import struct
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion

if TYPE_CHECKING:
    from paho.mqtt.client import MQTTMessageInfo, SocketLike, _OutPacket

_READ_SIZE: Final = 65_536
_DRAIN_PACKETS: Final = 64
_WRITE_SIZE: Final = 65_536
"""Queued packets joined into one ``send`` at most."""
_PUBACK: Final = 0x40
_PUBLISH: Final = 0x30
_DISCONNECT: Final = 0xE0
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
    """A paho client that reads plain TCP through ``_BufferedSocket`` and writes
    what is queued in as few ``send`` calls as it can.

    ``_create_socket``, ``_packet_queue`` and ``_packet_write`` are paho's own
    internals for making the socket, queueing a packet and writing the queue
    (present throughout paho 2.x, which pyproject pins). ``_out_packet`` is a
    deque: other threads only append to its right end; only the network
    thread takes from its left.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._corked_by: int | None = None

    def ack_many(self, mids: Iterable[int]) -> None:
        """PUBACK every one of ``mids`` (QoS 1, ``manual_ack``) in one queued write.

        The same bytes as ``ack(mid, 1)`` for each, in order.
        """
        packet = b"".join(_PUBACK_PACKET.pack(_PUBACK, 2, mid) for mid in mids)
        if packet:
            self._packet_queue(_PUBACK, packet, 0, 1)

    @contextlib.contextmanager
    def corked(self) -> Iterator[None]:
        """Packets this thread queues inside the block wake the network thread once,
        at its end (a block of ``publish`` calls costs one wake-up, not one each)."""
        if self._corked_by is not None:
            yield  # nested, or another thread holds the cork: queue as usual
            return
        self._corked_by = threading.get_ident()
        try:
            yield
        finally:
            self._corked_by = None
            self._wake_network_thread()

    def _packet_queue(
        self,
        command: int,
        packet: bytes | bytearray,
        mid: int,
        qos: int,
        info: MQTTMessageInfo | None = None,
    ) -> MQTTErrorCode:
        if self._corked_by is None or self._corked_by != threading.get_ident():
            return super()._packet_queue(command, packet, mid, qos, info)
        self._out_packet.append(
            {
                "command": command,
                "mid": mid,
                "qos": qos,
                "pos": 0,
                "to_process": len(packet),
                "packet": packet,
                "info": info,
            }
        )
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _wake_network_thread(self) -> None:
        wake = self._sockpairW
        if wake is not None:
            with contextlib.suppress(BlockingIOError, OSError):
                wake.send(b"0")

    def _packet_write(self) -> MQTTErrorCode:
        self._join_queued_packets()
        return super()._packet_write()

    def _join_queued_packets(self) -> None:
        """Join runs of queued packets into one packet each, up to ``_WRITE_SIZE``.

        Only packets paho does nothing with once written are joined (not a QoS 0
        PUBLISH, whose ``on_publish`` fires then, and not DISCONNECT, which closes
        the socket), and only unstarted ones: a joined packet is written, and
        partly written, exactly as paho writes any packet. Packets other threads
        append meanwhile stay behind, in order.
        """
        queue = self._out_packet
        if len(queue) < 2:
            return
        taken = [queue.popleft() for _ in range(len(queue))]
        runs: list[_OutPacket] = []
        parts: list[bytes | bytearray] = []
        for packet in taken:
            if (
                parts
                and _joinable(packet)
                and sum(map(len, parts)) + len(packet["packet"]) <= _WRITE_SIZE
            ):
                parts.append(packet["packet"])
                continue
            if len(parts) > 1:
                joined = b"".join(parts)
                runs[-1] = {**runs[-1], "packet": joined, "to_process": len(joined)}
            runs.append(packet)
            parts = [packet["packet"]] if _joinable(packet) else []
        if len(parts) > 1:
            joined = b"".join(parts)
            runs[-1] = {**runs[-1], "packet": joined, "to_process": len(joined)}
        queue.extendleft(reversed(runs))

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


def _joinable(packet: Any) -> bool:
    command = packet["command"] & 0xF0
    if command == _DISCONNECT or (command == _PUBLISH and packet["qos"] == 0):
        return False
    return bool(packet["pos"] == 0)
