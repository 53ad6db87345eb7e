"""The receive path alone, A/B: CPU per QoS 1 message of a subscriber that
acknowledges only after a batch "commit" (as the ingest does), by client and
protocol, on a private mosquitto, the same traffic for each, kinds interleaved.

```sh
python -m consultease.tools.bench.receiver                       # 4 rounds of 20,000 messages
python -m consultease.tools.bench.receiver --kinds paho-311,gmqtt-5
```

Kinds: ``paho-311`` and ``paho-5`` (the ingest's ``BufferedClient``, one PUBACK
write per batch), ``paho-311-each`` (``ack`` per message, as before), and
``gmqtt-5`` (gmqtt with ``optimistic_acknowledgement=False``: a coroutine per
message, acknowledged when the batch resolves it; needs ``pip install gmqtt``,
not a dependency). gmqtt below MQTT 5 always acknowledges before the handler
runs, so it has no ``gmqtt-311`` here. Each kind runs in a fresh process;
CPU from ``getrusage``, from its first message to its last.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import queue
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from consultease.ingest.transport import BufferedClient
from consultease.tools.servers import MosquittoInstance

BATCH: Final = 500
TOPIC: Final = "bench/faculty/+/status"
KINDS: Final = ("paho-311", "paho-311-each", "paho-5", "gmqtt-5")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _paho(port: int, kind: str, count: int) -> tuple[float, float]:
    inbox: queue.Queue[int] = queue.Queue(10_000)
    client = BufferedClient(
        CallbackAPIVersion.VERSION2,
        client_id=f"bench-receiver-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5 if kind == "paho-5" else mqtt.MQTTv311,
        manual_ack=True,
    )
    ready = threading.Event()
    client.on_connect = lambda c, *_: c.subscribe(TOPIC, qos=1)
    client.on_subscribe = lambda *_: ready.set()
    client.on_message = lambda _c, _u, message: inbox.put(message.mid)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        ready.wait(10)
        print("ready", flush=True)
        got, started = 0, (0.0, 0.0)
        while got < count:
            batch = [inbox.get()]
            if got == 0:
                started = (time.perf_counter(), _cpu())
            while len(batch) < BATCH:
                try:
                    batch.append(inbox.get_nowait())
                except queue.Empty:
                    break
            if kind == "paho-311-each":
                for mid in batch:
                    client.ack(mid, 1)
            else:
                client.ack_many(batch)
            got += len(batch)
        return (_cpu() - started[1]) / got * 1e6, got / (time.perf_counter() - started[0])
    finally:
        client.disconnect()
        client.loop_stop()


def _gmqtt(port: int, count: int) -> tuple[float, float]:
    import gmqtt  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: PLC0415

    async def main() -> tuple[float, float]:
        pending: list[asyncio.Future[int]] = []
        wake = asyncio.Event()
        started: list[float] = []

        async def on_message(*_: Any) -> int:
            if not started:
                started.extend((time.perf_counter(), _cpu()))
            future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            pending.append(future)
            wake.set()
            return await future  # the PUBACK leaves once the "commit" resolves it

        client = gmqtt.Client(
            f"bench-receiver-{uuid.uuid4().hex[:8]}", optimistic_acknowledgement=False
        )
        client.on_message = on_message
        await client.connect("127.0.0.1", port, version=gmqtt.constants.MQTTv50)
        client.subscribe(TOPIC, qos=1)
        await asyncio.sleep(0.5)
        print("ready", flush=True)
        got = 0
        while got < count:
            await wake.wait()
            wake.clear()
            await asyncio.sleep(0)
            batch, pending[:] = pending[:BATCH], pending[BATCH:]
            for future in batch:
                future.set_result(0)
            got += len(batch)
            if pending:
                wake.set()
        elapsed, cpu = time.perf_counter() - started[0], _cpu() - started[1]
        await client.disconnect()
        return cpu / got * 1e6, got / elapsed

    return asyncio.run(main())


def _measure(port: int, kind: str, count: int) -> None:
    us, rate = _gmqtt(port, count) if kind == "gmqtt-5" else _paho(port, kind, count)
    print(json.dumps({"us_per_message": us, "per_second": rate}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m consultease.tools.bench.receiver")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--messages", type=int, default=20_000, help="per kind and round")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        port, kind, count = args.measure
        _measure(int(port), kind, int(count))
        return 0
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        print(f"unknown kinds {', '.join(sorted(unknown))}; kinds are {', '.join(KINDS)}")
        return 2
    if "gmqtt-5" in kinds and importlib.util.find_spec("gmqtt") is None:
        print("gmqtt-5 skipped: gmqtt is not installed (pip install gmqtt)")
        kinds.remove("gmqtt-5")
    payload = b'{"status":"busy","version":4294967297,"ts":1764694800000}'
    results: dict[str, list[float]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="consultease-receiver-") as tmp:
        broker = MosquittoInstance(Path(tmp), persistence=False).start()
        publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-receiver-pub")
        publisher.max_inflight_messages_set(0)
        try:
            publisher.connect("127.0.0.1", broker.port)
            publisher.loop_start()
            for r in range(args.rounds):
                shift = r % len(kinds)
                for kind in kinds[shift:] + kinds[:shift]:
                    command = [sys.executable, "-m", __spec__.name, "--measure"]
                    with subprocess.Popen(
                        [*command, str(broker.port), kind, str(args.messages)],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL,
                        text=True,
                    ) as child:
                        assert child.stdout is not None
                        if child.stdout.readline().strip() != "ready":
                            print(f"{kind}: the receiver did not start")
                            return 1
                        for i in range(args.messages):
                            publisher.publish(f"bench/faculty/{i % 2000}/status", payload, qos=1)
                            if i % 1000 == 999:
                                time.sleep(0.01)  # let the broker breathe, as desks would
                        figures = json.loads(child.stdout.readline())
                    results[kind].append(figures["us_per_message"])
        finally:
            publisher.disconnect()
            publisher.loop_stop()
            broker.stop()
    print(f"CPU µs per message received and acked after a batch, {args.rounds} rounds: "
          "median [range]")  # fmt: skip
    for kind, values in results.items():
        print(
            f"  {kind:14s} {statistics.median(values):5.1f} [{min(values):.1f}–{max(values):.1f}]"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
