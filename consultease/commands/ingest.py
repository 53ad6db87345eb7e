"""``consultease ingest``: the MQTT ingest service, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import math
import signal
import threading
from types import FrameType

from consultease.commands import Subparsers, positive_int
from consultease.config import Settings
from consultease.ingest.service import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_QUEUE_SIZE,
    IngestService,
)
from consultease.ingest.state_publisher import StateMode
from consultease.ingest.transport import MqttProtocol

log = logging.getLogger(__name__)


def register(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="run the MQTT ingest service",
        description="Apply desk messages to the database: at-least-once, ordered, batched. "
        "Stops gracefully on SIGINT or SIGTERM.",
    )
    parser.add_argument(
        "--mqtt-protocol",
        choices=[p.value for p in MqttProtocol],
        default=MqttProtocol.V5.value,
        help="MQTT protocol version (3.1.1 for brokers without MQTT 5, e.g. amqtt; default 5)",
    )
    parser.add_argument(
        "--client-id",
        help="MQTT client id; keep it stable so the broker keeps the session "
        "(default: $CONSULTEASE_MQTT_CLIENT_ID or consultease-ingest-HOSTNAME)",
    )
    parser.add_argument(
        "--shared",
        metavar="GROUP",
        help="subscribe through $share/GROUP/… so several services split the load (MQTT 5)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help=f"most messages per transaction (default {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--queue-size",
        type=positive_int,
        default=DEFAULT_QUEUE_SIZE,
        help="messages held in memory before reading from the broker pauses "
        f"(default {DEFAULT_QUEUE_SIZE})",
    )
    parser.add_argument(
        "--metrics-port",
        type=_port,
        help="serve Prometheus metrics on this port (0: any free port)",
    )
    parser.add_argument(
        "--offline-after",
        type=_positive_float,
        help="seconds of silence before a desk is offline "
        "(default $CONSULTEASE_OFFLINE_AFTER or 90)",
    )
    parser.add_argument(
        "--max-clock-skew",
        type=_positive_float,
        help="seconds a desk clock may run ahead (default $CONSULTEASE_MAX_CLOCK_SKEW or 300)",
    )
    parser.add_argument(
        "--request-timeout",
        type=_positive_float,
        help="seconds a consultation request may stay unanswered before it expires "
        "(default $CONSULTEASE_REQUEST_TIMEOUT or 600)",
    )
    parser.add_argument(
        "--no-dispatch",
        dest="dispatch",
        action="store_false",
        help="do not send consultation requests and cancellations to the desks "
        "(another ingest service does; running it in several is safe too)",
    )
    parser.add_argument(
        "--mqtt-ca-file", help="CA bundle for an mqtts:// broker (default: system CAs)"
    )
    add_notify_guard_options(parser)
    parser.add_argument(
        "--state",
        dest="state_mode",
        choices=[m.value for m in StateMode],
        default=StateMode.PROCESS.value,
        help="where retained faculty state for the desks is published from: a child "
        "process of its own (default), threads of this one, or off (another "
        "`consultease state-publisher` does it); each has its own broker connection",
    )
    parser.add_argument(
        "--no-state",
        dest="state_mode",
        action="store_const",
        const=StateMode.OFF.value,
        help="the same as --state off",
    )
    parser.set_defaults(func=run_ingest)


def run_ingest(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings.with_overrides(
        offline_after=args.offline_after,
        request_timeout=args.request_timeout,
        max_clock_skew=args.max_clock_skew,
        mqtt_client_id=args.client_id,
        notify_queue_threshold=args.notify_queue_threshold,
        stalled_after=args.stalled_after,
    )
    service = IngestService(
        settings,
        protocol=MqttProtocol(args.mqtt_protocol),
        shared_group=args.shared,
        batch_size=args.batch_size,
        queue_size=args.queue_size,
        state_mode=StateMode(args.state_mode),
        metrics_port=args.metrics_port,
        ca_file=args.mqtt_ca_file,
        dispatch_consultations=args.dispatch,
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        service.run_until(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def add_notify_guard_options(parser: argparse.ArgumentParser) -> None:
    """``--notify-queue-threshold`` and ``--stalled-after`` (ingest and health)."""
    parser.add_argument(
        "--notify-queue-threshold",
        type=_fraction,
        metavar="FRACTION",
        help="pg_notification_queue_usage() above which the NOTIFY queue is unhealthy and "
        "stalled sessions are dropped (default $CONSULTEASE_NOTIFY_QUEUE_THRESHOLD or 0.001)",
    )
    parser.add_argument(
        "--stalled-after",
        type=_at_least_one_second,
        metavar="SECONDS",
        help="how long a session must have been idle in a transaction, or blocked writing "
        "to its client, to count as stalling the queue "
        "(default $CONSULTEASE_LISTENER_STALLED_AFTER or 60)",
    )


def _fraction(text: str) -> float:
    value = _positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be a fraction of at most 1: {text!r}")
    return value


def _at_least_one_second(text: str) -> float:
    value = _positive_float(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 second: {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return value
