"""``consultease state-publisher``: retained ``…/state`` for every faculty, until a signal.

``consultease ingest`` starts one of these itself (``--state process``, the
default). Run it on its own when the ingest services run with ``--state off``,
for instance one per site in front of several ingest services on a shared
subscription (README "Scaling out").
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import threading
from types import FrameType

from consultease.commands import Subparsers
from consultease.config import Settings
from consultease.ingest.state_process import run_child
from consultease.ingest.state_publisher import StateService

log = logging.getLogger(__name__)


def register(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "state-publisher",
        help="publish every faculty's state to the desks (retained …/state), until stopped",
        description="Follow the faculty table (LISTEN) and publish each row's state as a "
        "retained QoS 1 message on consultease/faculty/ID/state, republishing everything "
        "after every broker reconnect. `consultease ingest` runs one itself unless "
        "--state off. Stops on SIGINT or SIGTERM.",
    )
    parser.add_argument(
        "--client-id",
        help="MQTT client id (default consultease-state-HOSTNAME)",
    )
    parser.add_argument(
        "--mqtt-ca-file", help="CA bundle for an mqtts:// broker (default: system CAs)"
    )
    # Run by `consultease ingest`: stop when stdin closes, report counts on stdout.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(func=run_state_publisher)


def run_state_publisher(args: argparse.Namespace, settings: Settings) -> int:
    database_url = settings.require_database_url()
    endpoint = settings.mqtt_endpoint()
    client_id = args.client_id or f"consultease-state-{socket.gethostname()}"
    if args.child:
        return run_child(database_url, endpoint, client_id=client_id, ca_file=args.mqtt_ca_file)
    service = StateService(database_url, endpoint, client_id=client_id, ca_file=args.mqtt_ca_file)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        service.start()
        while not stop.wait(0.5):
            pass
    finally:
        service.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
