"""Baseline (a)'s receiver: a bare paho subscriber that only counts, in a process of its own.

It subscribes at QoS 1 with the protocol the ingest service uses, so the
broker does the same work per message for both (deliver, wait for the
PUBACK, which paho sends as each message arrives). Its own process, so its
CPU time per message is its own, beside the ingest service's.

Orders: one JSON line on stdin (``url``, ``protocol``, ``topic``). It answers
``ready`` once subscribed; then each ``count`` line on stdin is answered
with the number of messages received so far; it leaves when stdin closes.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from consultease.config import MqttEndpoint


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # orders come on stdin; Ctrl-C is the parent's
    orders = json.loads(sys.stdin.readline())
    endpoint = MqttEndpoint.parse(orders["url"])
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"consultease-bench-sub-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5 if orders["protocol"] == "5" else mqtt.MQTTv311,
    )
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set()
    received = [0]
    subscribed = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        received[0] += 1  # paho's thread only writes it

    client.on_message = on_message
    client.on_connect = lambda c, *args: c.subscribe(orders["topic"], qos=1)
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect(endpoint.host, endpoint.port, keepalive=60)
    client.loop_start()
    try:
        if not subscribed.wait(30):
            return 1
        print("ready", flush=True)
        for line in sys.stdin:
            if line.strip() == "count":
                print(received[0], flush=True)
    finally:
        client.disconnect()
        client.loop_stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
