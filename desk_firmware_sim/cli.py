"""``python -m desk_firmware_sim``: run simulated desk units against a broker."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType

from rich.console import Console

from desk_firmware_sim.answers import AnswerPolicy
from desk_firmware_sim.config import (
    DEFAULT_MQTT_URL,
    MqttVersion,
    SimConfig,
    parse_id_list,
)
from desk_firmware_sim.errors import ConfigError, SimError
from desk_firmware_sim.esp32_runner import Esp32Fleet, SentPublish
from desk_firmware_sim.faults import FaultConfig
from desk_firmware_sim.records import JsonlRecorder
from desk_firmware_sim.runner import Fleet
from desk_firmware_sim.unit import Mode

PROG = "python -m desk_firmware_sim"
CURRENT = "current"
ESP32_LEGACY = "esp32-legacy"
FIRMWARE_PROFILES = (CURRENT, ESP32_LEGACY)
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Simulated ConsultEase desk units (ESP32 firmware) publishing faculty status "
            "over MQTT, with faults on request."
        ),
    )
    p.add_argument(
        "--mqtt-url",
        help=f"mqtt://[user:pass@]host:port or mqtts://… "
        f"(default: $CONSULTEASE_MQTT_URL, else {DEFAULT_MQTT_URL})",
    )
    who = p.add_mutually_exclusive_group()
    who.add_argument("--units", type=int, metavar="N", help="simulate faculty ids 1..N (default 1)")
    who.add_argument("--faculty-ids", metavar="LIST", help="faculty ids, e.g. 1,2,5-9")
    p.add_argument(
        "--rate",
        type=float,
        default=1.0,
        help="status changes per unit per minute (default 1); 0 = as fast as possible",
    )
    p.add_argument("--flood", action="store_true", help="publish as fast as possible (= --rate 0)")
    p.add_argument(
        "--load",
        action="store_true",
        help="load mode: every step is a status change, evenly paced at --rate",
    )
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    p.add_argument("--seed", type=int, help="random seed; the same seed replays the same run")
    p.add_argument(
        "--firmware",
        choices=FIRMWARE_PROFILES,
        default=CURRENT,
        help="current: the current desk format (QoS 1, versions, a will); esp32-legacy: the "
        "existing ESP32 firmware flag for flag (QoS 0, retained status, no will, clean "
        "sessions, offline queue; README 'Existing desk units')",
    )
    p.add_argument(
        "--legacy",
        dest="firmware",
        action="store_const",
        const=ESP32_LEGACY,
        help="the same as --firmware esp32-legacy",
    )
    answers = p.add_argument_group(
        "consultation requests (shown while the lecturer is present, answered on …/responses)"
    )
    answers.add_argument(
        "--answer-acknowledge",
        type=float,
        default=0.6,
        metavar="P",
        help="chance a request on screen is acknowledged (default 0.6)",
    )
    answers.add_argument(
        "--answer-busy",
        type=float,
        default=0.25,
        metavar="P",
        help="chance it is answered BUSY (default 0.25); the rest go unanswered and expire",
    )
    answers.add_argument(
        "--answer-delay",
        default="5-45",
        metavar="MIN-MAX",
        help="seconds before the lecturer presses a button (default 5-45)",
    )
    p.add_argument(
        "--heartbeat-interval",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="heartbeat period (default 30; 0 = none)",
    )
    p.add_argument(
        "--grace-period",
        type=float,
        metavar="SECONDS",
        help="keychain grace period before away (default: a quarter of the mean dwell, ≤30 s)",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        help="where units keep their boot counter (default: per-user state directory)",
    )
    faults = p.add_argument_group("faults (rates are chances per status message)")
    faults.add_argument(
        "--duplicate-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="send the same message twice in a row",
    )
    faults.add_argument(
        "--reorder-window",
        type=int,
        default=0,
        metavar="N",
        help="hold some messages back until up to N later ones went out",
    )
    faults.add_argument(
        "--reorder-rate",
        type=float,
        default=0.25,
        metavar="P",
        help="share of messages held back when --reorder-window > 0 (default 0.25)",
    )
    faults.add_argument(
        "--reboot-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="reboot after a status message (boot counter + 1, sequence restarts)",
    )
    faults.add_argument(
        "--drop-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="close the socket without DISCONNECT after a status message (the will fires)",
    )
    faults.add_argument(
        "--clock-skew",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="device clock offset, e.g. --clock-skew=-60",
    )
    faults.add_argument(
        "--reconnect-delay",
        default="1-3",
        metavar="MIN-MAX",
        help="seconds before reconnecting after a drop or reboot (default 1-3)",
    )
    mqtt = p.add_argument_group("MQTT")
    mqtt.add_argument(
        "--mqtt-version", choices=[v.value for v in MqttVersion], default=MqttVersion.V311.value
    )
    mqtt.add_argument(
        "--desk-passwords",
        type=Path,
        metavar="FILE",
        help='JSON object {"<faculty id>": "<password>"}: unit N logs in as desk-N',
    )
    mqtt.add_argument("--ca-file", type=Path, help="CA certificates for mqtts://")
    mqtt.add_argument(
        "--connect-timeout",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="give up if no unit could connect within this time (default 15)",
    )
    p.add_argument(
        "--mismatch-after",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="report when the system shows another status for this long (default 5)",
    )
    out = p.add_argument_group("output")
    out.add_argument("--json", type=Path, metavar="PATH", help="write a JSONL log of every message")
    out.add_argument("--quiet", action="store_true", help="no live view, no summary, errors only")
    out.add_argument("--no-live", action="store_true", help="no live view")
    out.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    return p


def _reconnect_delay(text: str, option: str = "--reconnect-delay") -> tuple[float, float]:
    low, dash, high = text.partition("-")
    try:
        lo = float(low)
        hi = float(high) if dash else lo
    except ValueError as exc:
        raise ConfigError(f"{option} must be MIN-MAX seconds, got {text!r}") from exc
    return lo, hi


def answer_policy(args: argparse.Namespace) -> AnswerPolicy:
    low, high = _reconnect_delay(args.answer_delay, "--answer-delay")
    try:
        return AnswerPolicy(
            acknowledge=args.answer_acknowledge,
            busy=args.answer_busy,
            delay_min=low,
            delay_max=high,
        )
    except SimError as exc:
        raise ConfigError(str(exc)) from None


def _load_passwords(path: Path) -> dict[int, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f'{path} must hold a JSON object {{"<faculty id>": "<password>"}}')
    passwords: dict[int, str] = {}
    for key, value in data.items():
        raw = key.removeprefix("desk-")
        if not raw.isdigit() or not isinstance(value, str):
            raise ConfigError(f"{path}: bad entry {key!r}: keys are faculty ids, values passwords")
        passwords[int(raw)] = value
    return passwords


def config_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> SimConfig:
    """The one settings object, from flags over the environment."""
    if args.faculty_ids:
        ids = parse_id_list(args.faculty_ids)
    else:
        units = 1 if args.units is None else args.units
        if units < 1:
            raise ConfigError(f"--units must be at least 1, got {units}")
        ids = tuple(range(1, units + 1))
    flood = args.flood or args.rate == 0
    if args.rate < 0:
        raise ConfigError(f"--rate must be >= 0, got {args.rate}")
    delay_min, delay_max = _reconnect_delay(args.reconnect_delay)
    return SimConfig(
        faculty_ids=ids,
        mqtt_url=args.mqtt_url or env.get("CONSULTEASE_MQTT_URL") or DEFAULT_MQTT_URL,
        mode=Mode.LOAD if (flood or args.load) else Mode.REALISTIC,
        rate=0.0 if flood else args.rate,
        duration=args.duration,
        seed=args.seed,
        legacy=args.firmware == ESP32_LEGACY,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
        mismatch_after=args.mismatch_after,
        state_dir=args.state_dir,
        faults=FaultConfig(
            duplicate_rate=args.duplicate_rate,
            reorder_window=args.reorder_window,
            reorder_rate=args.reorder_rate,
            reboot_rate=args.reboot_rate,
            drop_rate=args.drop_rate,
            clock_skew=args.clock_skew,
            reconnect_delay_min=delay_min,
            reconnect_delay_max=delay_max,
        ),
        answers=answer_policy(args),
        desk_passwords=_load_passwords(args.desk_passwords) if args.desk_passwords else {},
        mqtt_version=MqttVersion(args.mqtt_version),
        tls_ca_file=args.ca_file,
    )


def _configure_logging(level: int, handler: logging.Handler) -> None:
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop``; a second SIGINT interrupts for real."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _error(message: str) -> None:
    print(f"desk_firmware_sim: error: {message}", file=sys.stderr)


def _wait_first_connection(fleet: Fleet, stop: threading.Event, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while not stop.is_set():
        if fleet.wait_connected(0.2, count=1):
            return True
        if time.monotonic() >= end or not fleet.running:
            return False
    return True


def _wait(fleet: Fleet, stop: threading.Event, duration: float | None, started: float) -> None:
    end = started + duration if duration is not None else None
    while fleet.running:
        timeout = 0.25 if end is None else min(0.25, end - time.monotonic())
        if timeout <= 0 or stop.wait(timeout):
            return


def _logging_handler(console: Console, *, live: bool) -> logging.Handler:
    if live:
        from rich.logging import RichHandler  # noqa: PLC0415

        return RichHandler(console=console, show_path=False)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


def _run(
    fleet: Fleet,
    config: SimConfig,
    stop: threading.Event,
    *,
    console: Console | None,
    connect_timeout: float,
) -> int:
    """Start the fleet and wait; the caller stops it."""
    fleet.start()
    started = time.monotonic()
    if not _wait_first_connection(fleet, stop, connect_timeout):
        reason = fleet.last_error or f"no unit could connect to {fleet.broker.display()}"
        _error(f"{reason} (gave up after {connect_timeout:.0f}s)")
        return EXIT_FAILURE
    if console is None:
        _wait(fleet, stop, config.duration, started)
        return EXIT_OK
    from desk_firmware_sim.view import LiveView  # noqa: PLC0415

    with LiveView(fleet.snapshot, console=console):
        _wait(fleet, stop, config.duration, started)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args, os.environ)
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_USAGE

    if config.legacy:
        return run_esp32(config, config.answers, args)

    console = Console()
    live = not (args.quiet or args.no_live) and console.is_terminal
    verbosity = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    _configure_logging(
        logging.ERROR if args.quiet else verbosity, _logging_handler(console, live=live)
    )

    recorder: JsonlRecorder | None = None
    fleet: Fleet | None = None
    stop = threading.Event()
    code = EXIT_OK
    with _stop_on_signals(stop):
        try:
            recorder = JsonlRecorder(args.json) if args.json else None
            fleet = Fleet(config, on_record=recorder)
            code = _run(
                fleet,
                config,
                stop,
                console=console if live else None,
                connect_timeout=args.connect_timeout,
            )
        except SimError as exc:
            _error(str(exc))
            code = EXIT_FAILURE
        except KeyboardInterrupt:
            code = 130
        finally:
            code = _finish(fleet, recorder, code)
    if fleet is not None and code == EXIT_OK and not args.quiet:
        from desk_firmware_sim.view import summary  # noqa: PLC0415

        console.print(summary(fleet.snapshot()))
    return code


def run_esp32(config: SimConfig, answers: AnswerPolicy | None, args: argparse.Namespace) -> int:
    """The ``esp32-legacy`` profile: units with the existing firmware until stopped."""
    verbosity = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    _configure_logging(
        logging.ERROR if args.quiet else verbosity, _logging_handler(Console(), live=False)
    )
    stop = threading.Event()
    log_file = None
    lock = threading.Lock()
    counts: dict[str, int] = {}

    def on_sent(record: SentPublish) -> None:
        with lock:
            counts[record.publish.kind] = counts.get(record.publish.kind, 0) + 1
            if log_file is not None:
                log_file.write(json.dumps(esp32_record(record)) + "\n")

    with _stop_on_signals(stop):
        try:
            if args.json:
                log_file = args.json.open("w", encoding="utf-8")
            fleet = Esp32Fleet(config, answers=answers, on_sent=on_sent)
        except OSError as exc:
            _error(f"cannot write {args.json}: {exc.strerror or exc}")
            return EXIT_FAILURE
        except SimError as exc:
            _error(str(exc))
            return EXIT_USAGE
        try:
            fleet.start()
            if not fleet.wait_connected(args.connect_timeout):
                _error(
                    f"not every unit could connect to {fleet.broker.display()} "
                    f"within {args.connect_timeout:.0f}s"
                )
                return EXIT_FAILURE
            started = time.monotonic()
            while not stop.wait(0.25):
                if config.duration is not None and time.monotonic() - started >= config.duration:
                    break
        except KeyboardInterrupt:
            return 130
        finally:
            fleet.stop()
            with lock:
                if log_file is not None:
                    log_file.close()
                    log_file = None
    if not args.quiet:
        sent = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())) or "nothing"
        print(f"{len(config.faculty_ids)} esp32-legacy units sent (QoS 0): {sent}")
    return EXIT_OK


def esp32_record(record: SentPublish) -> dict[str, object]:
    """One ``--json`` line for the esp32-legacy profile: exactly what went on the wire."""
    p = record.publish
    return {
        "type": "message",
        "t": record.at,
        "client_id": record.client_id,
        "topic": p.topic,
        "payload": p.payload.decode("utf-8"),
        "kind": p.kind,
        "qos": p.qos,
        "retain": p.retain,
        "queued": p.queued,
    }


def _finish(fleet: Fleet | None, recorder: JsonlRecorder | None, code: int) -> int:
    try:
        if fleet is not None:
            fleet.stop()
    except SimError as exc:
        _error(str(exc))
        code = code or EXIT_FAILURE
    finally:
        if recorder is not None:
            recorder.close()
    return code
