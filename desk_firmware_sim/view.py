"""The terminal view: a live table while running, a summary at the end (rich)."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from desk_firmware_sim.runner import FleetSnapshot, FleetStats, UnitSnapshot
from desk_firmware_sim.unit import Status, split_version

STATUS_STYLE = {
    Status.AVAILABLE: "bold green",
    Status.BUSY: "bold yellow",
    Status.AWAY: "bold red",
}


def _status_text(status: Status | None) -> Text:
    if status is None:
        return Text("—", style="dim")
    return Text(status.value, style=STATUS_STYLE[status])


def _version_text(version: int | None) -> str:
    if version is None:
        return "—"
    boot, seq = split_version(version)
    return f"{boot}:{seq}"


def _totals_line(stats: FleetStats) -> Text:
    parts = [
        f"{stats.connected}/{stats.units} connected",
        f"{stats.status_sent} status",
        f"{stats.heartbeats_sent} heartbeats",
        f"{stats.status_per_second:.1f} status/s",
    ]
    extras = {
        "duplicates": stats.duplicates,
        "delayed": stats.delayed,
        "reboots": stats.reboots,
        "drops": stats.drops,
        "losses": stats.connection_losses,
        "lost msgs": stats.lost,
        "mismatches": stats.mismatches,
    }
    parts.extend(f"{value} {name}" for name, value in extras.items() if value)
    parts.append(f"{stats.elapsed:.0f}s")
    return Text(" · ".join(parts))


def unit_table(units: tuple[UnitSnapshot, ...], *, title: str | None = None) -> Table:
    table = Table(title=title, caption="version: boot:seq", expand=False, header_style="bold")
    table.add_column("unit", justify="right")
    table.add_column("status")
    table.add_column("version", justify="right")
    table.add_column("boots", justify="right")
    table.add_column("sent", justify="right")
    table.add_column("mismatches", justify="right")
    table.add_column("connected")
    for unit in units:
        mismatches = Text(str(unit.mismatches), style="bold red" if unit.mismatched else "")
        connected = Text("yes", style="green") if unit.connected else Text("no", style="red")
        table.add_row(
            str(unit.faculty_id),
            _status_text(unit.status),
            _version_text(unit.version),
            str(unit.boot_count),
            str(unit.sent),
            mismatches,
            connected,
        )
    return table


def render_fleet(snapshot: FleetSnapshot, *, max_rows: int) -> RenderableType:
    """The live view: as many unit rows as fit, then the totals."""
    units = snapshot.units
    shown = units[: max(1, max_rows)]
    table = unit_table(shown)
    parts: list[RenderableType] = [table]
    if len(shown) < len(units):
        parts.append(Text(f"… and {len(units) - len(shown)} more unit(s)", style="dim"))
    parts.append(_totals_line(snapshot.stats))
    return Group(*parts)


def summary(snapshot: FleetSnapshot, *, max_rows: int = 30) -> RenderableType:
    """The end-of-run summary: totals, and the units if there are not too many."""
    stats = snapshot.stats
    totals = Table(title="desk simulator summary", show_header=False, header_style="bold")
    totals.add_column("what")
    totals.add_column("value", justify="right")
    rows = [
        ("units", stats.units),
        ("elapsed", f"{stats.elapsed:.1f}s"),
        ("messages published", stats.sent),
        ("status messages", stats.status_sent),
        ("status per second", f"{stats.status_per_second:.1f}"),
        ("heartbeats", stats.heartbeats_sent),
        ("duplicates sent", stats.duplicates),
        ("sent late (reordered)", stats.delayed),
        ("reboots", stats.reboots),
        ("dropped connections", stats.drops),
        ("connections lost", stats.connection_losses),
        ("messages not sent (offline)", stats.lost),
        ("display mismatches", stats.mismatches),
    ]
    for name, value in rows:
        totals.add_row(name, str(value))
    if stats.units > max_rows:
        return totals
    return Group(totals, unit_table(snapshot.units))


class LiveView:
    """A rich ``Live`` display refreshed a few times a second from ``get_snapshot``."""

    def __init__(
        self,
        get_snapshot: Callable[[], FleetSnapshot],
        *,
        console: Console,
        refresh_per_second: float = 4.0,
    ) -> None:
        self._get_snapshot = get_snapshot
        self._console = console
        self._live = Live(
            get_renderable=self._render,
            console=console,
            refresh_per_second=refresh_per_second,
            transient=True,
        )

    def _render(self) -> RenderableType:
        max_rows = max(3, self._console.size.height - 8)
        return render_fleet(self._get_snapshot(), max_rows=max_rows)

    def __enter__(self) -> LiveView:
        self._live.start(refresh=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.stop()
