"""The terminal view shows what the fleet reports (rich, rendered to text)."""

from __future__ import annotations

from rich.console import Console

from desk_firmware_sim.runner import FleetSnapshot, FleetStats, UnitSnapshot
from desk_firmware_sim.unit import Status, make_version
from desk_firmware_sim.view import render_fleet, summary


def unit(faculty_id: int, **changes: object) -> UnitSnapshot:
    fields: dict[str, object] = {
        "faculty_id": faculty_id,
        "desk_id": f"desk-sim-{faculty_id}",
        "status": Status.BUSY,
        "version": make_version(3, 17),
        "current_status": Status.BUSY,
        "boot_count": 3,
        "connected": True,
        "sent": 40,
        "status_sent": 20,
        "heartbeats_sent": 18,
        "duplicates": 0,
        "delayed": 0,
        "lost": 0,
        "reboots": 2,
        "drops": 0,
        "connection_losses": 0,
        "mismatches": 0,
        "mismatched": False,
        "shown_status": Status.BUSY,
        "shown_online": True,
        "last_error": None,
    }
    fields.update(changes)
    return UnitSnapshot(**fields)  # type: ignore[arg-type]


def snapshot(units: list[UnitSnapshot]) -> FleetSnapshot:
    stats = FleetStats(
        units=len(units),
        connected=sum(u.connected for u in units),
        sent=sum(u.sent for u in units),
        status_sent=sum(u.status_sent for u in units),
        heartbeats_sent=sum(u.heartbeats_sent for u in units),
        duplicates=0,
        delayed=0,
        lost=0,
        reboots=sum(u.reboots for u in units),
        drops=0,
        connection_losses=0,
        mismatches=sum(u.mismatches for u in units),
        elapsed=10.0,
    )
    return FleetSnapshot(units=tuple(units), stats=stats)


def text_of(renderable: object) -> str:
    console = Console(width=120, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_live_view_rows_show_status_version_and_connection() -> None:
    fleet = snapshot(
        [
            unit(1),
            unit(2, status=None, version=None, connected=False, mismatches=1, mismatched=True),
        ]
    )
    text = text_of(render_fleet(fleet, max_rows=10))
    row1, row2 = (line.split("│")[1:-1] for line in text.splitlines() if line.startswith("│"))
    assert [cell.strip() for cell in row1] == ["1", "busy", "3:17", "3", "40", "0", "yes"]
    assert [cell.strip() for cell in row2] == ["2", "—", "—", "3", "40", "1", "no"]
    assert "1/2 connected · 40 status · 36 heartbeats · 4.0 status/s" in text
    assert "1 mismatches" in text


def test_live_view_cuts_long_fleets_to_the_screen() -> None:
    fleet = snapshot([unit(i) for i in range(1, 51)])
    text = text_of(render_fleet(fleet, max_rows=5))
    assert "… and 45 more unit(s)" in text
    assert "50/50 connected" in text


def test_summary_lists_totals_and_small_fleets_unit_by_unit() -> None:
    small = text_of(summary(snapshot([unit(1), unit(2)])))
    assert "status messages" in small and "40" in small
    assert "3:17" in small
    big = text_of(summary(snapshot([unit(i) for i in range(1, 40)]), max_rows=30))
    assert "3:17" not in big
    assert "reboots" in big and "78" in big
