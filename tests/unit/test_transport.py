"""The ingest's paho client writes fewer times, never other bytes.

``BufferedClient`` joins queued packets into one ``send``, acknowledges a batch
as one queued write and lets a thread queue a block of packets with one
wake-up of the network thread. Each test compares the bytes that reach a real
socket with what plain paho queues for the same calls.
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


def _queued_by_plain_paho(calls: list[tuple[str, int]]) -> bytes:
    """What paho itself queues for ``calls``: the reference bytes."""
    plain = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="t", manual_ack=True)
    plain._sock = socket.socket()  # only needed to pass paho's "connected?" checks
    plain._thread = _NETWORK_THREAD  # type: ignore[assignment]
    try:
        for call, mid in calls:
            if call == "ack":
                plain.ack(mid, 1)
            else:
                plain._send_publish(mid, f"consultease/faculty/{mid}/state".encode(), b"{}", qos=1)
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
    expected = _queued_by_plain_paho([("ack", mid) for mid in mids])
    assert expected == b"".join(b"\x40\x02" + mid.to_bytes(2, "big") for mid in mids)
    assert _read(broker, len(expected)) == expected


def test_queued_packets_leave_joined_but_a_qos0_publish_and_disconnect_keep_their_own_write(
    wire: tuple[socket.socket, socket.socket],
) -> None:
    ours, broker = wire
    client = _client(ours)
    published: list[int] = []
    client.on_publish = lambda c, u, mid, rc, p: published.append(mid)
    client.ack(1, 1)
    client.ack(2, 1)
    client._send_publish(9, b"t/0", b"zero", qos=0, info=mqtt.MQTTMessageInfo(9))
    client.ack(3, 1)
    client._send_publish(10, b"t/1", b"one", qos=1)

    client._join_queued_packets()  # type: ignore[attr-defined]
    commands = [p["command"] & 0xF0 for p in client._out_packet]
    assert commands == [0x40, 0x30, 0x40], "two acks joined, the QoS 0 publish apart"

    client._packet_write()
    # The QoS 0 publish still tells on_publish it left, and everything leaves in order.
    assert published == [9]
    acks = b"".join(b"\x40\x02" + mid.to_bytes(2, "big") for mid in (1, 2))
    qos0 = b"\x30\x09\x00\x03t/0zero"
    rest = b"\x40\x02\x00\x03" + b"\x32\x0a\x00\x03t/1\x00\x0aone"
    assert _read(broker, len(acks + qos0 + rest)) == acks + qos0 + rest

    client.ack(4, 1)
    client.disconnect()
    client._join_queued_packets()  # type: ignore[attr-defined]
    assert [p["command"] & 0xF0 for p in client._out_packet] == [0x40, 0xE0]


def test_a_corked_block_of_publishes_wakes_the_network_thread_once(
    wire: tuple[socket.socket, socket.socket],
) -> None:
    ours, broker = wire
    client = _client(ours)
    assert isinstance(client, BufferedClient)
    wake_read, wake_write = socket.socketpair()
    wake_read.setblocking(False)
    client._sockpairR, client._sockpairW = wake_read, wake_write
    try:
        with client.corked():
            for mid in (5, 6, 7):
                client._send_publish(mid, f"consultease/faculty/{mid}/state".encode(), b"{}", qos=1)
            with pytest.raises(BlockingIOError):
                wake_read.recv(16)  # nothing woke the network thread yet
        assert wake_read.recv(16) == b"0", "one wake-up for the whole block"
        client.ack(8, 1)  # outside the block: paho's own wake-up, one per packet
        assert wake_read.recv(16) == b"0"

        client._packet_write()
        expected = _queued_by_plain_paho([("publish", 5), ("publish", 6), ("publish", 7)])
        expected += b"\x40\x02\x00\x08"
        assert _read(broker, len(expected)) == expected
    finally:
        client._thread = None
        wake_read.close()
        wake_write.close()
