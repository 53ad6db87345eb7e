"""A broker of our own, for a machine with none: mosquitto when it is on the
PATH (started privately with our config), else amqtt running in this process.

amqtt speaks MQTT 3.1.1 only, so clients started against it must use
``--mqtt-protocol 3.1.1``; ``EmbeddedBroker.protocol`` says which applies.

``python -m consultease.tools.embedded_broker --port N`` runs one until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

from consultease.tools.servers import MosquittoInstance, ServiceError, free_port

log = logging.getLogger(__name__)


class _SnapshotIterDict(dict[Any, Any]):
    """A dict whose plain iteration walks a copy of its keys."""

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self.keys()))


class AmqttBroker:
    """amqtt on 127.0.0.1:``port``, in a background thread with its own event loop."""

    protocol = "3.1.1"

    def __init__(self, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="amqtt-broker", daemon=True)
        self._thread.start()
        self._started.wait(15)
        if self._error is not None:
            raise ServiceError(f"amqtt did not start: {self._error}") from self._error
        log.info("amqtt broker started on port %d", self.port)
        return self

    def _run(self) -> None:
        from amqtt.broker import Broker  # noqa: PLC0415 - heavy, only when used

        # amqtt's state machine logs every transition at INFO: noise for a demo.
        logging.getLogger("transitions").setLevel(logging.WARNING)
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            # Anonymous clients only: no $SYS topics, no per-packet logging.
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }

        async def start() -> None:
            self._broker = Broker(config)
            # amqtt 0.12 iterates this dict across an await while other sessions
            # subscribe, and a burst of connecting desks then dies with "dictionary
            # changed size during iteration". Iterating a snapshot avoids it.
            self._broker._subscriptions = _SnapshotIterDict(self._broker._subscriptions)
            await self._broker.start()

        try:
            loop.run_until_complete(start())
        except BaseException as exc:
            self._error = exc
            self._started.set()
            loop.close()
            return
        self._started.set()
        loop.run_forever()
        loop.close()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return

        async def shutdown() -> None:
            await self._broker.shutdown()

        future = asyncio.run_coroutine_threadsafe(shutdown(), loop)
        try:
            future.result(timeout=5)
        except Exception:
            log.warning("amqtt did not shut down cleanly", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class EmbeddedBroker:
    """The best broker this machine can give us, on a free loopback port."""

    def __init__(self, data_dir: Path, *, port: int | None = None) -> None:
        self._impl: MosquittoInstance | AmqttBroker
        if MosquittoInstance.available():
            self._impl = MosquittoInstance(data_dir, port=port)
            self.protocol = "5"
        else:
            self._impl = AmqttBroker(port=port)
            self.protocol = "3.1.1"
        self.kind = "mosquitto" if isinstance(self._impl, MosquittoInstance) else "amqtt"

    @property
    def url(self) -> str:
        return self._impl.url

    @property
    def port(self) -> int:
        return self._impl.port

    def start(self) -> Self:
        self._impl.start()
        return self

    def stop(self) -> None:
        self._impl.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a private MQTT broker until stopped.")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--amqtt", action="store_true", help="use amqtt even if mosquitto exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with tempfile.TemporaryDirectory(prefix="consultease-broker-") as tmp:
        broker: AmqttBroker | EmbeddedBroker = (
            AmqttBroker(port=args.port) if args.amqtt else EmbeddedBroker(Path(tmp), port=args.port)
        )
        with broker:
            print(broker.url, flush=True)
            stop.wait()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
