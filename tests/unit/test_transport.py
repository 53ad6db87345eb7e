"""The ingest's paho client acknowledges a batch in one write, never other bytes.

The test compares the bytes that reach a real socket with what plain paho
queues for the same acknowledgements.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from consultease.ingest.transport import BufferedClient


@pytest.fixture
def wire() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, broker = socket.socketpair()
    broker.settimeout(2)
    yield ours, broker
    ours.close()
    broker.close()


def _client(sock: socket.socket, cls: type[mqtt.Client] = BufferedClient) -> mqtt.Client:
    client = cls(CallbackAPIVersion.VERSION2, client_id="t", manual_ack=True)
    client._sock = sock  # as if connected: paho writes its queue to this socket
    # As under loop_start: other threads only queue; the test writes as the network
    # thread would, with _packet_write.
    client._thread = _NETWORK_THREAD  # type: ignore[assignment]
    return client


_NETWORK_THREAD = object()


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the socket closed early"
        data += chunk
    return data


def _queued_by_plain_paho(mids: list[int]) -> bytes:
    """What paho itself queues for ``ack(mid, 1)`` of each: the reference bytes."""
    plain = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="t", manual_ack=True)
    plain._sock = socket.socket()  # only needed to pass paho's "connected?" checks
    plain._thread = _NETWORK_THREAD  # type: ignore[assignment]
    try:
        for mid in mids:
            plain.ack(mid, 1)
        return b"".join(bytes(p["packet"]) for p in plain._out_packet)
    finally:
        plain._sock.close()


def test_a_batch_of_acks_is_one_queued_write_of_the_same_bytes_in_order(
    wire: tuple[socket.socket, socket.socket],
) -> None:
    ours, broker = wire
    client = _client(ours)
    mids = [1, 2, 258, 65535, 7]
    assert isinstance(client, BufferedClient)

    client.ack_many(mids)
    client.ack_many([])  # nothing to acknowledge: nothing queued

    assert len(client._out_packet) == 1
    client._packet_write()
    expected = _queued_by_plain_paho(mids)
    assert expected == b"".join(b"\x40\x02" + mid.to_bytes(2, "big") for mid in mids)
    assert _read(broker, len(expected)) == expected
