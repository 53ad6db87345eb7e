"""A whole simulated desk driven by a fake clock, its flash, and its display check."""

from __future__ import annotations

import itertools
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from desk_firmware_sim.desk import Action, Disconnect, PersistBootCount, Send, SimulatedDesk
from desk_firmware_sim.display import DisplayMonitor, ShownState, parse_state
from desk_firmware_sim.errors import SimError
from desk_firmware_sim.faults import Copy, Disruption, FaultConfig
from desk_firmware_sim.flash import FlashStore
from desk_firmware_sim.unit import (
    MessageKind,
    Mode,
    Status,
    UnitSpec,
    make_version,
    split_version,
)

T0 = 1_700_000_000.0
REPO_ROOT = Path(__file__).resolve().parents[2]


def make_desk(
    *,
    seed: int = 1,
    faults: FaultConfig | None = None,
    boot_count: int = 1,
    mode: Mode = Mode.REALISTIC,
    rate: float = 6.0,
    heartbeat_interval: float = 30.0,
    legacy: bool = False,
) -> SimulatedDesk:
    spec = UnitSpec(
        faculty_id=7,
        faculty_name="Dr. Seven",
        desk_id="desk-sim-7",
        legacy=legacy,
        mode=mode,
        rate=rate,
        grace_period=2.5,
        heartbeat_interval=heartbeat_interval,
    )
    return SimulatedDesk(
        spec=spec,
        faults=faults or FaultConfig(),
        rng=random.Random(seed),
        boot_count=boot_count,
        now=T0,
    )


def drive(desk: SimulatedDesk, *, seconds: float) -> list[tuple[float, Action]]:
    """A fake runner: connects at T0, reconnects when told, steps exactly at deadlines."""
    timeline: list[tuple[float, Action]] = [(T0, a) for a in desk.on_connected(T0)]
    reconnect_at = math.inf
    end = T0 + seconds
    while True:
        at = min(desk.next_deadline(), reconnect_at)
        if at > end:
            return timeline
        if at == reconnect_at:
            reconnect_at = math.inf
            actions = desk.on_connected(at)
        else:
            actions = desk.advance(at)
        for action in actions:
            timeline.append((at, action))
            if isinstance(action, Disconnect):
                reconnect_at = action.reconnect_at


def sent(
    timeline: list[tuple[float, Action]], kind: MessageKind = MessageKind.STATUS
) -> list[Send]:
    return [a for _, a in timeline if isinstance(a, Send) and a.message.kind is kind]


def fingerprint(timeline: list[tuple[float, Action]]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for at, action in timeline:
        if isinstance(action, Send):
            out.append((at, action.message.topic, action.message.encode(), action.copy))
        else:
            out.append((at, action))
    return out


ALL_FAULTS = FaultConfig(
    duplicate_rate=0.1,
    reorder_window=2,
    reorder_rate=0.2,
    reboot_rate=0.03,
    drop_rate=0.03,
    clock_skew=30.0,
)


def test_same_seed_gives_the_same_message_sequence() -> None:
    first = fingerprint(drive(make_desk(seed=42, faults=ALL_FAULTS), seconds=3600))
    again = fingerprint(drive(make_desk(seed=42, faults=ALL_FAULTS), seconds=3600))
    other = fingerprint(drive(make_desk(seed=43, faults=ALL_FAULTS), seconds=3600))
    assert len(first) > 300
    assert first == again
    assert first != other


def test_realistic_mode_changes_status_at_about_the_requested_rate() -> None:
    rate = 2.0
    hours = 5
    timeline = drive(make_desk(seed=5, rate=rate), seconds=hours * 3600)
    statuses = [s.message.status for s in sent(timeline)]
    changes = sum(1 for a, b in itertools.pairwise(statuses) if a is not b)
    expected = rate * 60 * hours
    assert 0.6 * expected < changes < 1.4 * expected
    assert set(statuses) == set(Status)


def test_versions_grow_strictly_across_reboots_and_drops() -> None:
    faults = FaultConfig(reboot_rate=0.05, drop_rate=0.05)
    timeline = drive(make_desk(seed=8, faults=faults, boot_count=4), seconds=3600)
    status = sent(timeline)
    versions = [s.message.version for s in status if s.message.version is not None]
    assert len(versions) == len(status)
    assert versions == sorted(set(versions))
    persisted = [a.boot_count for _, a in timeline if isinstance(a, PersistBootCount)]
    assert len(persisted) > 5
    assert persisted == list(range(5, 5 + len(persisted)))  # one write per boot, +1 each
    reboots = [
        a for _, a in timeline if isinstance(a, Disconnect) and a.reason is Disruption.REBOOT
    ]
    assert len(reboots) == len(persisted)
    # The first status after each reboot starts the new boot's sequence at 1.
    boots_seen: dict[int, int] = {}
    for v in versions:
        boot, seq = split_version(v)
        boots_seen.setdefault(boot, seq)
    assert all(first_seq == 1 for first_seq in boots_seen.values())
    assert sorted(boots_seen) == [4, *persisted]


def test_every_disruption_is_followed_by_online_and_a_fresh_status() -> None:
    faults = FaultConfig(drop_rate=0.1, reconnect_delay_min=1.0, reconnect_delay_max=1.0)
    timeline = drive(make_desk(seed=2, faults=faults), seconds=1800)
    for i, (at, action) in enumerate(timeline):
        if isinstance(action, Disconnect):
            after = [a for _, a in timeline[i + 1 : i + 3]]
            assert len(after) == 2
            first, second = after
            assert isinstance(first, Send) and first.message.payload == "online"
            assert isinstance(second, Send) and second.message.kind is MessageKind.STATUS
            assert timeline[i + 1][0] == at + 1.0


def test_duplicates_and_reordering_reach_the_actions() -> None:
    faults = FaultConfig(duplicate_rate=0.3, reorder_window=2, reorder_rate=0.3)
    timeline = drive(make_desk(seed=3, faults=faults), seconds=3600)
    status = sent(timeline)
    copies = {c: sum(s.copy is c for s in status) for c in Copy}
    assert copies[Copy.DUPLICATE] > 10
    assert copies[Copy.DELAYED] > 10
    arrival = [s.message.version or 0 for s in status]
    assert arrival != sorted(arrival)  # some arrive after newer ones


def test_nothing_is_sent_while_disconnected_and_connecting_announces() -> None:
    desk = make_desk(seed=4)
    actions: list[Action] = []
    t = T0
    while t < T0 + 600:
        t = desk.next_deadline()
        actions.extend(desk.advance(t))
    assert actions == []
    hello = desk.on_connected(t)
    assert [type(a) for a in hello] == [Send, Send]
    online, status = (a.message for a in hello if isinstance(a, Send))
    assert (online.payload, online.retain) == ("online", True)
    assert status.status is desk.status
    assert status.version == make_version(1, 1)


def test_heartbeats_only_while_connected() -> None:
    desk = make_desk(seed=4, heartbeat_interval=10.0)
    timeline = drive(desk, seconds=95)
    beats = sent(timeline, MessageKind.HEARTBEAT)
    assert [round(b.message.at - T0) for b in beats] == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    desk.on_connection_lost(T0 + 95)
    later = [a for a in desk.advance(T0 + 500) if isinstance(a, Send)]
    assert later == []


def test_flood_load_step_is_always_a_change() -> None:
    desk = make_desk(mode=Mode.LOAD, rate=0.0)
    desk.on_connected(T0)
    statuses: list[Status | None] = []
    versions: list[int | None] = []
    for i in range(12):
        (action,) = desk.load_step(T0 + i / 1000)
        assert isinstance(action, Send)
        statuses.append(action.message.status)
        versions.append(action.message.version)
    assert all(a is not b for a, b in itertools.pairwise(statuses))
    assert versions == [make_version(1, seq) for seq in range(2, 14)]
    assert desk.next_deadline() == T0 + 30.0  # only the heartbeat: flooding is not paced


def test_paced_load_mode_changes_at_the_rate() -> None:
    desk = make_desk(mode=Mode.LOAD, rate=120.0, heartbeat_interval=0)
    timeline = drive(desk, seconds=60)
    status = sent(timeline)[1:]  # after the announce
    assert 119 <= len(status) <= 121
    gaps = [b.message.at - a.message.at for a, b in itertools.pairwise(status)]
    assert all(abs(g - 0.5) < 1e-6 for g in gaps)


def test_legacy_desk_sends_legacy_payloads() -> None:
    timeline = drive(make_desk(seed=6, legacy=True), seconds=600)
    status = sent(timeline)
    assert status
    for s in status:
        assert s.message.version is None
        assert isinstance(s.message.payload, dict)
        assert s.message.payload["status"] in {"AVAILABLE", "AWAY", "BUSY"}
        assert "version" not in s.message.payload


# --------------------------------------------------------------------------- flash


def test_boot_counter_survives_a_new_process(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from desk_firmware_sim.flash import FlashStore; "
        "print(FlashStore(Path(sys.argv[1])).boot(7))"
    )
    counts = [
        int(
            subprocess.run(
                [sys.executable, "-c", script, str(tmp_path)],
                check=True,
                capture_output=True,
                text=True,
                cwd=REPO_ROOT,
            ).stdout
        )
        for _ in range(2)
    ]
    assert counts == [1, 2]
    assert FlashStore(tmp_path).load(7) == 2
    # So the last version of the first process is below the first of the second.
    assert make_version(counts[0], 2**32 - 1) < make_version(counts[1], 1)


def test_boot_writes_the_flash_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FlashStore(tmp_path)
    writes: list[tuple[int, int]] = []
    original = FlashStore.store

    def counting(self: FlashStore, faculty_id: int, boot_count: int) -> None:
        writes.append((faculty_id, boot_count))
        original(self, faculty_id, boot_count)

    monkeypatch.setattr(FlashStore, "store", counting)
    assert store.boot(3) == 1
    assert store.boot(3) == 2
    assert writes == [(3, 1), (3, 2)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["desk-3.json"]


def test_a_corrupt_flash_is_an_error_not_a_reset(tmp_path: Path) -> None:
    (tmp_path / "desk-5.json").write_text("{not json")
    with pytest.raises(SimError, match="corrupt"):
        FlashStore(tmp_path).boot(5)


# ------------------------------------------------------------------ display check


def connected_monitor(threshold: float = 5.0) -> DisplayMonitor:
    monitor = DisplayMonitor(faculty_id=7, threshold=threshold)
    monitor.on_connection(T0, connected=True)
    return monitor


def test_a_mismatch_is_counted_once_after_the_threshold() -> None:
    monitor = connected_monitor()
    monitor.on_sent(T0, Status.AVAILABLE)
    monitor.on_shown(T0, ShownState(status=Status.AWAY, desk_online=True))
    assert monitor.check(T0 + 4.9) is None
    event = monitor.check(T0 + 5.0)
    assert event is not None and not event.resolved
    assert (event.sent, event.since) == (Status.AVAILABLE, T0)
    assert "shows away but the unit sent available" in event.describe()
    assert monitor.check(T0 + 9) is None
    assert monitor.count == 1
    monitor.on_shown(T0 + 10, ShownState(status=Status.AVAILABLE, desk_online=True))
    resolved = monitor.check(T0 + 10.1)
    assert resolved is not None and resolved.resolved
    assert monitor.count == 1
    assert not monitor.mismatched


def test_a_brief_lag_is_not_a_mismatch() -> None:
    monitor = connected_monitor()
    monitor.on_shown(T0, ShownState(status=Status.AVAILABLE, desk_online=True))
    monitor.on_sent(T0 + 1, Status.BUSY)
    assert monitor.check(T0 + 1.1) is None
    monitor.on_shown(T0 + 1.3, ShownState(status=Status.BUSY, desk_online=True))
    assert monitor.check(T0 + 30) is None
    assert monitor.count == 0


def test_shown_offline_while_connected_is_a_mismatch() -> None:
    monitor = connected_monitor(threshold=2.0)
    monitor.on_sent(T0, Status.BUSY)
    monitor.on_shown(T0, ShownState(status=Status.BUSY, desk_online=False))
    event = monitor.check(T0 + 2.0)
    assert event is not None and "desk offline" in event.describe()


def test_no_mismatch_while_disconnected_or_without_a_system() -> None:
    monitor = DisplayMonitor(faculty_id=7, threshold=1.0)
    monitor.on_sent(T0, Status.BUSY)
    monitor.on_shown(T0, ShownState(status=Status.AWAY, desk_online=False))
    assert monitor.check(T0 + 100) is None
    silent = connected_monitor(threshold=1.0)
    silent.on_sent(T0, Status.BUSY)
    assert silent.check(T0 + 100) is None


def test_parse_state() -> None:
    state = parse_state(
        b'{"status": "BUSY", "desk_online": true, "version": 12, "updated_at": "2024-01-01"}'
    )
    assert state == ShownState(
        status=Status.BUSY, desk_online=True, version=12, updated_at="2024-01-01"
    )
    assert parse_state(b"") is None
    assert parse_state(b"not json") is None
    assert parse_state(b"[1]") is None
    odd = parse_state(b'{"status": "gone", "desk_online": "yes"}')
    assert odd == ShownState(status=None, desk_online=None)


def test_desk_feeds_state_messages_to_its_monitor() -> None:
    desk = make_desk(mode=Mode.LOAD, rate=0.0)
    desk.monitor.threshold = 1.0
    desk.on_connected(T0)
    desk.on_state(T0, b'{"status": "away", "desk_online": true}')
    assert desk.status is Status.AVAILABLE
    event = desk.check_display(T0 + 1.0)
    assert event is not None and event.faculty_id == 7
