"""``consultease bench``: the load test of SPEC section 8, with its baselines."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from consultease.commands import Subparsers, positive_int
from consultease.config import Settings
from consultease.errors import ConsultEaseError
from consultease.extras import require_extra
from consultease.ingest.state_publisher import StateMode

TRAFFIC_SHAPES = ("realistic", "flood")


def register(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    bench = subparsers.add_parser(
        "bench",
        help="load test: applied updates/s, latency and CPU per update, beside baselines "
        "measured in the same rounds",
        description="Uses CONSULTEASE_DATABASE_URL's server (in a scratch database it creates "
        "and drops) and CONSULTEASE_MQTT_URL's broker, or private ones when unset (then the "
        "broker's CPU figure is the benchmark's alone). Each round measures baseline (a) "
        "broker pass-through, baseline (b) one UPDATE + NOTIFY per transaction, and the "
        "service, back to back in a rotating order; figures are the median and the range.",
    )
    bench.add_argument(
        "--desks", type=positive_int, default=2000, help="simulated desks (default 2000)"
    )
    bench.add_argument(
        "--traffic",
        choices=TRAFFIC_SHAPES,
        default="realistic",
        help="realistic: one message per desk per turn, interleaved (default; with more "
        "desks than a batch holds, 500, nothing coalesces); flood: bursts of --burst "
        "messages per desk, which the service coalesces",
    )
    bench.add_argument(
        "--burst", type=positive_int, default=32, help="messages per desk in a row (flood)"
    )
    bench.add_argument("--rounds", type=positive_int, default=3, help="rounds (default 3)")
    bench.add_argument(
        "--duration",
        type=_positive_float,
        default=10.0,
        help="seconds measured per phase (default 10)",
    )
    bench.add_argument(
        "--warmup", type=_positive_float, default=2.0, help="seconds before each window (2)"
    )
    bench.add_argument(
        "--offered-rate",
        type=_positive_float,
        default=500.0,
        help="updates/s offered in the latency phase (default 500)",
    )
    bench.add_argument(
        "--connections",
        type=positive_int,
        default=4,
        help="client connections the desks' traffic is spread over (default 4)",
    )
    bench.add_argument(
        "--state-modes",
        type=_state_modes,
        default=(StateMode.PROCESS,),
        metavar="MODE[,MODE…]",
        help="measure the service with each state publisher mode (process, thread, off) "
        "in every round; the first is the headline (default process)",
    )
    bench.add_argument(
        "--variant",
        action="append",
        dest="variants",
        type=_variant,
        default=[],
        metavar="LABEL=[NAME=VALUE …] [ARGS …]",
        help="instead of --state-modes: measure the service once per variant in every round, "
        "run with these `consultease ingest` arguments and environment (A/B within the same "
        "rounds, e.g. --variant 'v5=--mqtt-protocol 5' --variant 'main=PYTHONPATH=/src/main'); "
        "the first is the headline; repeat for each",
    )
    bench.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    bench.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    require_extra("demo", what="`consultease bench`")
    from consultease.tools.bench.ingest import BenchOptions, run_bench  # noqa: PLC0415
    from consultease.tools.bench.report import render  # noqa: PLC0415
    from consultease.tools.bench.traffic import Shape  # noqa: PLC0415

    options = BenchOptions(
        desks=args.desks,
        traffic=Shape(args.traffic),
        burst=args.burst,
        rounds=args.rounds,
        duration=args.duration,
        warmup=args.warmup,
        offered_rate=args.offered_rate,
        connections=args.connections,
        state_modes=args.state_modes,
        variants=tuple(args.variants),
    )
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("benchmark", total=None)
        figures = run_bench(settings, options, lambda text: progress.update(task, description=text))
    Console().print(render(figures))
    if args.json:
        args.json.write_text(json.dumps(figures.as_json(), indent=2) + "\n")
    return 0


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def _variant(text: str) -> object:  # a bench Variant (the tools load lazily)
    from consultease.tools.bench.ingest import Variant  # noqa: PLC0415

    try:
        return Variant.parse(text)
    except (ConsultEaseError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _state_modes(text: str) -> tuple[StateMode, ...]:
    try:
        modes = tuple(StateMode(part.strip()) for part in text.split(",") if part.strip())
    except ValueError:
        known = ", ".join(m.value for m in StateMode)
        raise argparse.ArgumentTypeError(f"state modes are {known}: {text!r}") from None
    if not modes:
        raise argparse.ArgumentTypeError("give at least one state mode")
    return modes
