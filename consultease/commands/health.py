"""``consultease health``: database and broker reachability, and how the system is doing."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from consultease.commands import Subparsers
from consultease.config import Settings
from consultease.health import DEFAULT_TIMEOUT, Check, HealthReport, check_health


def register(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "health",
        help="check the database and the broker (exit 0 when both are reachable)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for the broker (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--mqtt-ca-file", help="CA bundle for an mqtts:// broker (default: system CAs)"
    )
    parser.set_defaults(func=run_health)


def run_health(args: argparse.Namespace, settings: Settings) -> int:
    report = check_health(settings, timeout=args.timeout, ca_file=args.mqtt_ca_file)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        Console().print(render(report))
    return 0 if report.healthy else 1


def _state(check: Check) -> Text:
    return Text("ok", style="bold green") if check.ok else Text("FAILED", style="bold red")


def render(report: HealthReport) -> Table:
    table = Table(title="ConsultEase health", show_lines=False)
    table.add_column("check")
    table.add_column("state")
    table.add_column("detail")
    table.add_row("database", _state(report.database), report.database.detail)
    table.add_row("broker", _state(report.broker), report.broker.detail)
    if report.notification_queue_usage is not None:
        usage = report.notification_queue_usage
        table.add_row(
            "notification queue",
            Text("ok", style="green") if usage < 0.5 else Text("HIGH", style="bold yellow"),
            f"{usage:.1%} of pg_notify's queue in use",
        )
    if report.desks_online is not None and report.desks_offline is not None:
        table.add_row(
            "desks",
            Text(f"{report.desks_online} online", style="green"),
            f"{report.desks_offline} offline (active faculty)",
        )
    rejections = report.rejections_last_hour
    table.add_row(
        "rejections, last hour",
        Text(str(sum(rejections.values())), style="yellow" if rejections else "green"),
        ", ".join(f"{reason}: {count}" for reason, count in rejections.items()) or "none",
    )
    return table
