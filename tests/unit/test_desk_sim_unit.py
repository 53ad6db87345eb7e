"""The desk firmware and the simulated faculty member: pure, time passed in."""

from __future__ import annotations

import json
import math
import random

import pytest

from desk_firmware_sim.unit import (
    LOAD_CYCLE,
    DeskFirmware,
    FacultyBehaviour,
    MessageKind,
    PhysicalEvent,
    Status,
    UnitSpec,
    availability_message,
    make_version,
    split_version,
)

T0 = 1_700_000_000.0
LEGACY_FIELDS = {
    "faculty_id",
    "faculty_name",
    "present",
    "status",
    "timestamp",
    "ntp_sync_status",
    "in_grace_period",
    "detailed_status",
}


def make_spec(**changes: object) -> UnitSpec:
    fields: dict[str, object] = {
        "faculty_id": 3,
        "faculty_name": "Dr. X",
        "desk_id": "desk-sim-3",
        "grace_period": 10.0,
    }
    fields.update(changes)
    return UnitSpec(**fields)  # type: ignore[arg-type]


def make_firmware(*, present: bool = True, boot_count: int = 1, **changes: object) -> DeskFirmware:
    return DeskFirmware(
        spec=make_spec(**changes), boot_count=boot_count, now=T0, keychain_present=present
    )


def test_boots_available_with_keychain_and_away_without() -> None:
    assert make_firmware(present=True).status is Status.AVAILABLE
    assert make_firmware(present=False).status is Status.AWAY


def test_grace_period_delays_away() -> None:
    fw = make_firmware()
    assert fw.keychain_lost(T0 + 1) is None
    assert fw.status is Status.AVAILABLE
    assert fw.in_grace
    assert fw.next_deadline() == T0 + 11
    assert fw.advance(T0 + 10.99) is None
    assert fw.status is Status.AVAILABLE
    assert fw.advance(T0 + 11) is Status.AWAY
    assert fw.status is Status.AWAY
    assert not fw.in_grace
    assert fw.next_deadline() == math.inf
    assert fw.advance(T0 + 100) is None


def test_keychain_back_within_grace_changes_nothing() -> None:
    fw = make_firmware()
    fw.keychain_lost(T0)
    assert fw.keychain_seen(T0 + 9.9) is None
    assert not fw.in_grace
    assert fw.advance(T0 + 1000) is None
    assert fw.status is Status.AVAILABLE


def test_keychain_back_after_away_makes_available_again() -> None:
    fw = make_firmware()
    fw.keychain_lost(T0)
    assert fw.advance(T0 + 10) is Status.AWAY
    assert fw.keychain_seen(T0 + 30) is Status.AVAILABLE


def test_zero_grace_period_goes_away_at_once() -> None:
    fw = make_firmware(grace_period=0.0)
    assert fw.keychain_lost(T0) is Status.AWAY


def test_busy_button_toggles_while_present() -> None:
    fw = make_firmware()
    assert fw.press_button(T0 + 1) is Status.BUSY
    assert fw.press_button(T0 + 2) is Status.AVAILABLE
    assert fw.press_button(T0 + 3) is Status.BUSY
    assert fw.status is Status.BUSY


def test_busy_button_is_ignored_when_away_or_keychain_gone() -> None:
    away = make_firmware(present=False)
    assert away.press_button(T0) is None
    assert away.status is Status.AWAY
    leaving = make_firmware()
    leaving.keychain_lost(T0)
    assert leaving.press_button(T0 + 1) is None
    assert leaving.status is Status.AVAILABLE


def test_busy_survives_a_blip_but_away_clears_it() -> None:
    fw = make_firmware()
    fw.press_button(T0)
    fw.keychain_lost(T0 + 1)
    assert fw.keychain_seen(T0 + 2) is None
    assert fw.status is Status.BUSY
    fw.keychain_lost(T0 + 3)
    assert fw.advance(T0 + 13) is Status.AWAY
    assert fw.keychain_seen(T0 + 20) is Status.AVAILABLE


def test_status_message_in_current_format() -> None:
    fw = make_firmware()
    msg = fw.status_message(T0 + 2.5)
    assert msg.topic == "consultease/faculty/3/status"
    assert msg.kind is MessageKind.STATUS
    assert (msg.qos, msg.retain) == (1, False)
    assert msg.payload == {
        "status": "available",
        "version": make_version(1, 1),
        "ts": round((T0 + 2.5) * 1000),
        "desk_id": "desk-sim-3",
    }
    assert json.loads(msg.encode()) == msg.payload
    assert msg.version == (1 << 32) + 1


def test_clock_skew_offsets_device_time_only() -> None:
    fw = make_firmware(clock_skew=-120.0)
    msg = fw.status_message(T0)
    assert isinstance(msg.payload, dict)
    assert msg.payload["ts"] == round((T0 - 120) * 1000)
    assert msg.at == T0


def test_legacy_payload_has_exactly_the_firmware_fields() -> None:
    fw = make_firmware(legacy=True)
    msg = fw.status_message(T0 + 51.234)
    assert msg.version is None
    assert msg.payload == {
        "faculty_id": 3,
        "faculty_name": "Dr. X",
        "present": True,
        "status": "AVAILABLE",
        "timestamp": 51234,
        "ntp_sync_status": "SYNCED",
        "in_grace_period": False,
        "detailed_status": "AVAILABLE",
    }
    assert list(json.loads(msg.encode())) == list(msg.payload)
    fw.press_button(T0 + 60)
    busy = fw.status_message(T0 + 60)
    assert isinstance(busy.payload, dict)
    assert set(busy.payload) == LEGACY_FIELDS
    assert (busy.payload["status"], busy.payload["detailed_status"]) == ("BUSY", "BUSY")
    fw.keychain_lost(T0 + 61)
    grace = fw.status_message(T0 + 62)
    assert isinstance(grace.payload, dict)
    assert grace.payload["in_grace_period"] is True
    fw.advance(T0 + 71)
    away = fw.status_message(T0 + 71)
    assert isinstance(away.payload, dict)
    assert (away.payload["status"], away.payload["present"]) == ("AWAY", False)


def test_sequence_counts_up_within_a_boot() -> None:
    fw = make_firmware(boot_count=5)
    versions = [fw.status_message(T0 + i).version for i in range(3)]
    assert versions == [make_version(5, 1), make_version(5, 2), make_version(5, 3)]


def test_version_grows_strictly_across_reboots() -> None:
    fw = make_firmware(boot_count=1)
    versions: list[int] = []
    for boot in range(1, 5):
        if boot > 1:
            fw.reboot(T0 + boot, boot_count=boot, keychain_present=True)
            assert fw.seq == 0
        for i in range(1000 if boot == 2 else 3):
            v = fw.status_message(T0 + boot + i / 1000).version
            assert v is not None
            versions.append(v)
    assert versions == sorted(set(versions))
    assert split_version(versions[-1]) == (4, 3)


def test_reboot_must_increase_the_boot_counter() -> None:
    fw = make_firmware(boot_count=3)
    with pytest.raises(ValueError, match="increase"):
        fw.reboot(T0, boot_count=3, keychain_present=True)


def test_make_version_rejects_out_of_range_parts() -> None:
    with pytest.raises(ValueError):
        make_version(1, 0)
    with pytest.raises(ValueError):
        make_version(1, 2**32)
    with pytest.raises(ValueError):
        make_version(2**31, 1)
    assert split_version(make_version(7, 42)) == (7, 42)
    assert make_version(2**31 - 1, 2**32 - 1) < 2**63


def test_load_mode_every_step_is_a_real_change() -> None:
    fw = make_firmware()
    previous = fw.status
    seen = []
    for i in range(30):
        status = fw.next_load_status(T0 + i)
        assert status is not previous
        seen.append(status)
        previous = status
    assert set(seen) == set(LOAD_CYCLE)
    assert seen[:3] == [Status.BUSY, Status.AWAY, Status.AVAILABLE]


def test_heartbeat_payload() -> None:
    fw = make_firmware()
    msg = fw.heartbeat_message(T0 + 12.5, rssi=-61, free_heap=181_000)
    assert msg.topic == "consultease/faculty/3/heartbeat"
    assert (msg.qos, msg.retain, msg.kind) == (0, False, MessageKind.HEARTBEAT)
    assert msg.payload == {
        "uptime_ms": 12_500,
        "rssi": -61,
        "free_heap": 181_000,
        "desk_id": "desk-sim-3",
    }


def test_availability_message_is_retained_plain_text() -> None:
    msg = availability_message(3, online=False, at=T0)
    assert (msg.topic, msg.encode(), msg.retain, msg.qos) == (
        "consultease/faculty/3/availability",
        b"offline",
        True,
        1,
    )


def _presence_periods(mean_dwell: float, *, seed: int, events: int) -> tuple[list[float], int]:
    behaviour = FacultyBehaviour(
        rng=random.Random(seed), mean_dwell=mean_dwell, grace_period=0.25 * mean_dwell, now=T0
    )
    last = T0
    present_since = T0 if behaviour.present else None
    periods: list[float] = []
    buttons = 0
    for _ in range(events):
        at, event = behaviour.pop_event()
        assert at >= last
        last = at
        if event is PhysicalEvent.BUTTON:
            assert behaviour.present
            buttons += 1
        elif event is PhysicalEvent.KEYCHAIN_LOST:
            assert present_since is not None
            periods.append(at - present_since)
            present_since = None
        else:
            assert present_since is None
            present_since = at
    return periods, buttons


@pytest.mark.parametrize("mean_dwell", [60.0, 6.0])
def test_presence_dwell_times_scale_with_the_rate(mean_dwell: float) -> None:
    periods, buttons = _presence_periods(mean_dwell, seed=11, events=4000)
    mean = sum(periods) / len(periods)
    assert 0.8 * mean_dwell < mean < 1.2 * mean_dwell
    assert buttons > 100


def test_some_absences_are_blips_shorter_than_the_grace_period() -> None:
    grace = 15.0
    behaviour = FacultyBehaviour(rng=random.Random(3), mean_dwell=60, grace_period=grace, now=T0)
    absences: list[float] = []
    lost_at: float | None = None
    for _ in range(3000):
        at, event = behaviour.pop_event()
        if event is PhysicalEvent.KEYCHAIN_LOST:
            lost_at = at
        elif event is PhysicalEvent.KEYCHAIN_SEEN and lost_at is not None:
            absences.append(at - lost_at)
    blips = [a for a in absences if a < grace]
    assert 0.15 < len(blips) / len(absences) < 0.35
    assert all(a > grace for a in absences if a not in blips)
