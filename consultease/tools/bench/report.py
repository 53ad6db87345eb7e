"""The table ``consultease bench`` prints: every figure as the median over the rounds
and the range [lowest–highest round], beside the load the machine was under."""

from __future__ import annotations

import math

from rich.table import Table

from consultease.tools.bench.ingest import BenchFigures
from consultease.tools.bench.stats import Spread


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
        ("  messages lost or never applied", _fmt(s["undelivered"])),
        ("  messages applied but coalesced into no visible change", _fmt(s["unchanged"])),
        ("consultation request→desk (CID text received) p50",
         _fmt(s["consultation_delivery_p50_ms"], "{:,.1f} ms")),
        ("consultation request→desk p99", _fmt(s["consultation_delivery_p99_ms"], "{:,.1f} ms")),
        ("consultation desk answer (QoS 0)→kiosk notification p50",
         _fmt(s["consultation_answer_p50_ms"], "{:,.1f} ms")),
        ("consultation desk answer→kiosk p99", _fmt(s["consultation_answer_p99_ms"], "{:,.1f} ms")),
        ("  requests or answers missing, or sent twice", _fmt(s["consultation_missing"])),
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
