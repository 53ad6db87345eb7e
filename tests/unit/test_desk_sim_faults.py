"""Fault injection does what it claims, and the seed decides it."""

from __future__ import annotations

import random

from desk_firmware_sim.faults import Copy, Disruption, FaultConfig, FaultInjector, Outgoing
from desk_firmware_sim.unit import Message, MessageKind, Status, status_topic

T0 = 1_700_000_000.0


def message(version: int) -> Message:
    return Message(
        faculty_id=1,
        kind=MessageKind.STATUS,
        topic=status_topic(1),
        payload={"status": "busy", "version": version, "ts": version, "desk_id": "d"},
        qos=1,
        status=Status.BUSY,
        version=version,
        at=T0 + version,
    )


def run(injector: FaultInjector, count: int) -> list[Outgoing]:
    out: list[Outgoing] = []
    for v in range(1, count + 1):
        out.extend(injector.submit(T0 + v, message(v)))
    out.extend(injector.release_due(T0 + count + 10_000))
    return out


def versions(out: list[Outgoing]) -> list[int]:
    return [o.message.version for o in out if o.message.version is not None]


def test_no_faults_passes_messages_through_in_order() -> None:
    out = run(FaultInjector(config=FaultConfig(), rng=random.Random(1)), 200)
    assert versions(out) == list(range(1, 201))
    assert {o.copy for o in out} == {Copy.ORIGINAL}


def test_duplicate_rate_one_sends_every_message_twice_back_to_back() -> None:
    out = run(FaultInjector(config=FaultConfig(duplicate_rate=1.0), rng=random.Random(1)), 50)
    assert len(out) == 100
    for original, copy in zip(out[::2], out[1::2], strict=True):
        assert (original.copy, copy.copy) == (Copy.ORIGINAL, Copy.DUPLICATE)
        assert copy.message is original.message
        assert copy.message.encode() == original.message.encode()


def test_duplicate_rate_is_honoured() -> None:
    injector = FaultInjector(config=FaultConfig(duplicate_rate=0.3), rng=random.Random(2))
    out = run(injector, 3000)
    duplicates = [o for o in out if o.copy is Copy.DUPLICATE]
    assert 0.26 < len(duplicates) / 3000 < 0.34
    assert injector.counts.duplicated == len(duplicates)
    assert sorted(set(versions(out))) == list(range(1, 3001))


def test_reorder_sends_held_messages_after_up_to_window_later_ones() -> None:
    window = 3
    injector = FaultInjector(
        config=FaultConfig(reorder_window=window, reorder_rate=0.3), rng=random.Random(5)
    )
    out = run(injector, 1000)
    assert sorted(versions(out)) == list(range(1, 1001))  # nothing lost, nothing doubled
    delayed = [i for i, o in enumerate(out) if o.copy is Copy.DELAYED]
    assert 0.25 < len(delayed) / 1000 < 0.35
    assert injector.counts.delayed == len(delayed)
    for position in delayed:
        late = out[position].message.version
        assert late is not None
        newer_before = [
            o
            for o in out[:position]
            if o.copy is Copy.ORIGINAL
            and o.message.version is not None
            and o.message.version > late
        ]
        # It went out right after the k-th later message, 1 <= k <= window.
        assert 1 <= len(newer_before) <= window
    originals = versions([o for o in out if o.copy is Copy.ORIGINAL])
    assert originals == sorted(originals)


def test_a_held_message_without_successors_goes_out_after_the_longest_hold() -> None:
    injector = FaultInjector(
        config=FaultConfig(reorder_window=1, reorder_rate=1.0, reorder_max_hold=2.0),
        rng=random.Random(1),
    )
    assert injector.submit(T0, message(1)) == []
    assert injector.held == 1
    assert injector.next_deadline() == T0 + 2.0
    assert injector.release_due(T0 + 1.99) == []
    released = injector.release_due(T0 + 2.0)
    assert [(o.message.version, o.copy) for o in released] == [(1, Copy.DELAYED)]
    assert injector.held == 0


def test_held_messages_are_lost_with_the_connection() -> None:
    injector = FaultInjector(
        config=FaultConfig(reorder_window=2, reorder_rate=1.0), rng=random.Random(1)
    )
    injector.submit(T0, message(1))
    injector.submit(T0, message(2))
    assert injector.discard_held() == 2
    assert injector.release_due(T0 + 1e6) == []
    assert injector.counts.discarded == 2


def test_disruptions_follow_their_rates() -> None:
    never = FaultInjector(config=FaultConfig(), rng=random.Random(1))
    assert all(never.disruption() is None for _ in range(1000))
    reboots = FaultInjector(
        config=FaultConfig(reboot_rate=1.0, drop_rate=1.0), rng=random.Random(1)
    )
    assert reboots.disruption() is Disruption.REBOOT
    drops = FaultInjector(config=FaultConfig(drop_rate=0.1), rng=random.Random(4))
    share = sum(drops.disruption() is Disruption.DROP for _ in range(5000)) / 5000
    assert 0.08 < share < 0.12


def test_reconnect_delay_stays_in_range() -> None:
    injector = FaultInjector(
        config=FaultConfig(reconnect_delay_min=0.5, reconnect_delay_max=0.7), rng=random.Random(1)
    )
    delays = [injector.reconnect_delay() for _ in range(100)]
    assert all(0.5 <= d <= 0.7 for d in delays)


def _trace(config: FaultConfig, seed: int) -> list[tuple[int | None, Copy, Disruption | None]]:
    injector = FaultInjector(config=config, rng=random.Random(seed))
    trace: list[tuple[int | None, Copy, Disruption | None]] = []
    for v in range(1, 300):
        for o in injector.submit(T0 + v, message(v)):
            trace.append((o.message.version, o.copy, None))
        trace.append((None, Copy.ORIGINAL, injector.disruption()))
    return trace


def test_same_seed_same_faults() -> None:
    config = FaultConfig(
        duplicate_rate=0.2, reorder_window=2, reorder_rate=0.2, reboot_rate=0.05, drop_rate=0.05
    )
    assert _trace(config, 9) == _trace(config, 9)
    assert _trace(config, 9) != _trace(config, 10)


def test_turning_one_fault_on_does_not_reshuffle_the_others() -> None:
    quiet = FaultConfig(drop_rate=0.1)
    noisy = FaultConfig(drop_rate=0.1, duplicate_rate=0.5)
    drops_quiet = [d for version, _, d in _trace(quiet, 3) if version is None]
    drops_noisy = [d for version, _, d in _trace(noisy, 3) if version is None]
    assert drops_quiet == drops_noisy
    assert any(d is Disruption.DROP for d in drops_quiet)
