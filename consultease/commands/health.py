"""``consultease health``: database and broker reachability, and how the system is doing."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from consultease.commands import Subparsers
from consultease.commands.ingest import add_notify_guard_options
from consultease.config import Settings
from consultease.health import DEFAULT_TIMEOUT, Check, HealthReport, check_health


def register(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "health",
        help="check the database, the broker and the NOTIFY queue (exit 0 when all is well)",
        description="Exit 1 when the database or the broker cannot be reached, or the NOTIFY "
        "queue is fuller than its threshold. Lists the sessions stalling the queue (idle in "
        "a transaction, or blocked writing to their client, for --stalled-after seconds); "
        "--fix drops them (a listener of ours reconnects and resyncs by itself).",
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
    add_notify_guard_options(parser)
    parser.add_argument(
        "--fix", action="store_true", help="drop the sessions that stall the NOTIFY queue"
    )
    parser.set_defaults(func=run_health)


def run_health(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings.with_overrides(
        notify_queue_threshold=args.notify_queue_threshold, stalled_after=args.stalled_after
    )
    report = check_health(settings, timeout=args.timeout, ca_file=args.mqtt_ca_file, fix=args.fix)
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
            Text("HIGH", style="bold red") if report.queue_over_threshold else Text("ok", "green"),
            f"{usage:.4%} of pg_notify's queue in use "
            f"(threshold {report.notification_queue_threshold:.4%})",
        )
    stalled = report.stalled_sessions
    if stalled is not None or report.stalled_detail:
        table.add_row(
            "stalled sessions",
            Text(str(len(stalled)), style="yellow" if stalled else "green")
            if stalled is not None
            else Text("?", style="yellow"),
            "; ".join(
                [s.describe() for s in stalled or ()]
                + ([report.stalled_detail] if report.stalled_detail else [])
            )
            or "none",
        )
    if report.dropped:
        table.add_row(
            "dropped",
            Text(str(len(report.dropped)), style="bold yellow"),
            "; ".join(f"pid {s.pid}" for s in report.dropped)
            + " (the queue drains as the next notifications are sent)",
        )
    if report.desks_online is not None and report.desks_offline is not None:
        table.add_row(
            "desks",
            Text(f"{report.desks_online} online", style="green"),
            f"{report.desks_offline} offline (active faculty)",
        )
    if report.open_requests is not None:
        stuck = report.stuck_requests
        table.add_row(
            "consultation requests",
            Text(str(len(stuck)) + " stuck", style="yellow" if stuck else "green"),
            f"{report.open_requests.get('pending', 0)} pending, "
            f"{report.open_requests.get('accepted', 0)} accepted"
            + ("; " + "; ".join(r.describe() for r in stuck) if stuck else ""),
        )
    rejections = report.rejections_last_hour
    table.add_row(
        "rejections, last hour",
        Text(str(sum(rejections.values())), style="yellow" if rejections else "green"),
        ", ".join(f"{reason}: {count}" for reason, count in rejections.items()) or "none",
    )
    return table
