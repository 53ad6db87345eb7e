"""``consultease bench``: the load test of SPEC section 8, with its baselines."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from consultease.commands import Subparsers, positive_int
from consultease.config import Settings
from consultease.extras import require_extra
from consultease.ingest.state_publisher import StateMode

if TYPE_CHECKING:
    from consultease.tools.bench.ingest import BenchFigures
    from consultease.tools.bench.stats import Spread

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
    bench.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    bench.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    require_extra("demo", what="`consultease bench`")
    from consultease.tools.bench.ingest import BenchOptions, run_bench  # noqa: PLC0415
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


def _fmt(spread: Spread, pattern: str = "{:,.0f}") -> str:
    if spread.rounds == 0 or math.isnan(spread.median):
        return "n/a"
    if spread.rounds == 1 or spread.low == spread.high:
        return pattern.format(spread.median)
    low, high = pattern.format(spread.low), pattern.format(spread.high)
    return f"{pattern.format(spread.median)}  [{low}–{high}]"


def render(figures: BenchFigures) -> Table:
    o, s = figures.options, figures.summary
    title = (
        f"consultease bench: {o.desks:,} desks, {o.traffic.value} traffic, {len(figures.rounds)} "
        f"round(s) of {o.duration:g} s a phase; median [lowest–highest round]"
    )
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    instructions_note = "" if figures.perf.supported else f"not supported ({figures.perf.detail})"

    def instr(name: str) -> str:
        return instructions_note or _fmt(s[name])

    head = o.state_modes[0].value
    rows = [
        (f"applied updates/s (ingest, flat out, state: {head})", _fmt(s["applied_per_second"])),
        ("baseline (a) broker pass-through, QoS 1 msgs/s", _fmt(s["broker_per_second"])),
        ("baseline (b) one UPDATE + NOTIFY per transaction /s", _fmt(s["database_per_second"])),
        ("ratio to baseline (a), per round", _fmt(s["ratio_to_broker"], "{:.0%}")),
        ("ratio to baseline (b), per round", _fmt(s["ratio_to_database"], "{:.2f}x")),
        ("  mean batch size", _fmt(s["mean_batch_size"], "{:,.1f}")),
        ("  mean time to apply and commit a batch", _fmt(s["mean_commit_ms"], "{:,.1f} ms")),
        ("  notifications per applied update (1.00 = no coalescing)",
         _fmt(s["notifications_per_applied"], "{:.2f}")),
        ("  publish→notification p50, every message (flat out)",
         _fmt(s["flat_out_p50_ms"], "{:,.1f} ms")),
        ("  publish→notification p99, every message (flat out)",
         _fmt(s["flat_out_p99_ms"], "{:,.1f} ms")),
        (f"publish→notification p50 at {o.offered_rate:,.0f}/s offered",
         _fmt(s["paced_p50_ms"], "{:,.1f} ms")),
        (f"publish→notification p99 at {o.offered_rate:,.0f}/s offered",
         _fmt(s["paced_p99_ms"], "{:,.1f} ms")),
        ("  sent per second in that window", _fmt(s["paced_achieved_per_second"])),
        ("  messages lost or never applied (all phases)", _fmt(s["undelivered"])),
        ("  messages applied but coalesced into no visible change", _fmt(s["unchanged"])),
        ("CPU per applied update, ingest process",
         _fmt(s["ingest_cpu_us_per_update"], "{:,.0f} µs")),
        ("CPU per applied update, its state publisher child",
         _fmt(s["state_cpu_us_per_update"], "{:,.0f} µs")),
        ("  cores the two used together", _fmt(s["ingest_cores"], "{:.2f}")),
        ("CPU per message, broker (service phase)",
         _fmt(s["broker_cpu_us_per_message"], "{:,.0f} µs")),
        ("CPU per message, broker (pass-through)",
         _fmt(s["passthrough_broker_cpu_us_per_message"], "{:,.0f} µs")),
        ("CPU per message, bare paho subscriber",
         _fmt(s["subscriber_cpu_us_per_message"], "{:,.0f} µs")),
        ("CPU per message, desk traffic driver",
         _fmt(s["driver_cpu_us_per_message"], "{:,.0f} µs")),
        ("instructions per applied update, ingest", instr("ingest_instructions_per_update")),
        ("instructions per message, broker", instr("broker_instructions_per_message")),
        ("instructions per message, bare subscriber",
         instr("subscriber_instructions_per_message")),
        ("ingest service peak RSS (with children)", _fmt(s["peak_rss_mb"], "{:,.0f} MiB")),
    ]  # fmt: skip
    if len(o.state_modes) > 1:
        for mode in o.state_modes:
            rows.append(
                (f"state publisher {mode.value}: applied/s",
                 _fmt(s[f"state_{mode.value}_applied_per_second"]))
            )  # fmt: skip
            rows.append(
                (f"state publisher {mode.value}: CPU per applied update (all processes)",
                 _fmt(s[f"state_{mode.value}_cpu_us_per_update"], "{:,.0f} µs"))
            )  # fmt: skip
    before, after = figures.load_before, figures.load_after
    rows += [
        ("broker", figures.broker),
        ("load average (1, 5, 15 min) before / after",
         f"{before[0]:.2f} {before[1]:.2f} {before[2]:.2f} / "
         f"{after[0]:.2f} {after[1]:.2f} {after[2]:.2f}"),
    ]  # fmt: skip
    for name, value in rows:
        table.add_row(name, value)
    return table


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def _state_modes(text: str) -> tuple[StateMode, ...]:
    try:
        modes = tuple(StateMode(part.strip()) for part in text.split(",") if part.strip())
    except ValueError:
        known = ", ".join(m.value for m in StateMode)
        raise argparse.ArgumentTypeError(f"state modes are {known}: {text!r}") from None
    if not modes:
        raise argparse.ArgumentTypeError("give at least one state mode")
    return modes
