"""``consultease bench``: the load test of SPEC section 8, with its baselines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from consultease.commands import Subparsers
from consultease.config import Settings
from consultease.extras import require_extra


def register(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    bench = subparsers.add_parser(
        "bench",
        help="load test: applied updates/s and latency, beside baselines from the same run",
        description="Uses CONSULTEASE_DATABASE_URL's server (in a scratch database it creates "
        "and drops) and CONSULTEASE_MQTT_URL's broker, or private ones when unset.",
    )
    bench.add_argument("--desks", type=int, default=200, help="simulated desks (default 200)")
    bench.add_argument(
        "--duration", type=float, default=10.0, help="seconds measured per phase (default 10)"
    )
    bench.add_argument(
        "--offered-rate",
        type=float,
        default=500.0,
        help="updates/s offered in the latency phase (default 500)",
    )
    bench.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    bench.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    require_extra("demo", what="`consultease bench`")
    from consultease.tools.bench.ingest import BenchOptions, run_bench  # noqa: PLC0415

    options = BenchOptions(desks=args.desks, duration=args.duration, offered_rate=args.offered_rate)
    console = Console()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("benchmark", total=None)
        figures = run_bench(settings, options, lambda text: progress.update(task, description=text))

    table = Table(title=f"consultease bench: {figures.desks} desks, {figures.duration:g} s a phase")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("applied updates/s (ingest, desks flat out)", f"{figures.applied_per_second:,.0f}"),
        ("  messages received by ingest /s", f"{figures.published_per_second:,.0f}"),
        ("  mean batch size", f"{figures.mean_batch_size:,.1f}"),
        ("  publish→notification p50 / p99 (flat out)",
         f"{figures.flood_latency_p50_ms:,.1f} / {figures.flood_latency_p99_ms:,.1f} ms"),
        (f"publish→notification p50 / p99 at {figures.offered_rate:,.0f}/s offered "
         f"({figures.offered_achieved_per_second:,.0f}/s sent, "
         f"{figures.offered_latency_samples} samples)",
         f"{figures.offered_latency_p50_ms:,.1f} / {figures.offered_latency_p99_ms:,.1f} ms"),
        ("baseline (a) broker pass-through, QoS 1 /s",
         f"{figures.baseline_broker_per_second:,.0f}"),
        ("baseline (b) one UPDATE + NOTIFY per transaction /s",
         f"{figures.baseline_database_per_second:,.0f}"),
        ("ratio to baseline (a)", f"{figures.ratio_to_broker:.0%}"),
        ("ratio to baseline (b)", f"{figures.ratio_to_database:.1f}x"),
        ("ingest service peak RSS", f"{figures.ingest_peak_rss_mb:,.0f} MiB"),
    ]  # fmt: skip
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps(figures.as_json(), indent=2) + "\n")
    return 0
